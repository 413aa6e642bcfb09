"""The evaluator on real storage (SQLite and PostgreSQL) with real notifiers posting to
local receivers: one firing message, silence, a reminder after the cooldown, a resolved
message when the condition clears; one evaluator across processes (the lease)."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from dockyard.observability.alerts import AlertEvaluator, budget_alert, build
from dockyard.policies.breaker import MemoryBreakerStore
from dockyard.policies.budget import ThresholdEvent
from dockyard.runtime.webhooks import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    signature_headers,
    verify_signature,
)
from dockyard.settings import AlertsConfig, BreakerConfig, load_settings
from dockyard.storage.alerts import EndedRun
from dockyard.storage.database import Storage, open_storage
from dockyard.storage.sql.alerts import SqlAlerts
from tests.observability.alerts.receivers import Receiver, http_receiver

SECRET = "alert-signing-secret"


@pytest.fixture(params=["sqlite", "postgres"])
async def storages(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[list[Storage]]:
    """Two handles on one database, as two processes have."""
    config = tmp_path / "dockyard.yaml"
    config.write_text("graphs: {}\n")
    async with AsyncExitStack() as stack:
        if request.param == "sqlite":
            settings = load_settings(config, data_dir=tmp_path / "data")
            one = await stack.enter_async_context(open_storage(settings))
            # One SQLite file is one process's: the second handle is the same one.
            yield [one, one]
            return
        from tests.pg import fresh_database

        url = await stack.enter_async_context(fresh_database())
        settings = load_settings(config, database_url=url, database_pool_size=2)
        yield [
            await stack.enter_async_context(open_storage(settings)),
            await stack.enter_async_context(open_storage(settings)),
        ]


@pytest.fixture
def slack() -> Iterator[Receiver]:
    with http_receiver() as r:
        yield r


@pytest.fixture
def hook() -> Iterator[Receiver]:
    with http_receiver() as r:
        yield r


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


def alerts_config(slack: Receiver, hook: Receiver | None = None, **kw: Any) -> AlertsConfig:
    notifiers: dict[str, Any] = {
        "team-slack": {"type": "slack", "url": slack.url, "max_attempts": 2}
    }
    if hook is not None:
        notifiers["pager"] = {"type": "webhook", "url": hook.url, "secret": SECRET}
    raw = {"enabled": True, "interval_seconds": 10, "notifiers": notifiers, **kw}
    return AlertsConfig.model_validate(raw)


def evaluator(
    config: AlertsConfig, storage: Storage, clock: Clock, holder: str = "p1", **kw: Any
) -> AlertEvaluator:
    return AlertEvaluator(
        config,
        SqlAlerts(storage.engine),
        build(config.notifiers, None, signature_headers),
        holder=holder,
        clock=clock,
        **kw,
    )


async def ended_runs(
    storage: Storage, at: datetime, statuses: list[str], seconds: float = 1.0
) -> None:
    """Runs that ended at ``at``, as the alert observer records them."""
    await SqlAlerts(storage.engine).record_outcomes(
        [
            EndedRun(str(uuid.uuid4()), "a1", status, at - timedelta(seconds=seconds), at)
            for status in statuses
        ]
    )


ERROR_RATE = {
    "errors": {"kind": "error_rate", "threshold": 0.05, "window_minutes": 10, "min_runs": 4}
}


async def test_fires_once_reminds_after_cooldown_and_resolves(
    storages: list[Storage], slack: Receiver, hook: Receiver
) -> None:
    storage = storages[0]
    clock = Clock()
    t0 = clock.now
    config = alerts_config(slack, hook, cooldown_minutes=5, rules=ERROR_RATE)
    ev = evaluator(config, storage, clock)
    await ended_runs(storage, t0 - timedelta(minutes=1), ["error", "error", "success", "success"])

    assert await ev.tick()
    assert slack.texts() == [
        "[WARNING] FIRING: Error rate 50% > 5% over the last 10 min (2 of 4 runs)"
    ]
    (firing,) = slack.posts
    attachment = firing.json["attachments"][0]
    assert attachment["color"] == "warning"
    fields = {f["title"]: f["value"] for f in attachment["fields"]}
    assert fields["Value"] == "0.5" and fields["Threshold"] == "0.05"
    assert fields["Rule"] == "errors"
    # The webhook notifier: the same alert as JSON, signed as run webhooks are.
    (signed,) = hook.posts
    assert verify_signature(
        SECRET.encode(),
        signed.body,
        signed.headers.get(TIMESTAMP_HEADER),
        signed.headers.get(SIGNATURE_HEADER),
    )
    assert not verify_signature(
        b"another secret",
        signed.body,
        signed.headers.get(TIMESTAMP_HEADER),
        signed.headers.get(SIGNATURE_HEADER),
    )
    assert signed.json["event"] == "alert.firing"
    assert signed.json["rule"] == "errors" and signed.json["state"] == "firing"
    assert signed.json["details"]["errors"] == 2

    # Still firing, within the cooldown: nothing more.
    for minutes in (1, 2, 4):
        clock.now = t0 + timedelta(minutes=minutes)
        assert await ev.tick()
    assert len(slack.posts) == 1 and len(hook.posts) == 1

    # More runs fail. Past the cooldown, still firing: one reminder, saying what is
    # true now.
    await ended_runs(storage, t0 + timedelta(minutes=5), ["error"] * 4)
    clock.now = t0 + timedelta(minutes=6)
    await ev.tick()
    clock.now = t0 + timedelta(minutes=7)
    await ev.tick()
    assert slack.texts()[1:] == [
        "[WARNING] STILL FIRING: Error rate 75% > 5% over the last 10 min (6 of 8 runs)"
    ]
    assert hook.events() == ["alert.firing", "alert.reminder"]

    # The first runs leave the window, the rest keep it firing; then they leave too:
    # resolved, once.
    clock.now = t0 + timedelta(minutes=10)
    await ev.tick()
    assert len(slack.posts) == 2
    clock.now = t0 + timedelta(minutes=16)
    await ev.tick()
    clock.now = t0 + timedelta(minutes=17)
    await ev.tick()
    assert slack.texts()[2:] == [
        "[WARNING] RESOLVED: Error rate 75% > 5% over the last 10 min (6 of 8 runs)"
    ]
    assert slack.posts[2].json["attachments"][0]["color"] == "good"
    assert hook.events() == ["alert.firing", "alert.reminder", "alert.resolved"]

    (record,) = await SqlAlerts(storage.engine).history()
    assert record.state == "resolved" and record.rule == "errors"
    assert record.resolved_at == t0 + timedelta(minutes=16)
    assert record.notifications == 3
    assert record.deliveries == {"team-slack": "ok: 200", "pager": "ok: 200"}


async def test_one_evaluator_across_processes(storages: list[Storage], slack: Receiver) -> None:
    clock = Clock()
    t0 = clock.now
    config = alerts_config(slack, rules=ERROR_RATE, lease_seconds=30)
    one = evaluator(config, storages[0], clock, holder="p1")
    two = evaluator(config, storages[1], clock, holder="p2")
    await ended_runs(storages[0], t0, ["error"] * 4)

    assert [await one.tick(), await two.tick()] == [True, False]
    assert [await two.tick(), await one.tick()] == [False, True]
    assert len(slack.posts) == 1
    # p1 dies holding the lease; once it runs out, p2 takes over where p1 stopped:
    # the alert went out already, so it does not go again.
    clock.now = t0 + timedelta(seconds=31)
    assert await two.tick()
    assert len(slack.posts) == 1
    assert not await one.tick()
    # A process that stops hands the lease on at once.
    await two.release()
    assert await one.tick()


async def test_failing_notifier_is_retried_recorded_and_does_not_stop_the_others(
    storages: list[Storage], slack: Receiver, hook: Receiver
) -> None:
    clock = Clock()
    config = alerts_config(slack, hook, rules=ERROR_RATE)
    ev = evaluator(config, storages[0], clock)
    await ended_runs(storages[0], clock.now, ["error"] * 4)
    slack.statuses = [500, 503]  # both attempts fail (max_attempts: 2)
    assert await ev.tick()
    assert slack.posts == [] and slack.statuses == []
    assert hook.events() == ["alert.firing"]
    (record,) = await SqlAlerts(storages[0].engine).firing()
    assert record.deliveries["pager"] == "ok: 200"
    assert record.deliveries["team-slack"].startswith("error: RuntimeError: Slack answered 503")


async def test_latency_quality_and_severity_filter(
    storages: list[Storage], slack: Receiver
) -> None:
    storage = storages[0]
    clock = Clock()
    rules = {
        "slow": {"kind": "latency_p95", "threshold_seconds": 10, "min_runs": 3},
        "slow-critical": {
            "kind": "latency_p95",
            "threshold_seconds": 30,
            "min_runs": 3,
            "severity": "critical",
        },
        "quality": {"kind": "quality", "threshold": 0.7, "min_runs": 3},
    }
    config = alerts_config(slack, rules=rules)
    config.notifiers["team-slack"].min_severity = "critical"
    ev = evaluator(config, storage, clock)
    await ended_runs(storage, clock.now, ["success"] * 19, seconds=2)
    await ended_runs(storage, clock.now, ["success"], seconds=45)  # 1 in 20: not the p95
    store = SqlAlerts(storage.engine)
    for i, score in enumerate([0.9, 0.6, 0.5]):
        await store.record_quality(f"run-{i}", "a1", score, clock.now)
    await ev.tick()
    assert [a.rule for a in await store.firing()] == ["quality"]
    assert slack.posts == []  # a warning; this notifier takes critical alerts only

    await ended_runs(storage, clock.now, ["success"] * 2, seconds=45)  # 3 in 22 now
    clock.now += timedelta(seconds=1)
    await ev.tick()
    assert sorted(a.rule for a in await store.firing()) == ["quality", "slow", "slow-critical"]
    assert slack.texts() == [
        "[CRITICAL] FIRING: p95 run latency 45.0s > 30s over the last 15 min (22 runs)"
    ]
    assert slack.posts[0].json["attachments"][0]["color"] == "danger"


async def test_breaker_open_alert(storages: list[Storage], slack: Receiver) -> None:
    clock = Clock()
    breakers = MemoryBreakerStore()
    cfg = BreakerConfig(failures=2, cooldown_seconds=60)
    config = alerts_config(slack, rules={"breaker": {"kind": "breaker_open"}})
    ev = evaluator(config, storages[0], clock, breakers=breakers)
    await ev.tick()
    assert slack.posts == []
    now = clock.now.timestamp()
    for _ in range(2):
        breakers.record("openai:gpt-4o-mini", cfg, now, ok=False, probe=False)
    await ev.tick()
    assert slack.texts() == [
        "[CRITICAL] FIRING: Circuit breaker open for openai:gpt-4o-mini: its calls go to fallbacks"
    ]
    # The probe after the cooldown succeeds: the breaker closes, the alert resolves.
    assert breakers.check("openai:gpt-4o-mini", cfg, now + 61).probe
    breakers.record("openai:gpt-4o-mini", cfg, now + 61, ok=True, probe=True)
    await ev.tick()
    assert slack.texts()[1].startswith("[CRITICAL] RESOLVED: Circuit breaker open")


async def test_budget_event_fires_until_the_period_resets(
    storages: list[Storage], slack: Receiver
) -> None:
    clock = Clock()
    config = alerts_config(slack)  # the shipped rules: budget at 80% and 95%
    ev = evaluator(config, storages[0], clock)
    start = clock.now.replace(hour=0, minute=0, second=0, microsecond=0)
    event = ThresholdEvent(
        budget="daily",
        scope="tenant:acme",
        holder="tenant 'acme'",
        limit_usd=10.0,
        spent_usd=9.6,
        threshold=0.95,
        period_start=start,
        resets_at=start + timedelta(days=1),
    )
    alert = budget_alert(config.rules, event)
    assert alert is not None and alert.rule == "budget-95" and alert.severity == "critical"
    assert await ev.store.open_alert(alert, clock.now) is not None
    await ev.tick()
    assert slack.texts() == [
        "[CRITICAL] FIRING: tenant 'acme' has spent $9.60 of its daily budget of $10.00 "
        "(96%, alert at 95%)"
    ]
    clock.now = start + timedelta(days=1, seconds=1)
    await ev.tick()
    assert slack.texts()[1].startswith("[CRITICAL] RESOLVED: tenant 'acme' has spent")
    # A share below every budget rule's (the policy's thresholds may differ): no alert.
    assert budget_alert(config.rules, dataclasses.replace(event, threshold=0.5)) is None
