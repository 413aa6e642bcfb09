"""The rollback check over real SQLite storage: the candidate's error rate over the
window (from when the rollout started), ``min_runs``, the lease (one checker acts), and
the alert each notifier gets once."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from dockyard.observability.alerts import Message
from dockyard.rollouts import RollbackCheck
from dockyard.settings import load_settings
from dockyard.storage.alerts import EndedRun
from dockyard.storage.database import Storage, open_storage
from dockyard.storage.sql.alerts import SqlAlerts
from tests.storage.conformance import make_assistant

DEFINITION = {
    "assistant": "support",
    "candidate": {"model": "fast"},
    "share": 0.5,
    "rollback": {"max_error_rate": 0.25, "min_runs": 4, "window_minutes": 10},
}


class Inbox:
    name = "inbox"
    min_severity = "warning"
    max_attempts = 1

    def __init__(self) -> None:
        self.got: list[Message] = []

    async def send(self, message: Message) -> str:
        self.got.append(message)
        return "ok"


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[Storage]:
    config = tmp_path / "dockyard.yaml"
    config.write_text("graphs: {}\n")
    async with open_storage(load_settings(config, data_dir=tmp_path / "data")) as s:
        yield s


async def test_error_rate_rolls_back_once_with_one_alert(storage: Storage) -> None:
    alerts = SqlAlerts(storage.engine)
    aid = (await make_assistant(storage, name="support"))["assistant_id"]
    now = datetime.now(UTC)
    await storage.rollouts.start("r", "support", DEFINITION, "api", now - timedelta(minutes=5))

    async def ended(status: str, variant: str, minutes_ago: float = 1) -> None:
        at = now - timedelta(minutes=minutes_ago)
        await alerts.record_outcomes(
            [EndedRun(str(uuid.uuid4()), aid, status, at - timedelta(seconds=1), at, variant)]
        )

    inbox, other = Inbox(), Inbox()
    check = RollbackCheck(storage.rollouts, alerts, [inbox], holder="one", clock=lambda: now)
    rival = RollbackCheck(storage.rollouts, alerts, [other], holder="two", clock=lambda: now)

    async def active() -> Any:
        return [r for r in await storage.rollouts.list() if r.state == "active"]

    for _ in range(3):
        await ended("error", "stable")  # the stable variant's errors are not the candidate's
    await ended("error", "candidate", minutes_ago=6)  # before the rollout started
    await ended("error", "candidate")
    await ended("success", "candidate")
    await ended("success", "candidate")
    assert await check.tick(await active()) == []  # 1 of 3: under min_runs
    await ended("error", "candidate")  # 2 of 4 = 50% > 25%
    assert await rival.tick(await active()) == []  # the lease is "one"'s
    [rolled] = await check.tick(await active())
    assert rolled.state == "rolled_back" and rolled.changed_by == "auto"
    assert "candidate error rate 50.0% > 25.0% over 4 runs" in (rolled.reason or "")
    assert rolled.details["failed_runs"] == 2 and rolled.details["ended_runs"] == 4
    [message] = inbox.got
    assert message.event == "firing" and message.alert.kind == "rollout_rollback"
    assert message.alert.severity == "critical" and "rolled back" in message.alert.summary
    assert other.got == []
    assert await check.tick(await active()) == [] and len(inbox.got) == 1
    [record] = await alerts.history()
    assert record.state == "resolved" and record.deliveries == {"inbox": "ok: ok"}


async def test_the_config_file_rollouts_in_the_database(storage: Storage, tmp_path: Path) -> None:
    from dockyard.rollouts import sync_config

    def settings(share: float, *names: str) -> Any:
        config = tmp_path / "dockyard.yaml"
        rollouts = "".join(
            f"  {n}:\n    assistant: {n}\n    candidate: {{prompt: p@2}}\n    share: {share}\n"
            for n in names
        )
        graphs = "".join(f"  {n}: ./g.py:graph\n" for n in names)
        config.write_text(f"graphs:\n{graphs}rollouts:\n{rollouts}")
        return load_settings(config)

    assert await sync_config(settings(0.5, "a", "b"), storage.rollouts) == ["a", "b"]
    now = datetime.now(UTC)
    await storage.rollouts.set_state(
        "a", "rolled_back", reason="low", changed_by="auto", details={}, now=now
    )
    await storage.rollouts.start("api-made", "c", DEFINITION, "api", now)
    # A restart with the same file: a rolled-back rollout stays rolled back.
    assert await sync_config(settings(0.5, "a", "b"), storage.rollouts) == []
    assert (await storage.rollouts.get("a")).state == "rolled_back"  # type: ignore[union-attr]
    # A changed definition starts over; one gone from the file goes (not the API's).
    assert await sync_config(settings(0.2, "a"), storage.rollouts) == ["a"]
    states = {r.name: r.state for r in await storage.rollouts.list()}
    assert states == {"a": "active", "api-made": "active"}
