"""Alerts on a live server: runs that really fail (a graph that raises, called with the
langgraph-sdk client) fire an alert that reaches Slack and an SMTP server exactly once,
and resolve once the failures leave the window; a thread left waiting for approval
fires its own alert until it is answered; the budget policy's threshold events reach the
notifiers through the same history."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_client

from dockyard.policies.budget import emit
from dockyard.storage.budgets import BudgetLine, Crossing, to_nanos
from dockyard.storage.sql.alerts import SqlAlerts
from tests.conftest import LiveServer, eventually, make_key
from tests.observability.alerts.receivers import Mailbox, Receiver, http_receiver, smtp_server

WINDOW_MINUTES = 0.05  # 3 s: the failures leave it while the test waits


@pytest.fixture
def slack() -> Iterator[Receiver]:
    with http_receiver() as r:
        yield r


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    with smtp_server(auth=("alerts", "smtp-pass")) as box:
        yield box


def alerts(slack: Receiver, mailbox: Mailbox) -> dict[str, Any]:
    return {
        "enabled": True,
        "interval_seconds": 0.1,
        "rules": {
            "errors": {
                "kind": "error_rate",
                "threshold": 0.05,
                "window_minutes": WINDOW_MINUTES,
                "min_runs": 2,
                "severity": "critical",
            },
            "approval-waiting": {"kind": "interrupted", "minutes": 0.01},
            "budget-80": {"kind": "budget", "threshold": 0.8},
        },
        "notifiers": {
            "slack": {"type": "slack", "url": slack.url},
            "oncall-mail": {
                "type": "email",
                "host": mailbox.host,
                "port": mailbox.port,
                "security": "none",
                "username": "alerts",
                "password": "smtp-pass",
                "sender": "dockyard@example.com",
                "to": ["oncall@example.com", "lead@example.com"],
                "min_severity": "critical",
            },
        },
    }


@pytest.fixture
def server(tmp_path: Path, slack: Receiver, mailbox: Mailbox) -> Iterator[LiveServer]:
    live = LiveServer(tmp_path, observability={"alerts": alerts(slack, mailbox)}).start()
    yield live
    live.stop()


def matching(receiver: Receiver, word: str) -> list[str]:
    return [t for t in receiver.texts() if word in t]


async def test_failing_runs_fire_once_then_resolve(
    server: LiveServer, slack: Receiver, mailbox: Mailbox
) -> None:
    client = get_client(url=server.url, timeout=30)
    try:
        for _ in range(3):
            out = await client.runs.wait(None, "failing", input={}, raise_error=False)
            assert "error" in out or "__error__" in out
    finally:
        await client.aclose()

    await eventually(lambda: matching(slack, "Error rate"), timeout=20)
    (firing,) = matching(slack, "Error rate")
    assert firing.startswith("[CRITICAL] FIRING: Error rate 100% > 5%")
    # 2 or 3 runs, as the evaluator found them (min_runs 2), all failed.
    assert firing.endswith(("(3 of 3 runs)", "(2 of 2 runs)"))

    # The failures leave the 3-second window: one resolved message. The evaluator ran
    # every 0.1 s in between, and sent nothing else about it.
    await eventually(lambda: len(matching(slack, "Error rate")) == 2, timeout=30)
    assert matching(slack, "Error rate")[1].startswith("[CRITICAL] RESOLVED: Error rate")

    # The e-mail notifier (critical alerts only): the same two, logged in.
    await eventually(lambda: len(mailbox.messages) == 2, timeout=10)
    subjects = [m["Subject"] for m in mailbox.messages]
    assert subjects[0].startswith("[dockyard] [CRITICAL] FIRING: Error rate 100% > 5%")
    assert subjects[1].startswith("[dockyard] [CRITICAL] RESOLVED: Error rate")
    assert mailbox.messages[0]["To"] == "oncall@example.com, lead@example.com"
    assert "Rule: errors" in mailbox.messages[0].get_payload()
    assert mailbox.logins == [("alerts", "smtp-pass")] * 2

    history = server.run(SqlAlerts(server.app.state.runtime.storage.engine).history())
    errors = [a for a in history if a.rule == "errors"]
    assert [(a.state, a.notifications) for a in errors] == [("resolved", 2)]
    assert errors[0].deliveries == {
        "slack": "ok: 200",
        "oncall-mail": "ok: sent to 2 recipient(s)",
    }

    # The same history over HTTP, for admin keys only.
    admin = make_key(server, tenant="ops", scopes=["admin"])
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as h:
        refused = await h.get("/alerts", headers={"x-api-key": make_key(server)})
        assert refused.status_code == 403, refused.text
        assert refused.json()["code"] == "forbidden"
        r = await h.get("/alerts", params={"state": "resolved"}, headers={"x-api-key": admin})
        assert r.status_code == 200, r.text
        listed = [a for a in r.json() if a["rule"] == "errors"]
        assert [(a["state"], a["severity"], a["notifications"]) for a in listed] == [
            ("resolved", "critical", 2)
        ]
        assert (
            await h.get("/alerts", params={"state": "x"}, headers={"x-api-key": admin})
        ).status_code == 422


async def test_waiting_for_approval_fires_until_answered(
    server: LiveServer, slack: Receiver
) -> None:
    client = get_client(url=server.url, timeout=30)
    try:
        thread = await client.threads.create()
        first = await client.runs.wait(thread["thread_id"], "hitl", input={"x": 1})
        assert "__interrupt__" in first
        await eventually(lambda: matching(slack, "waiting for approval"), timeout=20)
        assert matching(slack, "waiting")[0].startswith(
            "[WARNING] FIRING: 1 run(s) waiting for approval over 0.01 min"
        )
        await client.runs.wait(thread["thread_id"], "hitl", command={"resume": "yes"})
    finally:
        await client.aclose()
    await eventually(lambda: len(matching(slack, "waiting")) == 2, timeout=20)
    assert matching(slack, "waiting")[1].startswith("[WARNING] RESOLVED: 1 run(s) waiting")


async def test_budget_threshold_event_is_delivered(server: LiveServer, slack: Receiver) -> None:
    now = datetime.now(UTC)
    start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    line = BudgetLine("key:key_abc", "daily", to_nanos(5.0))

    async def cross() -> None:
        # What the budget policy does when a settle crosses a threshold.
        emit([Crossing(line, 0.8, to_nanos(4.2), start)])

    server.run(cross())
    await eventually(lambda: matching(slack, "budget"), timeout=20)
    assert matching(slack, "budget") == [
        "[WARNING] FIRING: API key 'key_abc' has spent $4.20 of its daily budget of $5.00 "
        "(84%, alert at 80%)"
    ]
    history = server.run(SqlAlerts(server.app.state.runtime.storage.engine).history())
    (budget,) = [a for a in history if a.rule == "budget-80"]
    assert budget.ends_at == start + timedelta(days=1)


def test_two_servers_on_one_database_send_each_alert_once(
    tmp_path: Path, slack: Receiver, mailbox: Mailbox
) -> None:
    """Two API processes sharing PostgreSQL (and Redis), each running its own runs and
    its own evaluator: one of them holds the lease, and Slack hears each change once."""
    from tests.pg import fresh_database_sync
    from tests.redis_server import REDIS_URL, fresh_prefix

    config = alerts(slack, mailbox)
    config["lease_seconds"] = 5
    with fresh_database_sync() as url, fresh_prefix() as prefix:
        shared = {"database_url": url, "redis_url": REDIS_URL, "redis_prefix": prefix}
        servers = [
            LiveServer(tmp_path / name, observability={"alerts": config}, **shared).start()
            for name in ("a", "b")
        ]
        try:

            async def fail_on_each() -> None:
                for server in servers:
                    client = get_client(url=server.url, timeout=30)
                    try:
                        for _ in range(2):
                            await client.runs.wait(None, "failing", input={}, raise_error=False)
                    finally:
                        await client.aclose()
                await eventually(lambda: len(matching(slack, "Error rate")) >= 2, timeout=30)

            servers[0].run(fail_on_each())
        finally:
            for server in servers:
                server.stop()
    texts = matching(slack, "Error rate")
    assert [t.split(":", 1)[0] for t in texts] == ["[CRITICAL] FIRING", "[CRITICAL] RESOLVED"]
