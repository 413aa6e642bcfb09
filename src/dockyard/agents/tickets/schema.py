"""What goes in (a help-desk ticket) and what comes out (its summary, as JSON and Markdown)."""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dockyard.providers.offline.tickets import is_korean


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["customer", "agent"]
    text: str
    at: str | None = None


class Attachment(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    type: str = "unknown"
    """A MIME type (``image/png``) or a kind (``log``)."""
    size: int | None = None


class Ticket(BaseModel):
    """A help-desk ticket: the summarizer's input."""

    model_config = ConfigDict(extra="forbid")
    id: str | None = None
    subject: str = Field(min_length=1)
    description: str = ""
    conversation: list[Message] = Field(default_factory=list)
    attachments: list[Attachment] = Field(default_factory=list)
    priority: Literal["low", "normal", "high", "urgent"] = "normal"
    tags: list[str] = Field(default_factory=list)


class AttachmentPick(BaseModel):
    name: str = Field(min_length=1)
    reason: str = Field(min_length=1)


class TicketSummary(BaseModel):
    """The structured summary the model must answer with (validated)."""

    model_config = ConfigDict(extra="forbid")
    problem: str = Field(min_length=1)
    customer_impact: str = Field(min_length=1)
    actions_taken: list[str]
    current_status: str = Field(min_length=1)
    next_steps: list[str] = Field(min_length=1)
    sentiment: Literal["positive", "neutral", "negative", "mixed"]
    attachments_worth_opening: list[AttachmentPick]


SUMMARY_SCHEMA: dict[str, Any] = TicketSummary.model_json_schema()
"""The JSON Schema of ``TicketSummary`` (the prompt shows it; the gate checks it)."""

_FENCED = re.compile(r"```(?:json)?\s*(\{.*\})\s*```", re.S)


def parse_summary(text: str) -> TicketSummary:
    """The summary in a model's answer: bare JSON, fenced, or the outermost ``{...}``;
    ``ValueError`` naming what is wrong when there is none or it does not validate."""
    fenced = _FENCED.search(text)
    candidate = fenced.group(1) if fenced else text[text.find("{") : text.rfind("}") + 1]
    try:
        data = json.loads(candidate)
    except json.JSONDecodeError as e:
        raise ValueError(f"the answer is not JSON ({e.msg})") from None
    try:
        return TicketSummary.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "summary"
        raise ValueError(
            f"the summary does not match the schema: {where}: {first['msg']}"
        ) from None


_LABELS = {
    "en": (
        "Problem",
        "Customer impact",
        "Actions taken",
        "Current status",
        "Next steps",
        "Sentiment",
        "Attachments worth opening",
        "none",
    ),
    "ko": (
        "문제",
        "고객 영향",
        "조치 내역",
        "현재 상태",
        "다음 단계",
        "고객 감정",
        "열어 볼 첨부 파일",
        "없음",
    ),
}


def to_markdown(summary: TicketSummary, ticket: Ticket) -> str:
    """The summary as Markdown, headed by the ticket's subject, in the ticket's language."""
    ko = is_korean(ticket.subject + ticket.description)
    problem, impact, actions, status, steps, mood, files, none = _LABELS["ko" if ko else "en"]
    title = f"{ticket.id}: {ticket.subject}" if ticket.id else ticket.subject

    def bullets(items: list[str]) -> list[str]:
        return [f"- {item}" for item in items] or [f"- {none}"]

    lines = [f"# {title}", "", f"**Priority:** {ticket.priority}"]
    if ticket.tags:
        lines[-1] += f" · **Tags:** {', '.join(ticket.tags)}"
    lines += ["", f"## {problem}", summary.problem, "", f"## {impact}", summary.customer_impact]
    lines += ["", f"## {actions}", *bullets(summary.actions_taken)]
    lines += ["", f"## {status}", summary.current_status, "", f"## {steps}"]
    lines += bullets(summary.next_steps)
    lines += ["", f"## {mood}", summary.sentiment, "", f"## {files}"]
    lines += bullets([f"`{a.name}`: {a.reason}" for a in summary.attachments_worth_opening])
    return "\n".join(lines) + "\n"
