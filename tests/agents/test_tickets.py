"""The ticket summarizer, served from examples/tickets: langgraph-sdk and the CLI against one
live server, offline (the extractive offline:tickets models), with a mock OpenAI server
standing in for the balanced tier of one assistant (to see what the model received)."""

from __future__ import annotations

import importlib.util
import json
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient
from typer.testing import CliRunner

from dockyard.agents.tickets import TicketSummary
from dockyard.cli.main import app
from dockyard.testing import MockAnthropicServer, MockOpenAIServer
from tests.conftest import LiveServer

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "tickets"
PROVIDER_ENV = ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "DOCKYARD_MODELS__DEFAULT")
EMAIL, PHONE = "jane.doe@example.com", "010-1234-5678"


@dataclass
class Served:
    server: LiveServer
    mock: MockOpenAIServer
    data_dir: Path
    claude: MockAnthropicServer

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("tickets")
    (root / "key").write_text("test-key")
    example = yaml.safe_load((EXAMPLE / "dockyard.yaml").read_text())
    policies = example["policies"]
    models = {
        **example["models"],
        "sloppy": "offline:tickets-sloppy",
        "flaky": "offline:tickets-flaky",
        "mock": {
            "model": "openai:gpt-4o-mini",
            "base_url": "",
            "api_key_file": str(root / "key"),
            "max_retries": 0,
        },
        "claude": {
            "model": "anthropic:claude-sonnet-4-6",
            "base_url": "",
            "api_key_file": str(root / "key"),
            "max_retries": 0,
        },
    }
    assistants = {
        # No fallback model: a bad answer is retried once, then rejected (and not cached).
        "tickets-strict": {
            "graph": "tickets",
            "policies": {"quality": {**policies["quality"], "fallback_model": None}},
        },
        # The balanced tier on a provider SDK (the mock), which records what it was sent.
        "tickets-mock": {
            "graph": "tickets",
            "policies": {
                "routing": {
                    **policies["routing"],
                    "tiers": {**policies["routing"]["tiers"], "balanced": "mock"},
                }
            },
        },
        # The quality tier on Anthropic's SDK (the mock Messages API).
        "tickets-claude": {
            "graph": "tickets",
            "policies": {
                "routing": {
                    **policies["routing"],
                    "tiers": {**policies["routing"]["tiers"], "quality": "claude"},
                }
            },
        },
    }
    with (
        MockOpenAIServer() as mock,
        MockAnthropicServer() as claude,
        pytest.MonkeyPatch.context() as mp,
    ):
        models["mock"]["base_url"] = mock.base_url
        models["claude"]["base_url"] = claude.base_url
        for name in (*PROVIDER_ENV, "DOCKYARD_CONFIG_FILE"):
            mp.delenv(name, raising=False)
        mp.delitem(sys.modules, "dockyard.agents.tickets", raising=False)
        data_dir = root / "data"
        server = LiveServer(
            data_dir, config=EXAMPLE / "dockyard.yaml", models=models, assistants=assistants
        ).start()
        try:
            yield Served(server, mock, data_dir, claude)
        finally:
            server.stop()


@pytest.fixture
async def sdk(served: Served) -> AsyncIterator[LangGraphClient]:
    client = get_client(url=served.url, timeout=60)
    yield client
    await client.aclose()


def ticket(priority: str = "normal", **changes: Any) -> dict[str, Any]:
    """An English ticket, new each time (its id keeps the cache of other tests out)."""
    base = {
        "id": f"T-{uuid.uuid4().hex[:8]}",
        "subject": "Checkout page returns HTTP 500",
        "priority": priority,
        "tags": ["checkout", "payments"],
        "description": "Since yesterday the checkout page fails with a 500 error after the "
        f"card step. None of our customers can pay and we are losing orders. Reach me at "
        f"{EMAIL} or {PHONE}.",
        "conversation": [
            {"role": "customer", "text": "This is unacceptable, we are losing revenue."},
            {
                "role": "agent",
                "text": "We restarted the payment worker. We will check the gateway logs "
                "and update you tomorrow.",
            },
        ],
        "attachments": [
            {"name": "gateway.log", "type": "text/plain"},
            {"name": "logo.svg", "type": "image/svg+xml"},
        ],
    }
    return {**base, **changes}


async def summarize(
    sdk: LangGraphClient, body: dict[str, Any], assistant: str = "tickets", **kwargs: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One run: its final values and the run as ``runs.get`` shows it."""
    thread = await sdk.threads.create()
    inp = {"ticket": body, "priority": body["priority"]}
    run = await sdk.runs.create(thread["thread_id"], assistant, input=inp, **kwargs)
    values = await sdk.runs.join(thread["thread_id"], run["run_id"])
    done = await sdk.runs.get(thread["thread_id"], run["run_id"])
    assert done["status"] == "success", done
    return dict(values), dict(done)


async def test_summary_is_validated_json_and_markdown_on_the_quality_tier(
    sdk: LangGraphClient,
) -> None:
    values, run = await summarize(sdk, ticket())
    summary = TicketSummary.model_validate(values["summary"])
    assert summary.problem.startswith("Since yesterday the checkout page fails")
    assert summary.sentiment == "negative"
    assert [a.name for a in summary.attachments_worth_opening] == ["gateway.log"]
    assert json.loads(values["messages"][-1]["content"]) == values["summary"]
    markdown = values["markdown"]
    assert markdown.startswith("# T-") and "## Customer impact" in markdown
    assert "- We restarted the payment worker." in markdown
    # Routing: normal priority, short -> the quality tier (models.default).
    assert run["usage"]["tiers"] == {"quality": 1}
    assert list(run["usage"]["models"]) == ["offline-tickets"]
    assert run["quality"]["decision"] == "accept" and run["quality"]["score"] >= 0.8
    assert run["usage"]["prompts"][0]["name"] == "anthropic_ticket_view"


async def test_korean_ticket_gets_a_korean_summary(sdk: LangGraphClient) -> None:
    body = ticket(
        subject="관리자 페이지 로그인 불가",
        description="오늘 아침부터 관리자 페이지에 로그인하면 빈 화면만 나옵니다. 모든 관리자 "
        "계정이 같은 문제를 겪고 있어 상품 등록이 중단되었습니다.",
        conversation=[{"role": "customer", "text": "언제까지 기다려야 하나요? 정말 답답합니다."}],
        attachments=[{"name": "빈화면.jpg", "type": "image/jpeg"}],
    )
    values, run = await summarize(sdk, body)
    assert values["summary"]["current_status"] == "지원팀 처리 대기"
    assert "## 고객 영향" in values["markdown"]
    assert run["quality"]["parts"]["language"]["score"] == 1.0


async def test_long_ticket_goes_to_the_fast_tier(sdk: LangGraphClient) -> None:
    log_lines = " ".join(f"retry {i}: gateway timeout after 30s." for i in range(900))
    body = ticket(priority="urgent", description=ticket()["description"] + " " + log_lines)
    values, run = await summarize(sdk, body)
    assert run["usage"]["tiers"] == {"fast": 1}  # size wins over priority
    assert list(run["usage"]["models"]) == ["offline-tickets-fast"]
    assert values["summary"] is not None


async def test_high_priority_goes_to_balanced_and_pii_is_masked_before_the_model(
    served: Served, sdk: LangGraphClient
) -> None:
    body = ticket(priority="high")
    answer = {
        "problem": "Since yesterday the checkout page fails with a 500 error after the card step.",
        "customer_impact": "None of our customers can pay and we are losing orders.",
        "actions_taken": ["We restarted the payment worker."],
        "current_status": "waiting on the customer",
        "next_steps": ["We will check the gateway logs and update you tomorrow."],
        "sentiment": "negative",
        "attachments_worth_opening": [{"name": "gateway.log", "reason": "the gateway errors"}],
    }
    before = len(served.mock.requests)
    served.mock.enqueue_text(json.dumps(answer))
    values, run = await summarize(sdk, body, assistant="tickets-mock")
    assert values["summary"] == answer
    assert run["usage"]["tiers"] == {"balanced": 1}
    assert list(run["usage"]["models"]) == ["gpt-4o-mini"]
    sent = json.dumps(served.mock.requests[before].body, ensure_ascii=False)
    assert EMAIL not in sent and PHONE not in sent
    assert "***-****-5678" in sent and "@*******.com" in sent
    assert "Checkout page returns HTTP 500" in sent  # the rest of the ticket went through


async def test_the_quality_tier_on_anthropic(served: Served, sdk: LangGraphClient) -> None:
    answer = {
        "problem": "Since yesterday the checkout page fails with a 500 error after the card step.",
        "customer_impact": "None of our customers can pay and we are losing orders.",
        "actions_taken": ["We restarted the payment worker."],
        "current_status": "in progress",
        "next_steps": ["We will check the gateway logs and update you tomorrow."],
        "sentiment": "negative",
        "attachments_worth_opening": [{"name": "gateway.log", "reason": "the gateway errors"}],
    }
    before = len(served.claude.requests)
    served.claude.enqueue_text(json.dumps(answer))
    values, run = await summarize(sdk, ticket(), assistant="tickets-claude")
    assert values["summary"] == answer
    assert "## Problem" in values["markdown"]
    assert run["usage"]["tiers"] == {"quality": 1}
    assert list(run["usage"]["models"]) == ["claude-sonnet-4-6"]
    assert run["quality"]["decision"] == "accept"
    sent = json.dumps(served.claude.requests[before].body, ensure_ascii=False)
    assert EMAIL not in sent and "Checkout page returns HTTP 500" in sent


async def test_low_quality_answer_goes_to_the_fallback_model(sdk: LangGraphClient) -> None:
    config = {"configurable": {"dockyard_model": "sloppy"}}
    values, run = await summarize(sdk, ticket(), config=config)
    verdict = run["quality"]
    assert verdict["decision"] == "fallback" and verdict["accepted"] is True
    assert [a["model"] for a in verdict["attempts"]] == ["sloppy", "backup"]
    assert verdict["attempts"][0]["score"] < 0.4 <= 0.8 <= verdict["attempts"][1]["score"]
    TicketSummary.model_validate(values["summary"])


async def test_mediocre_answer_is_asked_again(sdk: LangGraphClient) -> None:
    config = {"configurable": {"dockyard_model": "flaky"}}
    values, run = await summarize(sdk, ticket(), config=config)
    verdict = run["quality"]
    assert verdict["decision"] == "retry" and verdict["accepted"] is True
    first, second = verdict["attempts"]
    assert first["model"] == second["model"] == "flaky"
    assert 0.4 <= first["score"] < 0.8 <= second["score"]
    assert values["summary"]["next_steps"]


async def test_good_answers_are_cached_and_bad_ones_not(sdk: LangGraphClient) -> None:
    good = ticket()
    _, first = await summarize(sdk, good)
    _, again = await summarize(sdk, good)
    assert first["quality"]["cached"] is False
    assert again["quality"]["cached"] is True and again["usage"]["cache_hits"] == 1

    bad = ticket()
    config = {"configurable": {"dockyard_model": "sloppy"}}
    for _ in range(2):
        values, run = await summarize(sdk, bad, assistant="tickets-strict", config=config)
        assert run["quality"]["decision"] == "reject" and run["quality"]["cached"] is False
        assert run["usage"]["cache_hits"] == 0
        assert values["summary"] is None and "does not match the schema" in values["error"]


def test_batch_cli_with_a_concurrency_cap(served: Served, tmp_path: Path) -> None:
    lines = [
        json.dumps(ticket(id="B-1")),
        json.dumps({"ticket": ticket(id="B-2", priority="low")}),
        "not json",
        json.dumps(ticket(id="B-3", subject="")),  # not a valid ticket
    ]
    batch = tmp_path / "tickets.jsonl"
    batch.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out.jsonl"
    args = ["agents", "summarize", str(batch), "--url", served.url, "--concurrency", "2"]
    result = CliRunner().invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 1, result.output  # some failed; the others are written
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["B-1", "B-2", "line 3", "B-3"]
    assert TicketSummary.model_validate(rows[0]["summary"]) and rows[1]["summary"]
    assert rows[0]["quality"]["accepted"] is True
    assert "not JSON" in rows[2]["error"] and "subject" in rows[3]["error"]
    assert "2 of 4 tickets summarized" in result.output

    md = tmp_path / "out.md"
    batch.write_text(lines[0] + "\n")
    result = CliRunner().invoke(app, [*args, "--out", str(md), "--format", "markdown"])
    assert result.exit_code == 0, result.output
    assert md.read_text().startswith("# B-1: Checkout page returns HTTP 500")


def test_dockyard_eval_on_the_shipped_dataset(served: Served, tmp_path: Path) -> None:
    args = [
        "eval",
        str(EXAMPLE / "eval" / "tickets.jsonl"),
        "--assistant",
        "tickets",
        "--url",
        served.url,
        "--scorers",
        str(EXAMPLE / "eval" / "scorers.yaml"),
        "--min-score",
        "0.8",
        "--out",
        str(tmp_path / "report"),
        "--no-png",
        "--config",
        str(EXAMPLE / "dockyard.yaml"),
    ]
    env = {"DOCKYARD_DATA_DIR": str(served.data_dir), "COLUMNS": "200"}
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    (variant,) = report["variants"]
    assert variant["errors"] == 0 and variant["score"]["mean"] >= 0.8
    assert len(report["items"]) == 10


async def test_example_client_script(served: Served, capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("tickets_client", EXAMPLE / "client.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert await module.main(served.url) == 0
    out = capsys.readouterr().out
    assert out.startswith("# TCK-1001: Checkout returns HTTP 500 for every order")
    # (The first may be a cache hit too: the eval above sends the same ticket.)
    assert "[first] tier {'balanced': 1}" in out and "quality 1.0 (accept)" in out
    assert out.splitlines()[-1].startswith("[again] tier {'balanced': 1}")
    assert out.splitlines()[-1].endswith("cached True, tokens 0")
