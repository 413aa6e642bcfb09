"""The ticket summarizer on the production layout: an API-only server and a worker process
over PostgreSQL and Redis. With CI=true a missing server fails the test."""

from __future__ import annotations

from pathlib import Path

import pytest
from langgraph_sdk import get_client

from dockyard.agents.tickets import TicketSummary
from tests.cluster import cluster

pytestmark = pytest.mark.timeout(300)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "tickets"


async def test_summary_through_a_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "DOCKYARD_MODELS__DEFAULT"):
        monkeypatch.delenv(name, raising=False)
    ticket = {
        "id": "TKT-9001",
        "subject": "결제 후 주문 내역이 보이지 않습니다",
        "priority": "urgent",
        "tags": ["결제"],
        "description": "어제 카드 결제를 완료했는데 주문 내역에 주문이 보이지 않습니다. "
        "결제 금액은 빠져나갔습니다. 연락처는 010-1234-5678입니다.",
        "conversation": [
            {"role": "customer", "text": "아직도 확인이 안 되나요? 정말 답답합니다."},
            {
                "role": "agent",
                "text": "승인 내역을 확인했습니다. 오늘 중으로 다시 연락드리겠습니다.",
            },
        ],
        "attachments": [{"name": "결제내역.png", "type": "image/png"}],
    }
    with cluster(tmp_path, apis=1, workers=1, config=EXAMPLE / "dockyard.yaml") as c:
        client = get_client(url=c.apis[0].url)
        try:
            thread = await client.threads.create()
            body = {"ticket": ticket, "priority": "urgent"}
            run = await client.runs.create(thread["thread_id"], "tickets", input=body)
            values = await client.runs.join(thread["thread_id"], run["run_id"])
            done = await client.runs.get(thread["thread_id"], run["run_id"])
        finally:
            await client.aclose()
    assert done["status"] == "success", done
    summary = TicketSummary.model_validate(values["summary"])
    assert summary.sentiment == "negative" and summary.current_status == "고객 응답 대기"
    assert "## 문제" in values["markdown"]
    assert done["usage"]["tiers"] == {"balanced": 1}
    assert done["quality"]["decision"] == "accept"
