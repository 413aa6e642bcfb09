"""``"offline:tickets"``: the ticket summarizer's offline model (``dockyard.agents.tickets``).

The summarizer sends a ticket as text in the shape ``render_ticket`` writes (``Subject:``,
``Priority:``, ``Description:``, ``Conversation:`` with ``[customer]`` / ``[agent]`` lines,
``Attachments:``). This model reads that shape back and answers with an *extractive*
summary as one JSON object: the problem is the description's first sentence, the actions
are the agent's first sentences, the status and sentiment come from word lists, the
attachments worth opening are the logs, screenshots and documents. Deterministic, so
tests can assert on every field; Korean tickets get Korean labels.

Presets that misbehave on purpose, so the quality gate has something to catch:

* ``offline:tickets-sloppy`` always answers a one-line stub that fails the schema (the
  gate sends the call to its ``fallback_model``);
* ``offline:tickets-flaky`` answers a partial summary (no impact, no next steps: the
  gate's retry band) the first time it sees a ticket and the whole summary after (the
  gate's retry gets it).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage
from pydantic import PrivateAttr

from dockyard.providers.offline.base import FakeChatModelBase, ToolSpec
from dockyard.providers.offline.models import last_human_text

TICKET_START = "<ticket>"
TICKET_END = "</ticket>"

_HANGUL = re.compile(r"[\uac00-\ud7a3]")
_LATIN = re.compile(r"[A-Za-z]")
_SENTENCE = re.compile(r"(?<=[.!?。])\s+|(?<=다\.)\s*|\n+")
_IMPACT = re.compile(
    r"cannot|can't|unable|blocked|down|lost|losing|every|all (?:our|my)|customers|revenue|"
    r"deadline|outage|못|안 (?:돼|됩|되)|불가|중단|손실|전체|모든|고객",
    re.I,
)
_NEXT = re.compile(r"\bwill\b|\bplease\b|next|tomorrow|예정|드리겠|부탁|확인 후|다음", re.I)
_NEGATIVE = re.compile(
    r"frustrat|angry|unacceptable|terrible|disappoint|again\?|still not|urgent|asap|"
    r"화가|불만|실망|답답|황당|아직도|언제까지|심각",
    re.I,
)
_POSITIVE = re.compile(r"thank|great|appreciate|works now|perfect|감사|고맙|해결됐|잘 됩", re.I)
_RESOLVED = re.compile(
    r"\bresolved\b|\bworks now\b|\bis fixed\b|closing (?:the|this) ticket|해결되었|해결됐|정상화",
    re.I,
)
_WORTH_OPENING = re.compile(r"log|image|png|jpe?g|pdf|har|csv|text|json|xml|zip", re.I)
_DECORATION = re.compile(r"svg|icon|logo|banner", re.I)  # artwork, not evidence


def is_korean(text: str) -> bool:
    """True when most of the letters of ``text`` are Hangul."""
    hangul = len(_HANGUL.findall(text))
    return hangul > 0 and hangul >= len(_LATIN.findall(text)) / 2


def render_ticket(ticket: dict[str, Any]) -> str:
    """A ticket as the text the model gets, between ``<ticket>`` tags (one shape for every
    model; the offline one reads it back)."""
    lines = [TICKET_START]
    if ticket.get("id"):
        lines.append(f"Ticket: {ticket['id']}")
    lines.append(f"Subject: {ticket.get('subject', '')}")
    lines.append(f"Priority: {ticket.get('priority') or 'normal'}")
    lines.append(f"Tags: {', '.join(ticket.get('tags') or []) or '-'}")
    lines += ["", "Description:", str(ticket.get("description", "")).strip(), "", "Conversation:"]
    for message in ticket.get("conversation") or []:
        text = " ".join(str(message.get("text", "")).split())
        lines.append(f"[{message.get('role', 'customer')}] {text}")
    lines += ["", "Attachments:"]
    for attachment in ticket.get("attachments") or []:
        lines.append(f"- {attachment.get('name')} ({attachment.get('type', 'unknown')})")
    lines.append(TICKET_END)
    return "\n".join(lines)


def _section(body: str, name: str, end: str | None) -> str:
    start = body.find(f"\n{name}:\n")
    if start < 0:
        return ""
    start += len(name) + 3
    stop = body.find(f"\n{end}:\n", start) if end else -1
    return body[start : stop if stop >= 0 else len(body)].strip()


def _field(body: str, name: str) -> str:
    found = re.search(rf"^{name}: (.*)$", body, re.M)
    return found.group(1).strip() if found else ""


def _first_sentence(text: str) -> str:
    for sentence in _SENTENCE.split(text.strip()):
        if sentence and sentence.strip():
            return sentence.strip()
    return ""


def parse_ticket(text: str) -> dict[str, Any]:
    """The parts of a ticket ``render_ticket`` wrote into ``text``."""
    body = text.split(TICKET_START, 1)[-1].split(TICKET_END, 1)[0]
    conversation = []
    for line in _section(body, "Conversation", "Attachments").splitlines():
        found = re.match(r"\[(\w+)\] (.*)", line)
        if found:
            conversation.append({"role": found.group(1), "text": found.group(2)})
    attachments = []
    for line in _section(body, "Attachments", None).splitlines():
        found = re.match(r"- (.+) \(([^)]*)\)$", line.strip())
        if found:
            attachments.append({"name": found.group(1), "type": found.group(2)})
    return {
        "subject": _field(body, "Subject"),
        "priority": _field(body, "Priority"),
        "description": _section(body, "Description", "Conversation"),
        "conversation": conversation,
        "attachments": attachments,
    }


def summarize(ticket: dict[str, Any]) -> dict[str, Any]:
    """The extractive summary of a parsed ticket (the keys ``TicketSummary`` has)."""
    ko = is_korean(ticket["subject"] + ticket["description"])
    said = [m for m in ticket["conversation"]]
    customer = [m["text"] for m in said if m["role"] == "customer"]
    agent = [m["text"] for m in said if m["role"] != "customer"]
    sentences = [s.strip() for s in _SENTENCE.split(ticket["description"]) if s.strip()]
    problem = _first_sentence(ticket["description"]) or ticket["subject"]
    impact = next((s for s in [*sentences[1:], *customer] if _IMPACT.search(s)), "")
    if not impact:
        impact = (
            "영향 범위는 티켓에 명시되지 않음." if ko else "The ticket does not state the impact."
        )
    actions = [_first_sentence(t) for t in agent] or (
        ["아직 조치 없음."] if ko else ["No action taken yet."]
    )
    last = said[-1] if said else None
    if last is not None and _RESOLVED.search(last["text"]):
        status = "해결됨" if ko else "resolved"
    elif last is not None and last["role"] != "customer":
        status = "고객 응답 대기" if ko else "waiting on the customer"
    else:
        status = "지원팀 처리 대기" if ko else "waiting on support"
    next_steps = [
        s.strip() for t in agent[-1:] for s in _SENTENCE.split(t) if s.strip() and _NEXT.search(s)
    ] or (
        ["담당자가 원인을 확인하고 고객에게 회신."] if ko else ["Support investigates and replies."]
    )
    customer_text = " ".join(customer) or ticket["description"]
    negative, positive = _NEGATIVE.search(customer_text), _POSITIVE.search(customer_text)
    sentiment = (
        "mixed"
        if negative and positive
        else "negative"
        if negative
        else "positive"
        if positive
        else "neutral"
    )
    why = "오류 원인 확인에 필요" if ko else "likely shows the error"
    attachments = [
        {"name": a["name"], "reason": f"{a['type']}: {why}"}
        for a in ticket["attachments"]
        if _WORTH_OPENING.search(f"{a['type']} {a['name']}")
        and not _DECORATION.search(f"{a['type']} {a['name']}")
    ]
    return {
        "problem": problem,
        "customer_impact": impact,
        "actions_taken": actions,
        "current_status": status,
        "next_steps": next_steps,
        "sentiment": sentiment,
        "attachments_worth_opening": attachments,
    }


STUB = '{"problem": "An issue."}'
"""The sloppy preset's answer: not the schema, few words (below the gate's fallback)."""


class TicketsOfflineModel(FakeChatModelBase):
    """``"offline:tickets"``: extractive summaries of ``render_ticket`` text, as JSON."""

    model_name: str = "offline-tickets"
    mode: str = "good"
    """``good``; ``sloppy``: always ``STUB``; ``flaky``: partial the first time per ticket."""

    _seen: set[str] = PrivateAttr(default_factory=set)

    def _reply(self, messages: list[BaseMessage], tools: list[ToolSpec]) -> AIMessage:
        text = last_human_text(messages)
        if TICKET_START not in text:
            return AIMessage(content="Send a help-desk ticket between <ticket> tags.")
        digest = hashlib.sha256(text.encode()).hexdigest()
        first_time = digest not in self._seen
        self._seen.add(digest)
        if self.mode == "sloppy":
            return AIMessage(content=STUB)
        summary = summarize(parse_ticket(text))
        if self.mode == "flaky" and first_time:
            summary = {
                k: v for k, v in summary.items() if k not in ("customer_impact", "next_steps")
            }
        return AIMessage(content=json.dumps(summary, ensure_ascii=False))


class SloppyTicketsModel(TicketsOfflineModel):
    model_name: str = "offline-tickets-sloppy"
    mode: str = "sloppy"


class FlakyTicketsModel(TicketsOfflineModel):
    model_name: str = "offline-tickets-flaky"
    mode: str = "flaky"
