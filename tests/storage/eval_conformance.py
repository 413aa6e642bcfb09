"""The evaluation part of the conformance suite (``StorageConformance`` inherits it):
experiments and their results round trip, list newest first, finish, delete; the past
runs a dataset is made from."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dockyard.errors import ConflictError, NotFoundError
from dockyard.storage.base import EvalExperiment, EvalResult

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def experiment(**overrides: Any) -> EvalExperiment:
    row = EvalExperiment(
        experiment_id=str(uuid.uuid4()),
        name="nightly",
        assistant="support",
        dataset="tickets.jsonl",
        dataset_hash="abc123",
        items=2,
        variants=[{"name": "A", "prompt": {"name": "p", "version": 1}, "model": None}],
        scorers=[{"type": "exact"}],
        status="running",
        summary=None,
        created_at=T0,
        finished_at=None,
    )
    row.update(overrides)  # type: ignore[typeddict-item]
    return row


def result(experiment_id: str, item_id: str, **overrides: Any) -> EvalResult:
    row = EvalResult(
        experiment_id=experiment_id,
        variant="A",
        item_id=item_id,
        position=0,
        input={"messages": [{"role": "user", "content": "héllo"}]},
        expected="hi",
        output="hi",
        score=1.0,
        parts={"exact": 1.0},
        reasons=[],
        latency_ms=12.5,
        input_tokens=10,
        output_tokens=2,
        cost_usd=0.0001,
        run_id=str(uuid.uuid4()),
        thread_id=str(uuid.uuid4()),
        error=None,
        created_at=T0,
    )
    row.update(overrides)  # type: ignore[typeddict-item]
    return row


class EvalConformance:
    async def test_experiment_and_results_round_trip(self, b: Any) -> None:
        e = await b.evals.create(experiment())
        eid = e["experiment_id"]
        assert await b.evals.get(eid) == e
        with pytest.raises(ConflictError):
            await b.evals.create(experiment(experiment_id=eid))
        rows = [
            result(eid, "second", position=1, score=0.25, expected=None, cost_usd=None),
            result(eid, "first", position=0),
            result(eid, "first", variant="B", score=0.0, output=None, error="run error: boom"),
        ]
        await b.evals.add_results(rows)
        got = await b.evals.results(eid)
        assert [(r["variant"], r["item_id"]) for r in got] == [
            ("A", "first"),
            ("A", "second"),
            ("B", "first"),
        ]
        assert got[0] == rows[1] and got[1] == rows[0] and got[2] == rows[2]
        assert [r["item_id"] for r in await b.evals.results(eid, variant="B")] == ["first"]
        # An item run again replaces its row.
        await b.evals.add_results([result(eid, "second", position=1, score=0.75)])
        again = await b.evals.results(eid, variant="A")
        assert [r["score"] for r in again] == [1.0, 0.75]

        summary = {"variants": [{"name": "A", "score": {"mean": 0.875}}], "comparison": None}
        done = await b.evals.finish(eid, status="done", summary=summary, finished_at=T0)
        assert done["status"] == "done" and done["summary"] == summary
        assert done["finished_at"] == T0
        with pytest.raises(NotFoundError):
            await b.evals.finish("nope", status="done", summary=None, finished_at=T0)

        assert await b.evals.delete(eid) is True
        assert await b.evals.get(eid) is None and await b.evals.results(eid) == []
        assert await b.evals.delete(eid) is False

    async def test_list_newest_first_by_assistant(self, b: Any) -> None:
        old = await b.evals.create(experiment(created_at=T0))
        new = await b.evals.create(experiment(created_at=T0 + timedelta(hours=1)))
        other = await b.evals.create(experiment(assistant="billing", created_at=T0))
        ids = [e["experiment_id"] for e in await b.evals.list()]
        assert ids.index(new["experiment_id"]) < ids.index(old["experiment_id"])
        assert {e["experiment_id"] for e in await b.evals.list(assistant="billing")} == {
            other["experiment_id"]
        }
        assert len(await b.evals.list(limit=1)) == 1
        assert len(await b.evals.list(limit=10, offset=2)) == 1

    async def test_run_examples_are_threads_last_successful_runs(self, b: Any) -> None:
        from tests.storage.conformance import add_run, make_thread

        async def finished(thread_id: str, status: str, at: datetime, **kw: Any) -> Any:
            run = await add_run(b, thread_id, created_at=at, updated_at=at, **kw)
            await b.runs.finish(run["run_id"], status=status)
            return run

        one = await make_thread(b)
        tid = one["thread_id"]
        await finished(tid, "success", T0, kwargs={"input": {"q": "first"}})
        last = await finished(
            tid, "success", T0 + timedelta(minutes=1), kwargs={"input": {"q": "second"}}
        )
        await b.threads.set_state(tid, values={"messages": [{"role": "ai", "content": "ans"}]})
        failed = await make_thread(b)
        await finished(failed["thread_id"], "error", T0)
        other = await make_thread(b)
        mine = await finished(
            other["thread_id"], "success", T0 + timedelta(minutes=2), assistant_id="other"
        )

        examples = await b.evals.run_examples()
        assert [e["run_id"] for e in examples] == [mine["run_id"], last["run_id"]]
        got = examples[1]
        assert got["input"] == {"q": "second"} and got["thread_id"] == tid
        assert got["output"] == {"messages": [{"role": "ai", "content": "ans"}]}
        assert got["assistant_id"] == "asst" and got["created_at"] == last["created_at"]
        only = await b.evals.run_examples(assistant_ids=["asst"])
        assert [e["run_id"] for e in only] == [last["run_id"]]
        assert await b.evals.run_examples(since=T0 + timedelta(minutes=2)) == examples[:1]
        assert [e["run_id"] for e in await b.evals.run_examples(limit=1, offset=1)] == [
            last["run_id"]
        ]
