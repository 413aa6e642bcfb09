"""The alerts part of the conformance suite (``StorageConformance`` inherits it): the
evaluator's lease, the alert history, and what the alert rules read."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from dockyard.storage.alerts import EndedRun, NewAlert
from dockyard.storage.sql.alerts import SqlAlerts

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def alerts_of(b: Any) -> SqlAlerts:
    return SqlAlerts(b.engine)


def new_alert(key: str = "error-rate", **kw: Any) -> NewAlert:
    return NewAlert(
        key=key,
        rule=kw.pop("rule", key),
        kind=kw.pop("kind", "error_rate"),
        severity=kw.pop("severity", "warning"),
        summary=kw.pop("summary", "Error rate 12.0% > 5.0%"),
        details=kw.pop("details", {"value": 0.12, "threshold": 0.05}),
        **kw,
    )


class AlertConformance:
    async def test_lease_is_held_by_one_holder_until_it_expires(self, b: Any, twin: Any) -> None:
        one, two = alerts_of(b), alerts_of(twin)
        assert await one.acquire_lease("alerts", "p1", 30, T0)
        assert not await two.acquire_lease("alerts", "p2", 30, T0 + timedelta(seconds=10))
        # Renewed by its holder, it lasts 30 s from the renewal.
        assert await one.acquire_lease("alerts", "p1", 30, T0 + timedelta(seconds=20))
        assert not await two.acquire_lease("alerts", "p2", 30, T0 + timedelta(seconds=45))
        assert await two.acquire_lease("alerts", "p2", 30, T0 + timedelta(seconds=51))
        assert not await one.acquire_lease("alerts", "p1", 30, T0 + timedelta(seconds=52))
        # Another lease name is another lease.
        assert await one.acquire_lease("other", "p1", 30, T0 + timedelta(seconds=52))

    async def test_released_lease_is_free_at_once(self, b: Any, twin: Any) -> None:
        one, two = alerts_of(b), alerts_of(twin)
        assert await one.acquire_lease("alerts", "p1", 300, T0)
        await two.release_lease("alerts", "p2")  # not its lease: nothing happens
        assert not await two.acquire_lease("alerts", "p2", 300, T0)
        await one.release_lease("alerts", "p1")
        assert await two.acquire_lease("alerts", "p2", 300, T0)

    async def test_concurrent_takers_get_one_lease(self, b: Any, twin: Any) -> None:
        stores = [alerts_of(b), alerts_of(twin)] * 4
        got = await asyncio.gather(
            *(s.acquire_lease("race", f"p{i}", 60, T0) for i, s in enumerate(stores))
        )
        assert got.count(True) == 1

    async def test_one_firing_row_per_key_then_resolved(self, b: Any, twin: Any) -> None:
        one, two = alerts_of(b), alerts_of(twin)
        opened = await one.open_alert(new_alert(), T0)
        assert opened is not None
        assert (opened.state, opened.notifications, opened.notified_at) == ("firing", 0, None)
        assert opened.details == {"value": 0.12, "threshold": 0.05}
        assert opened.started_at == T0
        assert await two.open_alert(new_alert(), T0 + timedelta(minutes=1)) is None
        assert [a.id for a in await two.firing()] == [opened.id]

        await one.notified(opened.id, T0, {"slack": "ok: 200"})
        await one.notified(opened.id, T0 + timedelta(hours=1), {"slack": "error: boom"})
        (again,) = await one.firing()
        assert again.notifications == 2
        assert again.notified_at == T0 + timedelta(hours=1)
        assert again.deliveries == {"slack": "error: boom"}

        refreshed = await two.refresh(opened.id, "Error rate 30.0% > 5.0%", {"value": 0.3})
        assert refreshed is not None
        assert (refreshed.summary, refreshed.details) == ("Error rate 30.0% > 5.0%", {"value": 0.3})
        assert refreshed.notifications == 2 and refreshed.started_at == T0

        resolved = await two.resolve(opened.id, T0 + timedelta(hours=2))
        assert resolved is not None and resolved.state == "resolved"
        assert resolved.resolved_at == T0 + timedelta(hours=2)
        assert await one.resolve(opened.id, T0 + timedelta(hours=3)) is None
        assert await one.refresh(opened.id, "later", {}) is None
        assert await one.firing() == []
        # Resolved, the key may fire again: a new episode.
        second = await one.open_alert(new_alert(), T0 + timedelta(hours=4))
        assert second is not None and second.id != opened.id

    async def test_history_filters_and_order(self, b: Any) -> None:
        s = alerts_of(b)
        first = await s.open_alert(new_alert("a"), T0)
        second = await s.open_alert(new_alert("b", severity="critical"), T0 + timedelta(hours=1))
        assert first is not None and second is not None
        await s.resolve(first.id, T0 + timedelta(minutes=30))
        assert [a.key for a in await s.history()] == ["b", "a"]
        assert [a.key for a in await s.history(state="firing")] == ["b"]
        assert [a.key for a in await s.history(state="resolved")] == ["a"]
        assert [a.key for a in await s.history(since=T0 + timedelta(minutes=1))] == ["b"]
        assert [a.key for a in await s.history(limit=1)] == ["b"]
        assert (await s.history(state="firing"))[0].severity == "critical"

    async def test_ended_and_waiting_runs(self, b: Any) -> None:
        from tests.storage.conformance import make_assistant

        s = alerts_of(b)
        now = datetime.now(UTC).replace(microsecond=0)
        a = await make_assistant(b, name="support", graph_id="support-graph")
        other = await make_assistant(b, name="other", graph_id="other-graph")

        async def ended(status: str, minutes_ago: float, seconds: float, aid: str) -> None:
            end = now - timedelta(minutes=minutes_ago)
            start = end - timedelta(seconds=seconds)
            await s.record_outcomes([EndedRun(str(uuid.uuid4()), aid, status, start, end)])

        await ended("success", 1, 2.0, a["assistant_id"])
        await ended("error", 2, 40.0, a["assistant_id"])
        await ended("timeout", 3, 1.0, other["assistant_id"])
        await ended("interrupted", 3, 1.0, other["assistant_id"])  # waiting, not ended
        await ended("success", 30, 1.0, a["assistant_id"])  # before the window
        since = now - timedelta(minutes=10)
        assert await s.outcome_counts(since) == {
            "success": 1,
            "error": 1,
            "timeout": 1,
            "interrupted": 1,
        }
        assert await s.assistant_ids("support") == [a["assistant_id"]]
        assert await s.assistant_ids("other-graph") == [other["assistant_id"]]
        assert await s.assistant_ids("nobody") == []
        mine = [a["assistant_id"]]
        assert await s.outcome_counts(since, mine) == {"success": 1, "error": 1}
        assert await s.outcome_counts(since, []) == {}
        # Nearest rank: of 1, 2 and 40 seconds, the 95th percentile is 40 (rank 3 of 3).
        assert await s.latency_p95(since) == 40.0
        assert await s.latency_p95(since, [other["assistant_id"]]) == 1.0
        assert await s.latency_p95(now) is None
        # Pruned: what ended before the cut goes, the rest stays.
        assert await s.prune(since) == 1
        assert sum((await s.outcome_counts(now - timedelta(hours=1))).values()) == 4

    async def test_latency_p95_is_the_nearest_rank(self, b: Any) -> None:
        s = alerts_of(b)
        now = datetime.now(UTC)
        # 1..100 seconds: rank ceil(0.95 * 100) = 95 -> 95 s; 1..20: rank 19 -> 19 s.
        await s.record_outcomes(
            [
                EndedRun(str(uuid.uuid4()), "a1", "success", now - timedelta(seconds=i), now)
                for i in range(1, 101)
            ]
        )
        await s.record_outcomes(
            [
                EndedRun(str(uuid.uuid4()), "a2", "error", now - timedelta(seconds=i), now)
                for i in range(1, 21)
            ]
        )
        since = now - timedelta(minutes=1)
        assert await s.latency_p95(since, ["a1"]) == 95.0
        assert await s.latency_p95(since, ["a2"]) == 19.0

    async def test_waiting_runs(self, b: Any) -> None:
        from tests.storage.conformance import add_run, make_assistant, make_thread

        s = alerts_of(b)
        a = await make_assistant(b, name="support", graph_id="support-graph")
        other = await make_assistant(b, name="other", graph_id="other-graph")

        async def interrupted(aid: str, answered: bool = False) -> Any:
            t = await make_thread(b)
            run = await add_run(b, t["thread_id"], assistant_id=aid, status="success")
            await b.threads.set_state(t["thread_id"], status="interrupted")
            if answered:  # a later run resumed it
                await add_run(b, t["thread_id"], assistant_id=aid, status="success")
                await b.threads.set_state(t["thread_id"], status="idle")
            return run

        before_any = datetime.now(UTC)
        first = await interrupted(a["assistant_id"])
        await interrupted(a["assistant_id"], answered=True)
        second = await interrupted(other["assistant_id"])
        later = datetime.now(UTC) + timedelta(minutes=1)
        found = await s.waiting_runs(later)
        assert [(w.run_id, w.thread_id) for w in found] == [
            (first["run_id"], first["thread_id"]),
            (second["run_id"], second["thread_id"]),
        ]
        assert before_any <= found[0].since <= found[1].since < later
        assert await s.waiting_runs(before_any) == []
        assert [w.run_id for w in await s.waiting_runs(later, [other["assistant_id"]])] == [
            second["run_id"]
        ]
        assert len(await s.waiting_runs(later, limit=1)) == 1

    async def test_quality_scores(self, b: Any) -> None:
        s = alerts_of(b)
        run = str(uuid.uuid4())
        await s.record_quality(run, "a1", 0.9, T0)
        await s.record_quality(run, "a1", 0.5, T0 + timedelta(minutes=1))  # replaces
        await s.record_quality(str(uuid.uuid4()), "a2", 0.8, T0 + timedelta(minutes=2))
        await s.record_quality(str(uuid.uuid4()), "a1", 0.1, T0 - timedelta(hours=1))
        n, mean = await s.quality(T0)
        assert n == 2 and mean is not None and abs(mean - 0.65) < 1e-9
        assert await s.quality(T0, ["a1"]) == (1, 0.5)
        assert await s.quality(T0 + timedelta(hours=1)) == (0, None)
        assert await s.prune(T0) == 1  # the score from before T0
        assert (await s.quality(T0 - timedelta(days=1)))[0] == 2

    async def test_quality_scores_by_rollout_variant(self, b: Any) -> None:
        s = alerts_of(b)
        for variant, score in (("stable", 0.9), ("candidate", 0.3), ("candidate", 0.5), (None, 1)):
            await s.record_quality(str(uuid.uuid4()), "a1", score, T0, variant=variant)
        assert await s.quality(T0, ["a1"], variant="stable") == (1, 0.9)
        n, mean = await s.quality(T0, ["a1"], variant="candidate")
        assert n == 2 and mean is not None and abs(mean - 0.4) < 1e-9
        assert (await s.quality(T0, ["a1"]))[0] == 4
        run = str(uuid.uuid4())  # a second score of a run replaces its variant too
        await s.record_quality(run, "a2", 0.2, T0, variant="candidate")
        await s.record_quality(run, "a2", 0.7, T0, variant="stable")
        assert await s.quality(T0, ["a2"], variant="candidate") == (0, None)
        assert await s.quality(T0, ["a2"], variant="stable") == (1, 0.7)
