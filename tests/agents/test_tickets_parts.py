"""The summarizer's parts without a server: the answer parser, the Markdown, the offline
model's presets and the scorers the eval uses."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from langchain_core.messages import HumanMessage

from dockyard.agents.tickets import Ticket, parse_summary, to_markdown
from dockyard.agents.tickets.scorers import expected_fields, same_language
from dockyard.providers import load_chat_model
from dockyard.providers.offline.tickets import STUB, parse_ticket, render_ticket

TICKET = Ticket(
    id="T-1",
    subject="세금계산서 재발행 요청",
    description="지난달 세금계산서의 주소가 이전 주소로 되어 있습니다. "
    "새 주소로 재발행 부탁드립니다.",
    conversation=[{"role": "customer", "text": "감사합니다."}],
    attachments=[{"name": "사업자등록증.pdf", "type": "application/pdf"}],
    tags=["정산"],
)


def prompt() -> list[HumanMessage]:
    return [HumanMessage(f"Priority: normal.\n\n{render_ticket(TICKET.model_dump())}")]


def test_render_and_parse_round_trip() -> None:
    parsed = parse_ticket(render_ticket(TICKET.model_dump()))
    assert parsed["subject"] == TICKET.subject
    assert parsed["conversation"] == [{"role": "customer", "text": "감사합니다."}]
    assert parsed["attachments"] == [{"name": "사업자등록증.pdf", "type": "application/pdf"}]


def test_offline_summary_is_korean_and_validates() -> None:
    answer = load_chat_model("offline:tickets").invoke(prompt()).text
    summary = parse_summary(answer)
    assert summary.sentiment == "positive" and summary.current_status == "지원팀 처리 대기"
    assert [a.name for a in summary.attachments_worth_opening] == ["사업자등록증.pdf"]
    markdown = to_markdown(summary, TICKET)
    assert markdown.startswith("# T-1: 세금계산서 재발행 요청") and "## 다음 단계" in markdown
    source = prompt()[0].text
    assert same_language(SimpleNamespace(answer=answer, source=source)) == (1.0, [])
    english = json.dumps({"problem": "The invoice has an old address."})
    assert same_language(SimpleNamespace(answer=english, source=source))[0] == 0.0


def test_sloppy_and_flaky_presets() -> None:
    assert load_chat_model("offline:tickets-sloppy").invoke(prompt()).text == STUB
    flaky = load_chat_model("offline:tickets-flaky")
    first, second = (json.loads(flaky.invoke(prompt()).text) for _ in range(2))
    assert "next_steps" not in first and "customer_impact" not in first
    parse_summary(json.dumps(second))


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ("I could not summarize this.", "not JSON"),
        (STUB, "does not match the schema: customer_impact"),
    ],
)
def test_parse_summary_says_what_is_wrong(answer: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_summary(answer)


def test_parse_summary_reads_fenced_json() -> None:
    answer = load_chat_model("offline:tickets").invoke(prompt()).text
    assert parse_summary(f"Here it is:\n```json\n{answer}\n```").problem


def test_expected_fields_scores_the_share_matched() -> None:
    answer = json.dumps(
        {
            "sentiment": "Negative",
            "current_status": "resolved",
            "attachments_worth_opening": [{"name": "a.log", "reason": "errors"}],
        }
    )
    expected = {"sentiment": "negative", "current_status": "open", "attachments": ["a.log"]}
    value, reasons = expected_fields(SimpleNamespace(answer=answer, expected=expected))
    assert value == pytest.approx(2 / 3)
    assert reasons == ["current_status: expected 'open', got 'resolved'"]
