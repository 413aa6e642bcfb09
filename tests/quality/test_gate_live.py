"""The quality gate as a user sees it: a graph on ``chat_model("default")`` served by
dockyard with ``policies.quality``, driven with langgraph-sdk against the mock OpenAI
(primary) and Anthropic (fallback) servers.

Scorers: ``contains: refund`` (weight 3) and ``forbidden: sorry`` (weight 1), so "sorry,
refund approved" scores 0.75 (retry band), "sorry, no idea" 0 (fallback band) and an
answer with a refund and no apology 1 (accepted). The mock servers echo the last user
message when nothing is queued.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from langgraph_sdk import get_client

from dockyard.errors import ConfigError
from dockyard.policies.chain import model_wrap
from dockyard.runtime import quality
from dockyard.settings import load_settings
from dockyard.storage.sql.alerts import SqlAlerts
from dockyard.testing import MockAnthropicServer, MockOpenAIServer
from tests.conftest import LiveServer, eventually
from tests.pg import fresh_database_sync
from tests.redis_server import REDIS_URL, fresh_prefix

pytestmark = pytest.mark.timeout(120)

AGENT = """
from typing import Any

from langgraph.graph import START, MessagesState, StateGraph

from dockyard import chat_model

model = chat_model("default")


async def answer(state: MessagesState) -> dict[str, Any]:
    return {"messages": [await model.ainvoke(state["messages"])]}


graph = StateGraph(MessagesState)
graph.add_node("answer", answer)
graph.add_edge(START, "answer")
graph = graph.compile()
"""

RUBRIC = {
    "name": "rubric",
    "type": "text",
    "template": "RUBRIC-V1: one point when the answer names the refund.",
    "labels": ["production"],
    "message": "the judge's rubric",
}

RUBRIC_REF = "rubric@production"
SCORERS = [
    {"type": "contains", "values": ["refund"], "weight": 3},
    {"type": "forbidden", "phrases": ["sorry"], "weight": 1},
]


def project(root: Path, openai_url: str, anthropic_url: str) -> Path:
    (root / "agent.py").write_text(AGENT)
    (root / "anthropic.key").write_text("test-key")
    (root / "prompts").mkdir()
    (root / "prompts" / "rubric.yaml").write_text(yaml.safe_dump(RUBRIC))
    config = {
        "graphs": {"answer": "./agent.py:graph"},
        "models": {
            "default": {"model": "openai:gpt-primary", "base_url": openai_url, "temperature": 0},
            "backup": {
                "model": "anthropic:claude-backup",
                "base_url": anthropic_url,
                "api_key_file": "anthropic.key",
                "temperature": 0,
            },
            "judge": {"model": "openai:gpt-judge", "base_url": openai_url, "temperature": 0},
        },
        "policies": {
            "cache": {"ttl_seconds": 600, "min_quality": 0.8},
            "quality": {"scorers": SCORERS, "max_retries": 1, "fallback_model": "backup"},
        },
        "assistants": {
            "judged": {
                "graph": "answer",
                "policies": {
                    "cache": None,
                    "quality": {
                        "scorers": [
                            {
                                "type": "judge",
                                "model": "judge",
                                "rubric_prompt": "rubric@production",
                            }
                        ],
                        "max_retries": 0,
                    },
                },
            }
        },
    }
    path = root / "dockyard.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def mocks() -> Iterator[tuple[MockOpenAIServer, MockAnthropicServer]]:
    with MockOpenAIServer() as openai, MockAnthropicServer() as anthropic:
        yield openai, anthropic


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, mocks: tuple[MockOpenAIServer, MockAnthropicServer]
) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("gate")
    config = project(root, mocks[0].base_url, mocks[1].base_url)
    live = LiveServer(root / "data", config=config).start()
    yield live
    live.stop()


@pytest.fixture
def primary(mocks: tuple[MockOpenAIServer, MockAnthropicServer]) -> MockOpenAIServer:
    mocks[0].reset()
    return mocks[0]


@pytest.fixture
def backup(mocks: tuple[MockOpenAIServer, MockAnthropicServer]) -> MockAnthropicServer:
    mocks[1].reset()
    return mocks[1]


def user(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}


def posts(mock: MockOpenAIServer | MockAnthropicServer) -> int:
    return len([r for r in mock.requests if r.method == "POST"])


def quality_count(metrics: str, assistant: str) -> float:
    for line in metrics.splitlines():
        if line.startswith(f'dockyard_quality_score_count{{assistant="{assistant}"}}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_a_low_answer_is_retried_then_answered_by_the_fallback_model(
    server: LiveServer, primary: MockOpenAIServer, backup: MockAnthropicServer
) -> None:
    primary.enqueue_text("sorry, refund approved")  # 0.75: asked again
    primary.enqueue_text("sorry, no idea")  # 0: to the fallback model
    backup.enqueue_text("Your refund is approved.")  # 1: accepted
    client = get_client(url=server.url, timeout=30)
    async with httpx.AsyncClient(base_url=server.url) as http:
        before = quality_count((await http.get("/metrics")).text, "answer")
        thread = await client.threads.create()
        parts = [
            part
            async for part in client.runs.stream(
                thread["thread_id"],
                "answer",
                input=user("where is my refund?"),
                stream_mode=["messages", "values"],
            )
        ]
        # Buffered: only the answer kept streamed, none of the discarded attempts.
        tokens = "".join(
            p.data[0]["content"] for p in parts if p.event == "messages/partial" and p.data
        )
        assert "sorry" not in tokens and tokens.endswith("Your refund is approved.")
        (run,) = await client.runs.list(thread["thread_id"])
        got = await client.runs.get(thread["thread_id"], run["run_id"])
        q = got["quality"]
        assert q["decision"] == "fallback" and q["accepted"] is True
        assert q["score"] == 1.0 and q["model"] == "backup"
        assert q["attempts"] == [
            {"model": "default", "score": 0.75},
            {"model": "default", "score": 0.0},
            {"model": "backup", "score": 1.0},
        ]
        assert q["parts"] == {
            "contains": {"score": 1.0, "reasons": []},
            "forbidden": {"score": 1.0, "reasons": []},
        }
        assert "quality" not in got["usage"]
        # The run paid for the three attempts: their tokens are on the one call.
        assert got["usage"]["model_calls"] == 1
        assert (posts(primary), posts(backup)) == (2, 1)
        state = await client.threads.get_state(thread["thread_id"])
        assert state["values"]["messages"][-1]["content"] == "Your refund is approved."
        after = (await http.get("/metrics")).text
        assert quality_count(after, "answer") == before + 1
    await client.aclose()
    store = SqlAlerts(server.app.state.runtime.storage.engine)
    since = datetime.now(UTC) - timedelta(minutes=5)
    # The quality alert rule (and rollouts) read the run's score from the alert store.
    assert await eventually(lambda: server.run(store.quality(since, [run["assistant_id"]]))[0])
    assert server.run(store.quality(since, [run["assistant_id"]]))[1] == 1.0


async def test_only_high_scoring_answers_are_cached(
    server: LiveServer, primary: MockOpenAIServer, backup: MockAnthropicServer
) -> None:
    client = get_client(url=server.url, timeout=30)
    try:
        # Echoed: "refund please" scores 1, is accepted and stored; asked again, the
        # cache answers.
        hit = await client.threads.create()
        for thread_id in (None, hit["thread_id"]):
            out = await client.runs.wait(thread_id, "answer", input=user("refund please"))
            assert isinstance(out, dict) and out["messages"][-1]["content"] == "refund please"
        assert posts(primary) == 1
        (run,) = await client.runs.list(hit["thread_id"])
        got = await client.runs.get(hit["thread_id"], run["run_id"])
        # The hit replays the verdict stored with the answer.
        assert (got["quality"]["decision"], got["quality"]["cached"]) == ("accept", True)
        assert got["usage"]["cache_hits"] == 1
        # "sorry, refund" scores 0.75 twice (asked again once): kept as the best, not
        # accepted, not stored; asked again, the model is asked again.
        thread = await client.threads.create()
        for _ in range(2):
            await client.runs.wait(None, "answer", input=user("sorry, refund"))
        assert posts(primary) == 1 + 2 + 2
        await client.runs.wait(thread["thread_id"], "answer", input=user("sorry, refund"))
        (run,) = await client.runs.list(thread["thread_id"])
        q = (await client.runs.get(thread["thread_id"], run["run_id"]))["quality"]
        assert (q["decision"], q["accepted"], q["score"], q["cached"]) == (
            "reject",
            False,
            0.75,
            False,
        )
        assert q["parts"]["forbidden"] == {"score": 0.0, "reasons": ["forbidden phrase 'sorry'"]}
        assert posts(backup) == 0
    finally:
        await client.aclose()


async def test_a_judge_reads_its_rubric_from_the_prompt_registry(
    server: LiveServer, primary: MockOpenAIServer, backup: MockAnthropicServer
) -> None:
    primary.enqueue_text("A refund of 20 EUR is on its way.")
    primary.enqueue_text(json.dumps({"score": 0.9, "reasons": ["names the refund"]}))
    client = get_client(url=server.url, timeout=30)
    try:
        thread = await client.threads.create()
        await client.runs.wait(thread["thread_id"], "judged", input=user("my refund?"))
        (run,) = await client.runs.list(thread["thread_id"])
        got = await client.runs.get(thread["thread_id"], run["run_id"])
    finally:
        await client.aclose()
    q = got["quality"]
    assert (q["decision"], q["score"]) == ("accept", 0.9)
    assert q["parts"]["judge"]["reasons"] == ["names the refund"]
    answer, judged = [r.body for r in primary.requests if r.method == "POST"]
    assert answer["model"] == "gpt-primary" and judged["model"] == "gpt-judge"
    prompt_text = json.dumps(judged["messages"])
    assert "RUBRIC-V1" in prompt_text and "A refund of 20 EUR" in prompt_text
    # The judge's call is counted (it costs), and the rubric's version is on the run.
    assert got["usage"]["model_calls"] == 2
    assert {"name": "rubric", "version": 1, "label": "production"} in got["usage"]["prompts"]


# -- configuration -----------------------------------------------------------------------


def test_seed_environment_names_set_the_thresholds(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in (
        ("ANTHROPIC_QUALITY_THRESHOLD", "0.9"),
        ("ANTHROPIC_RETRY_THRESHOLD", "0.7"),
        ("ANTHROPIC_FALLBACK_THRESHOLD", "0.3"),
        ("ANTHROPIC_MAX_RETRIES", "3"),
    ):
        monkeypatch.setenv(name, value)
    block = {"scorers": SCORERS, "retry": 0.5}  # set in the file: the file wins
    s = load_settings(None, policies={"quality": block})
    q = s.policies.quality
    assert q is not None
    assert (q.accept, q.retry, q.fallback, q.max_retries) == (0.9, 0.5, 0.3, 3)
    monkeypatch.setenv("ANTHROPIC_RETRY_THRESHOLD", "0.95")
    with pytest.raises(ConfigError, match=re.escape("retry=0.95, accept=0.9")):
        load_settings(None, policies={"quality": {"scorers": SCORERS}})
    monkeypatch.setenv("ANTHROPIC_MAX_RETRIES", "many")
    with pytest.raises(ConfigError, match=re.escape("ANTHROPIC_MAX_RETRIES = 'many'")):
        load_settings(None)


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ({"scorers": [{"type": "contains", "valuez": ["x"]}]}, "policies.quality.scorers[0"),
        ({"scorers": []}, "policies.quality.scorers"),
        ({"scorers": SCORERS, "fallback_model": "nope"}, "no model named 'nope'"),
        ({"scorers": SCORERS, "accept": 0.5}, "fallback <= retry <= accept"),
        (
            {"scorers": [{"type": "judge", "rubric_prompt": "rubric@"}]},
            "expected NAME@VERSION",
        ),
    ],
)
def test_configuration_errors_say_what_to_fix(block: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        settings = load_settings(None, policies={"quality": block})
        quality.install(model_wrap(settings), settings)


# -- PostgreSQL and Redis -----------------------------------------------------------------


async def test_over_postgresql_and_redis(tmp_path: Path) -> None:
    """The verdict stored in PostgreSQL's run row, the accepted answer in Redis's cache.
    (The worker layout runs the same attempt code; its start-up costs ~30 s here, so it is
    not repeated with separate processes.) Mock servers of its own: the provider packages
    cache their HTTP clients per URL, bound to the loop of the server that made them."""
    with (
        MockOpenAIServer() as primary,
        MockAnthropicServer() as backup,
        fresh_database_sync() as url,
        fresh_prefix() as prefix,
    ):
        config = project(tmp_path, primary.base_url, backup.base_url)
        server = LiveServer(
            tmp_path / "data",
            config=config,
            database_url=url,
            redis_url=REDIS_URL,
            redis_prefix=prefix,
        ).start()
        client = get_client(url=server.url, timeout=30)
        try:
            primary.enqueue_text("sorry, no idea")
            backup.enqueue_text("A refund is on its way.")
            thread = await client.threads.create()
            await client.runs.wait(thread["thread_id"], "answer", input=user("refund?"))
            (run,) = await client.runs.list(thread["thread_id"])
            q = (await client.runs.get(thread["thread_id"], run["run_id"]))["quality"]
            assert (q["decision"], q["model"], q["score"]) == ("fallback", "backup", 1.0)
            assert (posts(primary), posts(backup)) == (1, 1)
            # Accepted, so stored (in Redis): asked again, neither model is.
            out = await client.runs.wait(None, "answer", input=user("refund?"))
            assert isinstance(out, dict)
            assert out["messages"][-1]["content"] == "A refund is on its way."
            assert (posts(primary), posts(backup)) == (1, 1)
            store = SqlAlerts(server.app.state.runtime.storage.engine)
            since = datetime.now(UTC) - timedelta(minutes=5)
            assert await eventually(lambda: server.run(store.quality(since))[0] == 2)
        finally:
            await client.aclose()
            server.stop()
