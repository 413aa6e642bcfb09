"""Deleting a run through the service: the status check and the delete are one operation,
so a run whose status changes after the route read it is never deleted while active."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from dockyard.errors import ConflictError, NotFoundError
from dockyard.runtime.attempt import RunContext
from dockyard.runtime.broker import MemoryBroker
from dockyard.runtime.service import RunService
from dockyard.storage.base import Run
from dockyard.storage.database import Storage
from tests.storage.conformance import add_run, make_thread
from tests.storage.test_postgres import postgres_backend
from tests.storage.test_sqlite import sqlite_backend


@pytest.fixture(params=["sqlite", "postgres"])
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Storage]:
    factory: Callable[[Path], Any] = (
        sqlite_backend if request.param == "sqlite" else postgres_backend
    )
    async with factory(tmp_path) as s:
        yield s


def service(storage: Storage) -> RunService:
    # Deleting a run reads storage only: no graphs, no settings.
    ctx = RunContext(
        storage=storage,
        registry=None,  # type: ignore[arg-type]
        broker=MemoryBroker(),
        settings=None,  # type: ignore[arg-type]
    )
    return RunService(ctx, None)


def stale_reads(storage: Storage, monkeypatch: pytest.MonkeyPatch, status: str) -> None:
    """The next read of a run answers with ``status``: as if the run changed (started,
    or was requeued, or went away) between the status check and the delete."""
    real = storage.runs.get
    calls = 0

    async def get(run_id: str, thread_id: str | None = None) -> Run | None:
        nonlocal calls
        calls += 1
        row = await real(run_id, thread_id)
        if calls == 1:
            row = {"metadata": {}, **(row or {}), "run_id": run_id, "status": status}  # type: ignore[typeddict-item]
        return row

    monkeypatch.setattr(storage.runs, "get", get)


async def test_a_run_that_started_after_the_check_is_not_deleted(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    tid = (await make_thread(storage))["thread_id"]
    run = await add_run(storage, tid, status="running")
    stale_reads(storage, monkeypatch, "success")
    with pytest.raises(ConflictError) as caught:
        await service(storage).delete_run(tid, run["run_id"])
    assert caught.value.code == "run_active"
    assert "running" in str(caught.value)
    got = await storage.runs.get(run["run_id"])
    assert got is not None and got["status"] == "running"


async def test_a_run_deleted_after_the_check_answers_not_found(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    tid = (await make_thread(storage))["thread_id"]
    run = await add_run(storage, tid, status="success")
    await storage.runs.delete(run["run_id"])
    stale_reads(storage, monkeypatch, "success")
    with pytest.raises(NotFoundError) as caught:
        await service(storage).delete_run(tid, run["run_id"])
    assert caught.value.code == "run_not_found"


async def test_delete_run(storage: Storage) -> None:
    tid = (await make_thread(storage))["thread_id"]
    other = (await make_thread(storage))["thread_id"]
    done = await add_run(storage, tid, status="error")
    pending = await add_run(storage, tid)
    runs = service(storage)
    with pytest.raises(NotFoundError):  # another thread's run is not this thread's
        await runs.delete_run(other, done["run_id"])
    with pytest.raises(ConflictError) as caught:
        await runs.delete_run(tid, pending["run_id"])
    assert caught.value.code == "run_active"
    await runs.delete_run(tid, done["run_id"])
    assert await storage.runs.get(done["run_id"]) is None
    with pytest.raises(NotFoundError):
        await runs.delete_run(tid, done["run_id"])
