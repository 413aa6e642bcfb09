"""The run attempt's steps, the executor's cancel state machine and the run observers, as
units: one process's service and executor on SQLite, no HTTP in between."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from dockyard.run_spec import RunSpec
from dockyard.runtime.attempt import Phase, RunAttempt, RunContext, build_config
from dockyard.runtime.broker import MemoryBroker
from dockyard.runtime.executor import CancelResult, Executor
from dockyard.runtime.graphs import load_registry
from dockyard.runtime.observers import Outcome, RunObserver
from dockyard.runtime.service import RunService
from dockyard.runtime.usage import Usage
from dockyard.settings import load_settings
from dockyard.storage.base import Run
from dockyard.storage.database import open_storage
from tests.conftest import FIXTURE_PROJECT, eventually


@dataclass
class Recorder(RunObserver):
    calls: list[tuple[str, str]] = field(default_factory=list)
    ended: dict[str, tuple[Outcome, Usage]] = field(default_factory=dict)

    def on_created(self, run: Run) -> None:
        self.calls.append(("created", run["run_id"]))

    def on_started(self, run: Run) -> None:
        self.calls.append(("started", run["run_id"]))

    def on_ended(self, run: Run, outcome: Outcome, usage: Usage) -> None:
        self.calls.append(("ended", run["run_id"]))
        self.ended[run["run_id"]] = (outcome, usage)


class Broken(RunObserver):
    def on_started(self, run: Run) -> None:
        raise RuntimeError("observer bug")

    def on_ended(self, run: Run, outcome: Outcome, usage: Usage) -> None:
        raise RuntimeError("observer bug")


@dataclass
class Local:
    service: RunService
    executor: Executor
    recorder: Recorder
    broker: MemoryBroker

    async def start(self, graph: str, *, thread_id: str | None = None, **fields: Any) -> Run:
        spec = RunSpec(assistant_id=graph, **fields)
        return await self.service.create(thread_id, spec)

    async def ended(self, run: Run) -> Outcome:
        await eventually(lambda: run["run_id"] in self.recorder.ended)
        return self.recorder.ended[run["run_id"]][0]


@asynccontextmanager
async def local(tmp_path: Path, *extra: RunObserver) -> AsyncIterator[Local]:
    settings = load_settings(FIXTURE_PROJECT / "dockyard.yaml", data_dir=tmp_path / "data")
    registry = load_registry(settings)
    recorder = Recorder()
    broker = MemoryBroker()
    async with open_storage(settings) as storage:
        registry.bind(storage.checkpointer, storage.store)
        ctx = RunContext(storage, registry, broker, settings, observers=[*extra, recorder])
        executor = Executor(ctx, 4, requeue_on_start=True)
        service = RunService(ctx, executor)
        await service.ensure_default_assistants()
        await executor.start()
        try:
            yield Local(service, executor, recorder, broker)
        finally:
            await executor.stop()


def held(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    """A go-ahead file for the fixture graphs' hold, and the config that waits for it."""
    go = tmp_path / "go"
    return go, {"configurable": {"hold": str(go)}}


# -- the observers --------------------------------------------------------------------------


async def test_observers_hear_created_started_and_ended_in_order(tmp_path: Path) -> None:
    async with local(tmp_path) as lo:
        run = await lo.start("trivial", input={"x": 1}, on_completion="keep")
        outcome = await lo.ended(run)
        assert outcome.status == "success" and outcome.error is None
        assert outcome.values == {"x": 1}
        rid = run["run_id"]
        assert lo.recorder.calls == [("created", rid), ("started", rid), ("ended", rid)]


async def test_ended_carries_the_error_body_and_the_model_usage(tmp_path: Path) -> None:
    async with local(tmp_path) as lo:
        failed = await lo.start("failing", input={})
        outcome = await lo.ended(failed)
        assert outcome.status == "error"
        assert outcome.error is not None and outcome.error["error"] == "ValueError"
        agent = await lo.start(
            "weather_agent", input={"messages": [{"role": "user", "content": "Paris?"}]}
        )
        outcome = await lo.ended(agent)
        assert outcome.status == "success"
        usage = lo.recorder.ended[agent["run_id"]][1]
        # The agent asks its model twice: for the tool call, then for the answer.
        assert usage.model_calls == 2
        assert usage.input_tokens > 0 and usage.output_tokens > 0
        assert usage.total_tokens == usage.input_tokens + usage.output_tokens


async def test_a_failing_observer_does_not_stop_the_run_or_the_others(tmp_path: Path) -> None:
    async with local(tmp_path, Broken()) as lo:
        run = await lo.start("trivial", input={"x": 5})
        assert (await lo.ended(run)).values == {"x": 5}


async def test_a_run_handed_back_at_shutdown_has_not_ended(tmp_path: Path) -> None:
    _, config = held(tmp_path)
    async with local(tmp_path) as lo:
        thread = await lo.service.storage.threads.create(
            thread_id="t-shutdown", metadata={}, if_exists="raise"
        )
        run = await lo.start(
            "slow", thread_id=thread["thread_id"], input={"delay": 0}, config=config
        )
        await eventually(lambda: ("started", run["run_id"]) in lo.recorder.calls)
        await lo.executor.stop()
        stored = await lo.service.storage.runs.get(run["run_id"])
        assert stored is not None and stored["status"] == "pending"  # back in the queue
        assert run["run_id"] not in lo.recorder.ended


# -- the cancel state machine ----------------------------------------------------------------


async def test_cancel_before_the_task_begins_is_recorded_not_delivered(tmp_path: Path) -> None:
    async with local(tmp_path) as lo:
        run = await lo.start("trivial", input={"x": 1})  # started directly: its task is new
        attempt = lo.executor._attempts[run["run_id"]]
        assert attempt.phase is Phase.QUEUED
        assert lo.executor.cancel(run["run_id"], "interrupt") is CancelResult.CANCELLED
        assert attempt.requested == "interrupt"
        outcome = await lo.ended(run)
        assert outcome.status == "interrupted"
        # It never streamed: the attempt stopped at its first step.
        assert ("started", run["run_id"]) not in lo.recorder.calls


async def test_cancel_while_streaming_interrupts_the_graph(tmp_path: Path) -> None:
    _, config = held(tmp_path)
    async with local(tmp_path) as lo:
        run = await lo.start("slow", input={"delay": 0}, config=config)
        attempt = lo.executor._attempts[run["run_id"]]
        await eventually(lambda: attempt.phase is Phase.STREAMING)
        assert lo.executor.cancel(run["run_id"], "interrupt") is CancelResult.CANCELLED
        outcome = await lo.ended(run)
        assert outcome.status == "interrupted" and not outcome.rollback
        assert outcome.values == {"delay": 0, "steps": ["one"]}


async def test_cancel_while_settling_leaves_the_outcome_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = asyncio.Event()
    original = RunAttempt.settle

    async def slow_settle(self: RunAttempt, outcome: Outcome) -> None:
        self.phase = Phase.SETTLING
        await release.wait()
        await original(self, outcome)

    monkeypatch.setattr(RunAttempt, "settle", slow_settle)
    async with local(tmp_path) as lo:
        run = await lo.start("trivial", input={"x": 1})
        attempt = lo.executor._attempts[run["run_id"]]
        await eventually(lambda: attempt.phase is Phase.SETTLING)
        assert lo.executor.cancel(run["run_id"], "interrupt") is CancelResult.SETTLING
        release.set()
        assert (await lo.ended(run)).status == "success"


async def test_a_run_not_here_is_not_here_and_an_early_cancel_waits_for_it(
    tmp_path: Path,
) -> None:
    async with local(tmp_path) as lo:
        assert lo.executor.cancel("nobody", "interrupt") is CancelResult.NOT_HERE
        assert lo.executor._early_cancels == {}
        assert lo.executor.cancel("soon", "rollback", early=True) is CancelResult.NOT_HERE
        assert lo.executor._early_cancels == {"soon": "rollback"}
        # A run that never shows up here is forgotten after two heartbeats.
        lo.executor._forget_orphan_cancels()
        assert "soon" in lo.executor._early_cancels
        lo.executor._forget_orphan_cancels()
        assert "soon" not in lo.executor._early_cancels


async def test_an_early_cancel_stops_the_run_as_it_starts(tmp_path: Path) -> None:
    async with local(tmp_path) as lo:
        spec = RunSpec(assistant_id="trivial", input={"x": 1})
        lo.executor.cancel("fixed-id", "interrupt", early=True)
        run = await lo.service.create(None, spec, run_id="fixed-id")
        assert (await lo.ended(run)).status == "interrupted"
        assert lo.executor._early_cancels == {}


async def test_direct_start_places_are_counted_and_given_back(tmp_path: Path) -> None:
    async with local(tmp_path) as lo:
        places = [lo.executor.direct_start() for _ in range(4)]
        assert all(p is not None for p in places)
        assert lo.executor.direct_start() is None  # max_concurrency 4
        for p in places:
            assert p is not None
            p.abandon()
            p.abandon()  # twice gives back once
        assert lo.executor.direct_start() is not None


# -- the steps -------------------------------------------------------------------------------


async def test_prepare_builds_the_config_and_stream_arguments(tmp_path: Path) -> None:
    async with local(tmp_path) as lo:
        thread = await lo.service.storage.threads.create(
            thread_id="t-prep", metadata={}, if_exists="raise"
        )
        spec = RunSpec(
            assistant_id="custom",
            input={},
            context={"name": "Ada"},
            config={"configurable": {"k": 1}, "tags": ["x"]},
            checkpoint={"checkpoint_id": "cp-1", "checkpoint_ns": ""},
            interrupt_before=("speak",),
            stream_mode=("updates",),
            durability="sync",
            metadata={"m": 1},
        )
        row = lo.service._run_row(
            thread["thread_id"], await lo.service.resolve_assistant("custom"), spec, False
        )
        row["attempts"] = 1
        attempt = RunAttempt(lo.service.ctx, row)
        p = await attempt.prepare()
        conf = p.config["configurable"]
        assert conf["k"] == 1 and conf["checkpoint_id"] == "cp-1"
        assert conf["thread_id"] == "t-prep" and conf["run_id"] == row["run_id"]
        assert p.config["metadata"]["m"] == 1 and p.config["tags"] == ["x"]
        assert p.stream_kwargs["context"] == {"name": "Ada"}
        assert p.stream_kwargs["interrupt_before"] == ["speak"]
        assert p.stream_kwargs["durability"] == "sync"
        assert p.stream_kwargs["stream_mode"] == ["updates", "values"]
        assert p.start is not None  # a thread's run remembers the writes it started from


async def test_a_stateless_run_saves_its_checkpoint_once_at_exit(tmp_path: Path) -> None:
    async with local(tmp_path) as lo:
        run = await lo.start("trivial", input={"x": 1})
        assert run["kwargs"]["durability"] == "exit"
        kept = await lo.start("trivial", input={"x": 1}, on_completion="keep")
        assert kept["kwargs"]["durability"] is None


def test_build_config_keeps_the_assistants_config_under_the_runs() -> None:
    spec = RunSpec(assistant_id="a", config={"configurable": {"b": 2}, "recursion_limit": 7})
    run: Any = {"run_id": "r", "thread_id": "t", "metadata": {}}
    assistant = {
        "assistant_id": "a",
        "graph_id": "g",
        "config": {"configurable": {"a": 1, "b": 1}, "tags": ["base"]},
    }
    config = build_config(run, spec, assistant)
    assert config["configurable"]["a"] == 1 and config["configurable"]["b"] == 2
    assert config["recursion_limit"] == 7 and config["tags"] == ["base"]
    assert config["metadata"]["graph_id"] == "g"
