"""Gradual rollouts on a live server (docs/rollouts.md), through langgraph-sdk, the HTTP
API and the CLI: half the users on a candidate prompt version, each always the same
variant; a run pinned to a prompt version (``dockyard eval --prompt``) gets it from
``prompt()``; low candidate scores roll the rollout back, with an alert to a webhook, and
every new run is stable; ``dockyard rollout promote|abort|status``; bad definitions
refused with what to fix."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import openai
import pytest
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient
from typer.testing import CliRunner

from dockyard.cli.main import app
from dockyard.errors import ConfigError
from dockyard.prompts import Draft
from dockyard.rollouts import bucket
from dockyard.settings import load_settings
from dockyard.storage.sql.alerts import SqlAlerts
from tests.conftest import LiveServer, eventually, make_key
from tests.observability.alerts.receivers import Receiver, http_receiver
from tests.observability.scrape import scrape

PROJECT = Path(__file__).parent / "project"
CONFIG = PROJECT / "dockyard.yaml"
USERS = [f"user-{i}" for i in range(40)]
V1, V2 = "ticket-summary@1", "ticket-summary@2"


@pytest.fixture(scope="module")
def hook() -> Iterator[Receiver]:
    with http_receiver() as r:
        yield r


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, hook: Receiver) -> Iterator[LiveServer]:
    data = tmp_path_factory.mktemp("rollouts")
    notifiers = {"hook": {"type": "webhook", "url": hook.url}}
    live = LiveServer(
        data, config=CONFIG, observability={"alerts": {"notifiers": notifiers}}
    ).start()
    registry = live.app.state.runtime.prompts
    for name, template in (
        ("ticket-summary", "TL;DR {{ ticket }}"),
        ("greeting", "Hi! {{ ticket }}"),
    ):
        draft = Draft(name=name, kind="text", template=template, sample={"ticket": "x"})
        live.run(registry.push(draft, author="test"))
    yield live
    live.stop()


@pytest.fixture(scope="module")
def admin(server: LiveServer) -> dict[str, str]:
    return {"x-api-key": make_key(server, tenant="ops", scopes=["admin"])}


@pytest.fixture
async def client(server: LiveServer) -> AsyncIterator[LangGraphClient]:
    c = get_client(url=server.url, timeout=30)
    yield c
    await c.aclose()


async def ask(
    client: LangGraphClient,
    assistant: str,
    user: str,
    thread_id: str | None = None,
    **kw: Any,
) -> str:
    values: Any = await client.runs.wait(
        thread_id,
        assistant,
        input={"messages": [{"role": "user", "content": "the app crashes"}], **kw.pop("input", {})},
        metadata={"user_id": user},
        **kw,
    )
    return str(values["used"])


async def dockyard(server: LiveServer, *args: str) -> Any:
    """The CLI in the project, on the server's database (in a thread: it runs its own
    event loop)."""
    env = {"DOCKYARD_DATA_DIR": str(server.settings.data_dir), "COLUMNS": "200"}
    argv = [*args, "--config", str(CONFIG)]
    return await asyncio.to_thread(CliRunner().invoke, app, argv, env=env)


async def cli(server: LiveServer, *args: str) -> Any:
    return await dockyard(server, "rollout", *args)


def expected(user: str) -> str:
    """What the rule says (docs/rollouts.md): candidate when the user's hash under the
    rollout's name is below its share."""
    return V2 if bucket("summary-v2", user) < 0.5 else V1


async def test_half_the_users_get_the_candidate_and_keep_it(
    server: LiveServer, client: LangGraphClient
) -> None:
    before = scrape(server.url)
    first = await asyncio.gather(*(ask(client, "summarize", u) for u in USERS))
    assert first == [expected(u) for u in USERS]
    on_candidate = first.count(V2)
    assert 8 <= on_candidate <= 32, on_candidate  # both variants get real traffic
    assert await ask(client, "summarize", "vip") == V2  # a named user: always the candidate

    # The same user on other threads, run after run: the same variant.
    for user in USERS[:6]:
        thread = await client.threads.create()
        for _ in range(2):
            assert await ask(client, "summarize", user, thread["thread_id"]) == expected(user)
        [run, _] = await client.runs.list(thread["thread_id"])
        variant = "candidate" if expected(user) == V2 else "stable"
        assert run["metadata"]["dockyard_rollout"] == {"name": "summary-v2", "variant": variant}

    stable_threads = sum(expected(u) == V1 for u in USERS[:6])
    want = {
        "candidate": on_candidate + 1 + 2 * (6 - stable_threads),
        "stable": len(USERS) - on_candidate + 2 * stable_threads,
    }

    def moved() -> dict[str, float]:
        # A run is counted as it ends, which its waiting client may see a moment before.
        after = scrape(server.url)
        return {
            v: after.value("dockyard_runs_total", assistant="summarize", variant=v)
            - before.value("dockyard_runs_total", assistant="summarize", variant=v)
            for v in want
        }

    await eventually(lambda: sum(moved().values()) >= sum(want.values()))
    assert moved() == want


async def test_openai_and_chat_requests_are_assigned_the_same_way(server: LiveServer) -> None:
    users = USERS[:8]
    oai = openai.AsyncOpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)
    async with oai, httpx.AsyncClient(base_url=server.url, timeout=30) as h:
        for user in users:
            reply = await oai.chat.completions.create(
                model="summarize", messages=[{"role": "user", "content": "hi"}], user=user
            )
            assert (reply.choices[0].message.content or "").startswith(f"{expected(user)}:")
            answer = await h.post(
                "/chat",
                json={
                    "user_id": user,
                    "session_id": "s1",
                    "message": "hi",
                    "assistant_id": "summarize",
                },
            )
            assert answer.status_code == 200, answer.text
            assert answer.json()["reply"].startswith(f"{expected(user)}:")


async def test_a_model_rollout_splits_model_calls_and_usage(
    server: LiveServer, client: LangGraphClient
) -> None:
    users = USERS[:12]
    before = scrape(server.url)
    await asyncio.gather(*(ask(client, "chat", u) for u in users))
    after = scrape(server.url)
    on_alt = sum(bucket("chat-alt", u) < 0.5 for u in users)
    assert 0 < on_alt < len(users)

    async def usage(by: str) -> dict[str, int]:
        result = await dockyard(server, "usage", "--by", by, "--json")
        assert result.exit_code == 0, result.output
        return {r["group"]: r["calls"] for r in json.loads(result.stdout)}

    def calls(model: str) -> float:
        name = "dockyard_model_requests_total"
        return after.value(name, model=model) - before.value(name, model=model)

    # The candidate's calls went to the `models:` entry the rollout names.
    assert (calls("alt"), calls("default")) == (on_alt, len(users) - on_alt)
    assert await usage("variant") == {
        "chat-alt:candidate": on_alt,
        "chat-alt:stable": len(users) - on_alt,
    }


async def test_a_run_pinned_to_a_prompt_version_gets_it(
    server: LiveServer, client: LangGraphClient, tmp_path: Path
) -> None:
    stable_user = next(u for u in USERS if expected(u) == V1)

    def pin(**ref: Any) -> dict[str, Any]:
        return {"configurable": {"dockyard_prompt": ref}}

    # Pinned runs are the caller's: no rollout touches them (the named user included).
    assert await ask(client, "summarize", "vip", config=pin(name="ticket-summary", version=1)) == V1
    assert (
        await ask(client, "summarize", stable_user, config=pin(name="ticket-summary", version=2))
        == V2
    )
    latest = pin(name="ticket-summary", label="latest")
    assert await ask(client, "summarize", stable_user, config=latest) == V2
    # Only the prompt it names: the graph's other prompts are as they were.
    assert await ask(client, "summarize", stable_user, config=pin(name="greeting", version=2)) == V1

    # `dockyard eval --prompt NAME@VERSION` sets it on each of its runs.
    data = tmp_path / "items.jsonl"
    data.write_text(
        "\n".join(
            json.dumps({"id": f"t{i}", "input": f"ticket {i}", "expected": V1}) for i in range(3)
        )
        + "\n"
    )
    result = await dockyard(
        server,
        *("eval", str(data), "--assistant", "summarize", "--prompt", V1, "--url", server.url),
        *("--scorer", "contains", "--min-score", "1", "--out", str(tmp_path / "report")),
    )
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert [i["variants"]["A"]["output"].split(":")[0] for i in report["items"]] == [V1] * 3


async def test_promote_and_abort_from_the_cli(server: LiveServer, client: LangGraphClient) -> None:
    assert await ask(client, "greet", "vip", input={"prompt": "greeting"}) == "greeting@2"
    assert await ask(client, "greet", "someone", input={"prompt": "greeting"}) == "greeting@1"
    shown = await cli(server, "status", "greeting-v2", "--json")
    assert shown.exit_code == 0, shown.output
    [row] = json.loads(shown.stdout)
    assert row["state"] == "active" and row["source"] == "config"

    promoted = await cli(server, "promote", "greeting-v2")
    assert promoted.exit_code == 0, promoted.output
    assert "greeting:production 1 → 2" in promoted.output
    # The stable label moved: everyone gets version 2, through the registry.
    await eventually(
        lambda: (
            ask(client, "greet", "someone", input={"prompt": "greeting"}) == "greeting@2"
            if False
            else _is(client, "greet", "someone", "greeting@2")
        )
    )
    again = await cli(server, "promote", "greeting-v2")
    assert again.exit_code == 1 and "rollout_not_active" in again.output

    assert await ask(client, "triage", "someone") == V2  # share 1.0
    aborted = await cli(server, "abort", "triage-v2", "--reason", "wrong audience")
    assert aborted.exit_code == 0, aborted.output
    await eventually(lambda: _is(client, "triage", "someone", V1))
    table = await cli(server, "status")
    assert table.exit_code == 0, table.output
    assert "triage-v2: aborted" in table.output and "wrong audience" in table.output
    missing = await cli(server, "abort", "nope")
    assert missing.exit_code == 1 and "no rollout named 'nope'" in missing.output


async def _is(client: LangGraphClient, assistant: str, user: str, want: str) -> bool:
    prompt = "greeting" if assistant == "greet" else "ticket-summary"
    return await ask(client, assistant, user, input={"prompt": prompt}) == want


async def test_bad_rollouts_are_refused_good_ones_made_over_the_api(
    server: LiveServer, admin: dict[str, str], tmp_path: Path
) -> None:
    bad = tmp_path / "dockyard.yaml"
    base = "graphs:\n  summarize: ./graphs.py:graph\nrollouts:\n  r:\n"
    head = "    assistant: summarize\n"
    cases = [
        ("    assistant: nobody\n    candidate: {prompt: p@2}\n", "no assistant or graph named"),
        (head + "    candidate: {prompt: p}\n", "expected NAME@VERSION"),
        (head + "    candidate: {prompt: p@2, model: m}\n", "set prompt (NAME@VERSION) or model"),
        (head + "    candidate: {model: nope}\n", "candidate.model: no model named 'nope'"),
        (head + "    candidate: {prompt: p@2}\n    share: 1.5\n", "rollouts.r.share = 1.5"),
        (head + "    candidate: {prompt: p@2}\n    shares: 0.5\n", "shares = 0.5: unknown key"),
    ]
    for body, message in cases:
        bad.write_text(base + body)
        with pytest.raises(ConfigError) as e:
            load_settings(bad)
        assert message in e.value.message, e.value.message
    body = {"name": "x", "assistant": "summarize", "candidate": {"prompt": "ticket-summary@2"}}
    async with httpx.AsyncClient(base_url=server.url) as h:
        refused = await h.post("/rollouts", json=body)
        assert refused.status_code == 403  # admin keys only
    async with httpx.AsyncClient(base_url=server.url, headers=admin) as h:
        busy = await h.post("/rollouts", json=body)
        assert busy.status_code == 409 and busy.json()["code"] == "rollout_conflict"
        typo = await h.post("/rollouts", json={**body, "assistant": "greet", "shar": 0.1})
        assert typo.status_code == 422
        gone = await h.post(
            "/rollouts",
            json={**body, "candidate": {"prompt": "ticket-summary@9"}, "assistant": "greet"},
        )
        assert gone.status_code == 404 and gone.json()["code"] == "prompt_not_found"
        # A good one over the API: triage's rollout was aborted, its assistant is free.
        made = await h.post(
            "/rollouts", json={**body, "name": "triage-v3", "assistant": "triage", "share": 1.0}
        )
        assert made.status_code == 201, made.text
        assert made.json()["state"] == "active" and made.json()["source"] == "api"
        async with get_client(url=server.url) as client:
            await eventually(lambda: _is(client, "triage", "someone", V2))
        stop = await h.post("/rollouts/triage-v3/abort", json={"reason": "done"})
        assert stop.status_code == 200 and stop.json()["state"] == "aborted"


async def test_low_candidate_quality_rolls_back_with_an_alert(
    server: LiveServer, client: LangGraphClient, hook: Receiver, admin: dict[str, str]
) -> None:
    # Scores as the quality gate records them: the candidate's runs score low.
    rt = server.app.state.runtime
    alerts = SqlAlerts(rt.storage.engine)
    [aid] = server.run(alerts.assistant_ids("summarize"))
    now = datetime.now(UTC)
    for score in (0.9, 0.2, 0.3, 0.1, 0.4):
        server.run(alerts.record_quality(str(uuid4()), aid, score, now, variant="candidate"))
    for _ in range(5):  # the stable variant is fine; it is not what is checked
        server.run(alerts.record_quality(str(uuid4()), aid, 0.95, now, variant="stable"))

    async def state() -> str:
        async with httpx.AsyncClient(base_url=server.url, headers=admin) as h:
            return str((await h.get("/rollouts/summary-v2")).json()["state"])

    await eventually(lambda: _rolled_back(state))
    async with httpx.AsyncClient(base_url=server.url, headers=admin) as h:
        row = (await h.get("/rollouts/summary-v2")).json()
    assert row["changed_by"] == "auto" and "candidate quality 0.380 < 0.6" in row["reason"]
    assert row["details"]["scored_runs"] == 5
    [post] = await eventually(lambda: [p for p in hook.posts if b"summary-v2" in p.body])
    sent = json.loads(post.body)
    assert sent["event"] == "alert.firing" and sent["kind"] == "rollout_rollback"
    assert sent["details"]["value"] == pytest.approx(0.38) and sent["details"]["threshold"] == 0.6
    history = server.run(alerts.history())
    assert [a.kind for a in history if a.rule == "rollout:summary-v2"] == ["rollout_rollback"]

    # Every new run is stable, the named user's and those the hash gave the candidate.
    candidates = [u for u in USERS if expected(u) == V2][:5]
    await eventually(lambda: _is(client, "summarize", "vip", V1))
    for user in candidates:
        assert await ask(client, "summarize", user) == V1


async def _rolled_back(state: Any) -> bool:
    return await state() == "rolled_back"
