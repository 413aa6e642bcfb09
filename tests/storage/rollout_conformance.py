"""The rollouts part of the conformance suite (``StorageConformance`` inherits it): a
rollout starts, moves out of ``active`` once (a rollback and an abort racing: one wins),
starts over with a new definition; run outcomes and quality scores split by variant."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from dockyard.storage.alerts import EndedRun
from dockyard.storage.sql.alerts import SqlAlerts

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
DEFINITION = {"assistant": "support", "candidate": {"prompt": "ticket-summary@4"}, "share": 0.5}


class RolloutConformance:
    async def test_rollout_lifecycle(self, b: Any) -> None:
        s = b.rollouts
        started = await s.start("summary-v4", "support", DEFINITION, "config", T0)
        assert started.state == "active" and started.started_at == T0
        got = await s.get("summary-v4")
        assert got == started and got.definition == DEFINITION and got.details == {}
        assert [r.name for r in await s.list()] == ["summary-v4"]

        later = T0 + timedelta(minutes=5)

        async def move(state: str) -> Any:
            return await s.set_state(
                "summary-v4",
                state,
                reason=f"{state} now",
                changed_by="auto",
                details={"quality": 0.4},
                now=later,
            )

        first, second = await asyncio.gather(move("rolled_back"), move("aborted"))
        assert [r is None for r in (first, second)].count(True) == 1  # one wins
        won = first or second
        now = await s.get("summary-v4")
        assert now.state == won.state and now.updated_at == later
        assert now.reason == f"{won.state} now" and now.details == {"quality": 0.4}
        assert await move("promoted") is None  # not active any more

        changed = {**DEFINITION, "share": 0.2}
        again = await s.start("summary-v4", "support", changed, "api", later)
        assert again.state == "active" and (await s.get("summary-v4")).definition == changed
        assert (await s.get("summary-v4")).source == "api"
        assert await s.delete("summary-v4") is True
        assert await s.get("summary-v4") is None and await s.delete("summary-v4") is False

    async def test_outcomes_and_scores_by_variant(self, b: Any) -> None:
        s = SqlAlerts(b.engine)
        now = datetime.now(UTC).replace(microsecond=0)
        end = now - timedelta(minutes=1)
        start = end - timedelta(seconds=2)
        rows = [
            EndedRun(str(uuid.uuid4()), "a1", "success", start, end, "stable"),
            EndedRun(str(uuid.uuid4()), "a1", "error", start, end, "candidate"),
            EndedRun(str(uuid.uuid4()), "a1", "success", start, end, "candidate"),
            EndedRun(str(uuid.uuid4()), "a1", "success", start, end),
        ]
        await s.record_outcomes(rows)
        since = now - timedelta(minutes=10)
        assert await s.outcome_counts(since, ["a1"], variant="candidate") == {
            "success": 1,
            "error": 1,
        }
        assert await s.outcome_counts(since, ["a1"], variant="stable") == {"success": 1}
        assert await s.outcome_counts(since, ["a1"]) == {"success": 3, "error": 1}

        run = str(uuid.uuid4())
        await s.record_quality(run, "a1", 0.9, T0, variant="candidate")
        await s.record_quality(run, "a1", 0.3, T0, variant="candidate")  # replaces
        await s.record_quality(str(uuid.uuid4()), "a1", 0.8, T0, variant="stable")
        await s.record_quality(str(uuid.uuid4()), "a1", 0.7, T0)
        assert await s.quality(T0, ["a1"], variant="candidate") == (1, 0.3)
        assert await s.quality(T0, ["a1"], variant="stable") == (1, 0.8)
        assert (await s.quality(T0, ["a1"]))[0] == 3
