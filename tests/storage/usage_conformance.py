"""The usage part of the conformance suite (``StorageConformance`` inherits it): a run's
usage stored with its outcome, the ledger written in the same transaction, and the
ledger's sums per day and tenant, key, assistant or model."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

import pytest

from dockyard.storage.base import Run, RunStore, ThreadStore, UsageRecord, UsageStore


class UsageBackend(Protocol):
    threads: ThreadStore
    runs: RunStore
    usage: UsageStore


DAY1 = datetime(2026, 12, 6, 23, 30, tzinfo=UTC)
DAY2 = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
RUN_USAGE = {"model_calls": 1, "cost_usd": 0.0003, "models": {"gpt-4o-mini": {"calls": 1}}}


def ledger_row(**overrides: Any) -> UsageRecord:
    at = overrides.pop("at", DAY2)
    row = UsageRecord(
        run_id=str(uuid.uuid4()),
        assistant_id="asst",
        tenant_id=None,
        key_id=None,
        model="gpt-4o-mini",
        day=at.date(),
        created_at=at,
        calls=1,
        input_tokens=1000,
        output_tokens=250,
        cached_input_tokens=0,
        cache_write_tokens=0,
        cost_usd=0.0003,
    )
    row.update(overrides)  # type: ignore[typeddict-item]
    return row


async def _claimed(b: UsageBackend, worker: str) -> Run:
    thread = await b.threads.create(thread_id=str(uuid.uuid4()), metadata={}, if_exists="raise")
    from tests.storage.conformance import add_run  # the shared helper; no import cycle at load

    run = await add_run(b, thread["thread_id"])  # type: ignore[arg-type]
    now = datetime.now(UTC)
    claimed = await b.runs.claim(1, now, worker_id=worker, lease_until=now + timedelta(minutes=1))
    assert [r["run_id"] for r in claimed] == [run["run_id"]]
    return claimed[0]


class UsageConformance:
    async def test_run_usage_is_stored_with_its_outcome_and_ledger(self, b: Any) -> None:
        run = await _claimed(b, "w1")
        assert run["usage"] is None
        rows = [
            ledger_row(run_id=run["run_id"]),
            ledger_row(run_id=run["run_id"], model="house", calls=2, cost_usd=None),
        ]
        # A worker that lost the run stores neither its outcome nor its spend.
        assert not await b.runs.finish(
            run["run_id"], status="success", worker_id="w2", usage=RUN_USAGE, ledger=rows
        )
        assert await b.usage.summary(by="model") == []
        assert await b.runs.finish(
            run["run_id"], status="success", worker_id="w1", usage=RUN_USAGE, ledger=rows
        )
        got = await b.runs.get(run["run_id"])
        assert got is not None and got["usage"] == RUN_USAGE and got["status"] == "success"
        assert got["error"] is None and got["worker_id"] is None and got["ended_at"] is not None
        summary = await b.usage.summary(by="model")
        assert [(s["group"], s["calls"], s["input_tokens"], s["cost_usd"]) for s in summary] == [
            ("gpt-4o-mini", 1, 1000, pytest.approx(0.0003)),
            ("house", 2, 1000, None),
        ]
        # Without usage a finish leaves it as it was.
        assert await b.runs.finish(run["run_id"], status="error")
        got = await b.runs.get(run["run_id"])
        assert got is not None and got["usage"] == RUN_USAGE

    async def test_a_run_handed_back_keeps_its_usage_for_the_next_attempt(self, b: Any) -> None:
        run = await _claimed(b, "w1")
        row = ledger_row(run_id=run["run_id"])
        assert not await b.runs.release(run["run_id"], "w2", usage=RUN_USAGE, ledger=[row])
        assert await b.runs.release(run["run_id"], "w1", usage=RUN_USAGE, ledger=[row])
        now = datetime.now(UTC)
        (again,) = await b.runs.claim(
            1, now, worker_id="w3", lease_until=now + timedelta(seconds=10)
        )
        assert again["run_id"] == run["run_id"] and again["attempts"] == 2
        assert again["usage"] == RUN_USAGE
        assert [s["calls"] for s in await b.usage.summary(by="model")] == [1]
        # A release without usage (no model was called) keeps the stored one.
        assert await b.runs.release(run["run_id"], "w3")
        got = await b.runs.get(run["run_id"])
        assert got is not None and got["usage"] == RUN_USAGE

    async def test_a_deleted_thread_leaves_its_spend_in_the_ledger(self, b: Any) -> None:
        thread = await b.threads.create(thread_id=str(uuid.uuid4()), metadata={}, if_exists="raise")
        rows = [ledger_row(), ledger_row(model="house", cost_usd=None)]
        assert await b.threads.delete(thread["thread_id"], ledger=rows)
        assert await b.threads.get(thread["thread_id"]) is None
        # Already gone: the spend is recorded all the same.
        assert not await b.threads.delete(thread["thread_id"], ledger=rows[:1])
        summary = await b.usage.summary(by="model")
        assert [(s["group"], s["calls"]) for s in summary] == [("gpt-4o-mini", 2), ("house", 1)]

    async def test_usage_sums_per_day_and_group(self, b: Any) -> None:
        await b.usage.record(
            [
                ledger_row(at=DAY1, assistant_id="a1", tenant_id="t1", key_id="k1"),
                ledger_row(at=DAY2, assistant_id="a1", tenant_id="t1", key_id="k1"),
                ledger_row(at=DAY2, assistant_id="a2", tenant_id="t2", cost_usd=0.0007),
                ledger_row(at=DAY2, assistant_id="a2", model="house", calls=3, cost_usd=None),
            ]
        )
        await b.usage.record([])
        by_model = await b.usage.summary(by="model")
        assert [(s["day"], s["group"], s["calls"]) for s in by_model] == [
            (date(2026, 12, 6), "gpt-4o-mini", 1),
            (date(2026, 12, 7), "gpt-4o-mini", 2),
            (date(2026, 12, 7), "house", 3),
        ]
        assert by_model[1]["cost_usd"] == pytest.approx(0.001)
        assert by_model[1]["input_tokens"] == 2000 and by_model[1]["output_tokens"] == 500
        assert (by_model[2]["cost_usd"], by_model[2]["unpriced_calls"]) == (None, 3)
        by_assistant = await b.usage.summary(by="assistant", since=DAY2)
        assert [(s["group"], s["calls"], s["unpriced_calls"]) for s in by_assistant] == [
            ("a1", 1, 0),
            ("a2", 4, 3),
        ]
        assert by_assistant[1]["cost_usd"] == pytest.approx(0.0007)
        by_tenant = await b.usage.summary(by="tenant", since=DAY2)
        assert {s["group"]: s["calls"] for s in by_tenant} == {None: 3, "t1": 1, "t2": 1}
        one_tenant = await b.usage.summary(by="assistant", tenant_id="t1")
        assert [(s["day"], s["group"], s["calls"]) for s in one_tenant] == [
            (date(2026, 12, 6), "a1", 1),
            (date(2026, 12, 7), "a1", 1),
        ]
        by_key = await b.usage.summary(by="key")
        assert {(s["day"], s["group"]): s["calls"] for s in by_key} == {
            (date(2026, 12, 6), "k1"): 1,
            (date(2026, 12, 7), "k1"): 1,
            (date(2026, 12, 7), None): 4,
        }
        assert await b.usage.spent(DAY1) == pytest.approx(0.0013)
        assert await b.usage.spent(DAY2) == pytest.approx(0.001)
        assert await b.usage.spent(DAY1, tenant_id="t1") == pytest.approx(0.0006)
        assert await b.usage.spent(DAY1, key_id="k1", assistant_id="a1") == pytest.approx(0.0006)
        assert await b.usage.spent(DAY2 + timedelta(hours=1)) == 0.0

    async def test_usage_by_rollout_variant(self, b: Any) -> None:
        # Written with the run's outcome (one statement on PostgreSQL) and on their own.
        run = await _claimed(b, "w1")
        candidate = ledger_row(run_id=run["run_id"], variant="summary-v4:candidate")
        assert await b.runs.finish(
            run["run_id"], status="success", worker_id="w1", usage=RUN_USAGE, ledger=[candidate]
        )
        await b.usage.record([ledger_row(variant="summary-v4:stable"), ledger_row()])
        summary = await b.usage.summary(by="variant")
        assert sorted((s["group"] or "", s["calls"]) for s in summary) == [
            ("", 1),
            ("summary-v4:candidate", 1),
            ("summary-v4:stable", 1),
        ]
