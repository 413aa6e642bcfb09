"""One conformance suite for dockyard's record stores: AssistantStore, ThreadStore, RunStore,
CronStore (its cases in ``cron_conformance.py``), UsageStore (``usage_conformance.py``),
KeyStore (``key_conformance.py``), PromptStore (``prompt_conformance.py``), EvalStore
(``eval_conformance.py``).

Written against the protocols in ``dockyard.storage.base`` only. A backend joins by
subclassing ``StorageConformance`` as a ``Test*`` class and naming its factory::

    class TestSqlite(StorageConformance):
        factory = staticmethod(sqlite_backend)

A factory takes a fresh, empty temporary folder and returns an async context manager
yielding an object with ``assistants``, ``threads``, ``runs``, ``crons`` and ``usage``; every test
gets a new, empty backend. JSON filters mean what PostgreSQL's ``jsonb @>`` means
(LangGraph's server filters that way), on every backend.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, Protocol

import pytest

from dockyard.errors import ConflictError, InvalidRequestError, NotFoundError
from dockyard.storage.base import (
    AssistantStore,
    CronStore,
    KeyStore,
    Run,
    RunStatus,
    RunStore,
    Thread,
    ThreadStore,
    UsageStore,
)
from dockyard.storage.prompts import PromptStore
from tests.storage.alert_conformance import AlertConformance
from tests.storage.cron_conformance import CronConformance
from tests.storage.eval_conformance import EvalConformance
from tests.storage.key_conformance import KeyConformance
from tests.storage.prompt_conformance import PromptConformance
from tests.storage.rollout_conformance import RolloutConformance
from tests.storage.usage_conformance import UsageConformance


class Backend(Protocol):
    assistants: AssistantStore
    threads: ThreadStore
    runs: RunStore
    crons: CronStore
    usage: UsageStore
    keys: KeyStore
    prompts: PromptStore


BackendFactory = Callable[[Path], AbstractAsyncContextManager[Backend]]


def new_id() -> str:
    return str(uuid.uuid4())


def thread_row(thread_id: str | None = None, **overrides: Any) -> Thread:
    now = datetime.now(UTC)
    row: Thread = {
        "thread_id": thread_id or new_id(),
        "status": "idle",
        "metadata": {},
        "values": None,
        "interrupts": {},
        "graph_id": None,
        "ttl": None,
        "expires_at": None,
        "created_at": now,
        "updated_at": now,
    }
    row.update(overrides)  # type: ignore[typeddict-item]
    return row


def run_row(thread_id: str, **overrides: Any) -> Run:
    now = datetime.now(UTC)
    row: Run = {
        "run_id": new_id(),
        "thread_id": thread_id,
        "assistant_id": "asst",
        "status": "pending",
        "metadata": {},
        "multitask_strategy": "enqueue",
        "kwargs": {"input": {"x": 1}},
        "temporary": False,
        "attempts": 0,
        "error": None,
        "cancel_reason": None,
        "not_before": None,
        "started_at": None,
        "ended_at": None,
        "created_at": now,
        "updated_at": now,
        "worker_id": None,
        "lease_expires_at": None,
        "cancel_requested": None,
        "webhook": None,
        "usage": None,
    }
    row.update(overrides)  # type: ignore[typeddict-item]
    return row


async def make_assistant(b: Backend, **overrides: Any) -> Any:
    kwargs: dict[str, Any] = {
        "assistant_id": new_id(),
        "graph_id": "g",
        "config": {},
        "context": {},
        "metadata": {},
        "name": "a",
        "description": None,
        "if_exists": "raise",
    }
    kwargs.update(overrides)
    return await b.assistants.create(**kwargs)


async def make_thread(b: Backend, **overrides: Any) -> Thread:
    kwargs: dict[str, Any] = {"thread_id": new_id(), "metadata": {}, "if_exists": "raise"}
    kwargs.update(overrides)
    return await b.threads.create(**kwargs)


async def add_run(b: Backend, thread_id: str, **overrides: Any) -> Run:
    run, _ = await b.runs.create(
        run_row(thread_id, **overrides), reject_if_busy=False, create_thread=None, graph_id="g"
    )
    return run


def is_utc(value: datetime) -> bool:
    return value.tzinfo is not None and value.utcoffset() == timedelta(0)


# Stored documents and filters that must (not) match, as ``jsonb @>`` decides.
DOC: dict[str, Any] = {
    "user": "u1",
    "n": 1,
    "flag": True,
    "none": None,
    "nested": {"a": 1, "b": {"c": "deep"}},
    "tags": ["x", "y", {"k": 1, "j": 2}],
    'quo"te': 1,
    "dot.ted": 2,
}
MATCHING: list[dict[str, Any]] = [
    {},
    {"user": "u1"},
    {"user": "u1", "n": 1},
    {"n": 1.0},
    {"flag": True},
    {"none": None},
    {"nested": {"b": {"c": "deep"}, "a": 1}},  # key order does not matter
    {"nested": {"b": {}}},  # a sub-object matches
    {"tags": ["y"]},  # an array matches a subset of its elements
    {"tags": [{"j": 2}, "x"]},
    {'quo"te': 1, "dot.ted": 2},  # keys that JSON paths find awkward
]
NOT_MATCHING: list[dict[str, Any]] = [
    {"user": "u2"},
    {"user": "u1", "n": 2},
    {"n": "1"},  # a string is not a number
    {"flag": 1},  # true is not 1
    {"n": True},
    {"none": False},
    {"missing": None},  # an absent key is not null
    {"nested": {"a": 2}},
    {"nested": {"z": 1}},
    {"tags": ["z"]},
    {"tags": "x"},  # below the top level, an array does not contain a scalar
    {"user": {"a": 1}},
]


class StorageConformance(
    CronConformance,
    UsageConformance,
    KeyConformance,
    AlertConformance,
    PromptConformance,
    EvalConformance,
    RolloutConformance,
):
    """The shared spec. Not collected itself: its ``Test*`` subclasses are."""

    factory: ClassVar[BackendFactory]

    @pytest.fixture
    async def b(self, tmp_path: Path) -> AsyncIterator[Backend]:
        async with type(self).factory(tmp_path) as backend:
            yield backend

    # -- assistants ---------------------------------------------------------------------

    async def test_assistant_create_and_get_round_trip(self, b: Backend) -> None:
        aid = new_id()
        created = await make_assistant(
            b,
            assistant_id=aid,
            graph_id="graph-1",
            config={"configurable": {"model": "m", "temperature": 0.5}},
            context={"lang": "ünïcode"},
            metadata={"owner": "me", "n": [1, 2]},
            name="first",
            description="the first one",
        )
        got = await b.assistants.get(aid)
        assert got == created
        assert got is not None
        assert got["version"] == 1
        assert got["graph_id"] == "graph-1"
        assert got["config"] == {"configurable": {"model": "m", "temperature": 0.5}}
        assert got["context"] == {"lang": "ünïcode"}
        assert got["metadata"] == {"owner": "me", "n": [1, 2]}
        assert (got["name"], got["description"]) == ("first", "the first one")
        assert is_utc(got["created_at"]) and got["created_at"] == got["updated_at"]
        assert await b.assistants.get(new_id()) is None

    async def test_assistant_if_exists(self, b: Backend) -> None:
        first = await make_assistant(b, name="original", metadata={"v": 1})
        with pytest.raises(ConflictError):
            await make_assistant(b, assistant_id=first["assistant_id"], name="again")
        same = await make_assistant(
            b, assistant_id=first["assistant_id"], name="again", if_exists="do_nothing"
        )
        assert same["name"] == "original" and same["metadata"] == {"v": 1}
        assert await b.assistants.count() == 1

    async def test_assistant_update_makes_a_version_and_merges_metadata(self, b: Backend) -> None:
        a = await make_assistant(b, metadata={"keep": 1, "change": 1}, config={"c": 1})
        aid = a["assistant_id"]
        new = await b.assistants.update(aid, metadata={"change": 2, "add": 3}, name="renamed")
        assert new["version"] == 2
        assert new["metadata"] == {"keep": 1, "change": 2, "add": 3}
        assert new["name"] == "renamed"
        assert new["config"] == {"c": 1} and new["graph_id"] == "g"  # untouched fields stay
        assert new["created_at"] == a["created_at"]
        assert new["updated_at"] >= a["updated_at"]
        assert await b.assistants.get(aid) == new
        third = await b.assistants.update(aid, graph_id="other", config={}, context={"k": 1})
        assert (third["version"], third["graph_id"], third["config"]) == (3, "other", {})
        assert third["context"] == {"k": 1} and third["name"] == "renamed"
        with pytest.raises(NotFoundError):
            await b.assistants.update(new_id(), name="x")

    async def test_assistant_versions_newest_first_with_filters(self, b: Backend) -> None:
        a = await make_assistant(b, name="v1", metadata={"stage": "dev"})
        aid = a["assistant_id"]
        await b.assistants.update(aid, name="v2", metadata={"stage": "prod"})
        await b.assistants.update(aid, name="v3", config={"c": 3})
        versions = await b.assistants.versions(aid)
        assert [v["version"] for v in versions] == [3, 2, 1]
        assert [v["name"] for v in versions] == ["v3", "v2", "v1"]
        assert versions[0]["config"] == {"c": 3} and versions[2]["config"] == {}
        assert all(v["assistant_id"] == aid and is_utc(v["created_at"]) for v in versions)
        prod = await b.assistants.versions(aid, metadata={"stage": "prod"})
        assert [v["version"] for v in prod] == [3, 2]  # v3 inherited the merged metadata
        assert [v["version"] for v in await b.assistants.versions(aid, limit=1)] == [3]
        assert [v["version"] for v in await b.assistants.versions(aid, offset=1)] == [2, 1]
        assert await b.assistants.versions(new_id()) == []

    async def test_assistant_set_latest(self, b: Backend) -> None:
        a = await make_assistant(b, name="v1", metadata={"m": 1}, config={"c": 1})
        aid = a["assistant_id"]
        await b.assistants.update(aid, name="v2", metadata={"m": 2}, config={"c": 2})
        back = await b.assistants.set_latest(aid, 1)
        assert (back["version"], back["name"], back["config"]) == (1, "v1", {"c": 1})
        assert back["metadata"] == {"m": 1}
        assert await b.assistants.get(aid) == back
        after = await b.assistants.update(aid, name="v3")
        assert after["version"] == 3  # numbering continues after the highest version
        assert after["config"] == {"c": 1}  # built on the version made latest
        with pytest.raises(NotFoundError):
            await b.assistants.set_latest(aid, 99)

    async def test_assistant_delete(self, b: Backend) -> None:
        a = await make_assistant(b)
        other = await make_assistant(b)
        await b.assistants.update(a["assistant_id"], name="v2")
        assert await b.assistants.delete(a["assistant_id"]) is True
        assert await b.assistants.get(a["assistant_id"]) is None
        assert await b.assistants.versions(a["assistant_id"]) == []
        assert await b.assistants.delete(a["assistant_id"]) is False
        assert await b.assistants.get(other["assistant_id"]) is not None

    async def test_assistant_search_filters_and_count(self, b: Backend) -> None:
        x = await make_assistant(b, graph_id="gx", name="Alpha Agent", metadata={"team": "a"})
        y = await make_assistant(b, graph_id="gy", name="beta", metadata={"team": "a", "n": 1})
        z = await make_assistant(b, graph_id="gx", name="gamma", metadata={"team": "b"})

        async def ids(**kw: Any) -> list[str]:
            return [a["assistant_id"] for a in await b.assistants.search(**kw)]

        assert await ids() == [z["assistant_id"], y["assistant_id"], x["assistant_id"]]
        assert set(await ids(graph_id="gx")) == {x["assistant_id"], z["assistant_id"]}
        assert await ids(metadata={"team": "a", "n": 1}) == [y["assistant_id"]]
        assert await ids(name="alpha") == [x["assistant_id"]]  # substring, any case
        assert await ids(graph_id="gx", metadata={"team": "a"}) == [x["assistant_id"]]
        assert await ids(graph_id="nope") == []
        assert await b.assistants.count() == 3
        assert await b.assistants.count(graph_id="gx") == 2
        assert await b.assistants.count(metadata={"team": "a"}) == 2
        assert await b.assistants.count(name="GAMMA") == 1

    async def test_assistant_search_sort_and_pages(self, b: Backend) -> None:
        made = [await make_assistant(b, name=n, graph_id=g) for n, g in [("b", "g2"), ("c", "g1")]]
        made.append(await make_assistant(b, name="a", graph_id="g3"))

        async def names(**kw: Any) -> list[str]:
            return [a["name"] for a in await b.assistants.search(**kw)]

        assert await names(sort_by="name", sort_order="asc") == ["a", "b", "c"]
        assert await names(sort_by="name", sort_order="desc") == ["c", "b", "a"]
        assert await names(sort_by="graph_id", sort_order="asc") == ["c", "b", "a"]
        assert await names(sort_by="created_at", sort_order="asc") == ["b", "c", "a"]
        assert await names(sort_by="created_at") == ["a", "c", "b"]  # desc by default
        expected = sorted(a["assistant_id"] for a in made)
        got = await b.assistants.search(sort_by="assistant_id", sort_order="asc")
        assert [a["assistant_id"] for a in got] == expected
        await b.assistants.update(made[0]["assistant_id"], config={"touched": True})
        assert (await names(sort_by="updated_at", limit=1))[0] == "b"
        assert await names(sort_by="name", sort_order="asc", limit=2) == ["a", "b"]
        assert await names(sort_by="name", sort_order="asc", limit=2, offset=2) == ["c"]
        assert await names(sort_by="name", offset=3) == []
        with pytest.raises(InvalidRequestError):
            await b.assistants.search(sort_by="config")

    async def test_assistant_metadata_filter_means_containment(self, b: Backend) -> None:
        a = await make_assistant(b, metadata=DOC)
        other = await make_assistant(b, metadata={"user": "someone else"})
        for wanted in MATCHING:
            found = [x["assistant_id"] for x in await b.assistants.search(metadata=wanted)]
            assert a["assistant_id"] in found, wanted
            assert (other["assistant_id"] in found) == (wanted == {}), wanted
            assert await b.assistants.count(metadata=wanted) == len(found), wanted
            versions = await b.assistants.versions(a["assistant_id"], metadata=wanted)
            assert len(versions) == 1, wanted
        for wanted in NOT_MATCHING:
            assert await b.assistants.search(metadata=wanted) == [], wanted
            assert await b.assistants.count(metadata=wanted) == 0, wanted
            assert await b.assistants.versions(a["assistant_id"], metadata=wanted) == [], wanted

    # -- threads ------------------------------------------------------------------------

    async def test_thread_create_and_get_round_trip(self, b: Backend) -> None:
        expires = datetime.now(UTC) + timedelta(minutes=5)
        t = await make_thread(
            b,
            metadata={"user": "u1"},
            ttl={"strategy": "delete", "ttl": 5},
            expires_at=expires,
            graph_id="g",
        )
        got = await b.threads.get(t["thread_id"])
        assert got == t
        assert got is not None
        assert got["status"] == "idle" and got["values"] is None and got["interrupts"] == {}
        assert got["metadata"] == {"user": "u1"} and got["graph_id"] == "g"
        assert got["ttl"] == {"strategy": "delete", "ttl": 5}
        assert got["expires_at"] == expires and is_utc(got["expires_at"])
        assert is_utc(got["created_at"]) and is_utc(got["updated_at"])
        plain = await make_thread(b)
        assert plain["graph_id"] is None and plain["ttl"] is None and plain["expires_at"] is None
        assert await b.threads.get(new_id()) is None

    async def test_thread_if_exists(self, b: Backend) -> None:
        t = await make_thread(b, metadata={"v": 1})
        with pytest.raises(ConflictError):
            await make_thread(b, thread_id=t["thread_id"])
        same = await make_thread(
            b, thread_id=t["thread_id"], metadata={"v": 2}, if_exists="do_nothing"
        )
        assert same["metadata"] == {"v": 1}
        assert await b.threads.count() == 1

    async def test_thread_update_merges_metadata_and_sets_ttl(self, b: Backend) -> None:
        t = await make_thread(b, metadata={"keep": 1, "change": 1})
        tid = t["thread_id"]
        new = await b.threads.update(tid, metadata={"change": 2, "add": 3})
        assert new["metadata"] == {"keep": 1, "change": 2, "add": 3}
        assert new["updated_at"] >= t["updated_at"] and new["created_at"] == t["created_at"]
        expires = datetime.now(UTC) + timedelta(hours=1)
        new = await b.threads.update(tid, ttl={"strategy": "delete", "ttl": 60}, expires_at=expires)
        assert new["metadata"] == {"keep": 1, "change": 2, "add": 3}
        got = await b.threads.get(tid)
        assert got == new
        assert got is not None and got["ttl"] == {"strategy": "delete", "ttl": 60}
        assert got["expires_at"] == expires
        with pytest.raises(NotFoundError):
            await b.threads.update(new_id(), metadata={})

    async def test_thread_set_state(self, b: Backend) -> None:
        tid = (await make_thread(b))["thread_id"]
        interrupts = {"task-1": [{"value": {"q": "ok?"}, "id": "i1"}]}
        await b.threads.set_state(
            tid, status="interrupted", values={"x": 1, "msgs": ["ü"]}, interrupts=interrupts
        )
        got = await b.threads.get(tid)
        assert got is not None
        assert got["status"] == "interrupted"
        assert got["values"] == {"x": 1, "msgs": ["ü"]}
        assert got["interrupts"] == interrupts
        await b.threads.set_state(tid, status="busy")  # values left out: kept
        got = await b.threads.get(tid)
        assert (
            got is not None and got["status"] == "busy" and got["values"] == {"x": 1, "msgs": ["ü"]}
        )
        assert got["interrupts"] == interrupts
        await b.threads.set_state(tid, values=None, interrupts={}, graph_id="g2")
        got = await b.threads.get(tid)
        assert got is not None
        assert (got["status"], got["values"], got["interrupts"], got["graph_id"]) == (
            "busy",
            None,
            {},
            "g2",
        )
        await b.threads.set_state(tid, values=[1, 2])  # a list state (MessageGraph) too
        got = await b.threads.get(tid)
        assert got is not None and got["values"] == [1, 2]

    async def test_thread_delete_removes_its_runs(self, b: Backend) -> None:
        t = await make_thread(b)
        keep = await make_thread(b)
        run = await add_run(b, t["thread_id"])
        other = await add_run(b, keep["thread_id"])
        assert await b.threads.delete(t["thread_id"]) is True
        assert await b.threads.get(t["thread_id"]) is None
        assert await b.runs.get(run["run_id"]) is None
        assert await b.threads.delete(t["thread_id"]) is False
        assert await b.runs.get(other["run_id"]) is not None

    async def test_thread_search_and_count(self, b: Backend) -> None:
        t1 = await make_thread(b, metadata={"user": "u1"})
        t2 = await make_thread(b, metadata={"user": "u1", "vip": True})
        t3 = await make_thread(b, metadata={"user": "u2"})
        await b.threads.set_state(t2["thread_id"], status="interrupted", values={"x": 2})
        await b.threads.set_state(t3["thread_id"], values={"x": 3, "deep": {"a": [1, 2]}})

        async def ids(**kw: Any) -> list[str]:
            return [t["thread_id"] for t in await b.threads.search(**kw)]

        assert await ids() == [t3["thread_id"], t2["thread_id"], t1["thread_id"]]
        assert await ids(metadata={"user": "u1"}) == [t2["thread_id"], t1["thread_id"]]
        assert await ids(status="interrupted") == [t2["thread_id"]]
        assert await ids(status="idle") == [t3["thread_id"], t1["thread_id"]]
        assert await ids(values={"x": 3}) == [t3["thread_id"]]
        assert await ids(values={"deep": {"a": [2]}}) == [t3["thread_id"]]
        assert await ids(values={"x": 4}) == []
        assert await ids(ids=[t1["thread_id"], t3["thread_id"], new_id()]) == [
            t3["thread_id"],
            t1["thread_id"],
        ]
        assert await ids(ids=[]) == []
        assert await ids(ids=[t1["thread_id"], t2["thread_id"]], metadata={"vip": True}) == [
            t2["thread_id"]
        ]
        assert await ids(sort_order="asc", sort_by="created_at") == [
            t1["thread_id"],
            t2["thread_id"],
            t3["thread_id"],
        ]
        assert await ids(sort_by="thread_id", sort_order="asc") == sorted(
            [t1["thread_id"], t2["thread_id"], t3["thread_id"]]
        )
        assert (await ids(sort_by="status", sort_order="asc"))[-1] == t2["thread_id"]
        await b.threads.update(t1["thread_id"], metadata={"touched": 1})
        assert (await ids(sort_by="updated_at", limit=1)) == [t1["thread_id"]]
        assert await ids(limit=2) == [t3["thread_id"], t2["thread_id"]]
        assert await ids(limit=2, offset=2) == [t1["thread_id"]]
        with pytest.raises(InvalidRequestError):
            await b.threads.search(sort_by="values")
        assert await b.threads.count() == 3
        assert await b.threads.count(metadata={"user": "u1"}) == 2
        assert await b.threads.count(status="interrupted") == 1
        assert await b.threads.count(values={"x": 3}) == 1
        assert await b.threads.count(ids=[t1["thread_id"], t2["thread_id"]]) == 2

    async def test_thread_metadata_and_values_filters_mean_containment(self, b: Backend) -> None:
        t = await make_thread(b, metadata=DOC)
        await b.threads.set_state(t["thread_id"], values=DOC)
        other = await make_thread(b, metadata={"user": "someone else"})
        for wanted in MATCHING:
            for field in ("metadata", "values"):
                found = [x["thread_id"] for x in await b.threads.search(**{field: wanted})]
                assert t["thread_id"] in found, (field, wanted)
                assert (other["thread_id"] in found) == (wanted == {}), (field, wanted)
            assert await b.threads.count(metadata=wanted, values=wanted) >= 1, wanted
        for wanted in NOT_MATCHING:
            assert await b.threads.search(metadata=wanted) == [], wanted
            assert await b.threads.search(values=wanted) == [], wanted
            assert await b.threads.count(metadata=wanted) == 0, wanted
            assert await b.threads.count(values=wanted) == 0, wanted

    async def test_thread_expired(self, b: Backend) -> None:
        now = datetime.now(UTC)
        old = await make_thread(b, expires_at=now - timedelta(minutes=1), ttl={"ttl": 1})
        due = await make_thread(b, expires_at=now, ttl={"ttl": 1})
        await make_thread(b, expires_at=now + timedelta(minutes=1), ttl={"ttl": 3})
        await make_thread(b)
        assert set(await b.threads.expired(now)) == {old["thread_id"], due["thread_id"]}
        assert len(await b.threads.expired(now, limit=1)) == 1
        assert await b.threads.expired(now - timedelta(hours=1)) == []

    # -- runs ---------------------------------------------------------------------------

    async def test_run_create_marks_thread_busy(self, b: Backend) -> None:
        t = await make_thread(b)
        row = run_row(t["thread_id"], kwargs={"input": {"msg": "ünï"}, "stream_mode": ["values"]})
        run, inflight = await b.runs.create(
            row, reject_if_busy=True, create_thread=None, graph_id="g1"
        )
        assert run == row and inflight == []
        got = await b.runs.get(run["run_id"])
        assert got == row
        assert got is not None and is_utc(got["created_at"])
        assert await b.runs.get(run["run_id"], t["thread_id"]) == row
        assert await b.runs.get(run["run_id"], new_id()) is None
        thread = await b.threads.get(t["thread_id"])
        assert thread is not None
        assert (thread["status"], thread["graph_id"]) == ("busy", "g1")
        await add_run(b, t["thread_id"], status="success")  # a second graph does not win
        thread = await b.threads.get(t["thread_id"])
        assert thread is not None and thread["graph_id"] == "g1"

    async def test_run_create_on_missing_thread(self, b: Backend) -> None:
        tid = new_id()
        with pytest.raises(NotFoundError):
            await b.runs.create(
                run_row(tid), reject_if_busy=False, create_thread=None, graph_id="g"
            )
        assert await b.threads.get(tid) is None
        run, inflight = await b.runs.create(
            run_row(tid),
            reject_if_busy=False,
            create_thread=thread_row(tid, metadata={"graph_id": "g"}),
            graph_id="g",
        )
        assert inflight == []
        thread = await b.threads.get(tid)
        assert thread is not None
        assert (thread["status"], thread["metadata"], thread["graph_id"]) == (
            "busy",
            {"graph_id": "g"},
            "g",
        )
        assert [r["run_id"] for r in await b.runs.list(tid)] == [run["run_id"]]

    async def test_run_create_busy_thread(self, b: Backend) -> None:
        tid = (await make_thread(b))["thread_id"]
        first = await add_run(b, tid)
        with pytest.raises(ConflictError):
            await b.runs.create(run_row(tid), reject_if_busy=True, create_thread=None, graph_id="g")
        assert [r["run_id"] for r in await b.runs.list(tid)] == [first["run_id"]]
        second, inflight = await b.runs.create(
            run_row(tid), reject_if_busy=False, create_thread=None, graph_id="g"
        )
        assert [r["run_id"] for r in inflight] == [first["run_id"]]
        _, inflight = await b.runs.create(
            run_row(tid), reject_if_busy=False, create_thread=None, graph_id="g"
        )
        assert [r["run_id"] for r in inflight] == [first["run_id"], second["run_id"]]
        await b.runs.finish(first["run_id"], status="success")
        await b.runs.finish(second["run_id"], status="error")
        other = await make_thread(b)
        await add_run(b, other["thread_id"])  # another thread's run does not make this busy
        await b.runs.finish((await b.runs.active(tid))[0]["run_id"], status="interrupted")
        _, inflight = await b.runs.create(
            run_row(tid), reject_if_busy=True, create_thread=None, graph_id="g"
        )
        assert inflight == []

    async def test_run_list_and_active(self, b: Backend) -> None:
        tid = (await make_thread(b))["thread_id"]
        other = (await make_thread(b))["thread_id"]
        r1 = await add_run(b, tid)
        r2 = await add_run(b, tid)
        r3 = await add_run(b, tid)
        await add_run(b, other)
        await b.runs.finish(r1["run_id"], status="success")
        listed = await b.runs.list(tid)
        assert [r["run_id"] for r in listed] == [r3["run_id"], r2["run_id"], r1["run_id"]]
        assert [r["run_id"] for r in await b.runs.list(tid, limit=1)] == [r3["run_id"]]
        assert [r["run_id"] for r in await b.runs.list(tid, offset=2)] == [r1["run_id"]]
        assert [r["run_id"] for r in await b.runs.list(tid, status="success")] == [r1["run_id"]]
        assert await b.runs.list(tid, status="error") == []
        assert await b.runs.list(new_id()) == []
        assert [r["run_id"] for r in await b.runs.active(tid)] == [r2["run_id"], r3["run_id"]]

    async def test_run_with_status(self, b: Backend) -> None:
        tid = (await make_thread(b))["thread_id"]
        runs = [await add_run(b, tid) for _ in range(4)]
        await b.runs.finish(runs[0]["run_id"], status="success")
        await b.runs.finish(runs[1]["run_id"], status="error", error={"error": "E"})
        got = await b.runs.with_status(["success", "error"])
        assert [r["run_id"] for r in got] == [runs[0]["run_id"], runs[1]["run_id"]]
        assert len(await b.runs.with_status(["pending"])) == 2
        assert len(await b.runs.with_status(["pending"], limit=1)) == 1
        assert await b.runs.with_status(["timeout"]) == []

    async def test_run_claim_one_per_thread_oldest_first(self, b: Backend) -> None:
        t1 = (await make_thread(b))["thread_id"]
        t2 = (await make_thread(b))["thread_id"]
        a1 = await add_run(b, t1)
        a2 = await add_run(b, t1)
        b1 = await add_run(b, t2)
        now = datetime.now(UTC)
        claimed = await b.runs.claim(10, now)
        assert [r["run_id"] for r in claimed] == [a1["run_id"], b1["run_id"]]
        for r in claimed:
            assert (r["status"], r["attempts"], r["started_at"]) == ("running", 1, now)
        stored = await b.runs.get(a1["run_id"])
        assert stored is not None
        assert (stored["status"], stored["attempts"]) == ("running", 1)
        assert stored["started_at"] == now
        assert await b.runs.claim(10, now) == []  # a2 waits: its thread has a running run
        await b.runs.finish(a1["run_id"], status="success")
        assert [r["run_id"] for r in await b.runs.claim(10, now)] == [a2["run_id"]]
        assert await b.runs.claim(0, now) == []

    async def test_run_claim_limit_and_not_before(self, b: Backend) -> None:
        now = datetime.now(UTC)
        threads = [(await make_thread(b))["thread_id"] for _ in range(3)]
        later = await add_run(b, threads[0], not_before=now + timedelta(seconds=60))
        soon = await add_run(b, threads[0], not_before=now + timedelta(seconds=5))
        r1 = await add_run(b, threads[1])
        r2 = await add_run(b, threads[2], not_before=now - timedelta(seconds=1))
        assert await b.runs.next_due() == r2["not_before"]  # the earliest, even if overdue
        assert [r["run_id"] for r in await b.runs.claim(1, now)] == [r1["run_id"]]
        assert [r["run_id"] for r in await b.runs.claim(5, now)] == [r2["run_id"]]
        assert await b.runs.next_due() == soon["not_before"]
        assert await b.runs.claim(5, now) == []
        claimed = await b.runs.claim(5, now + timedelta(seconds=10))
        assert [r["run_id"] for r in claimed] == [soon["run_id"]]
        assert await b.runs.next_due() == later["not_before"]
        await b.runs.finish(soon["run_id"], status="success")
        assert [r["run_id"] for r in await b.runs.claim(5, now + timedelta(minutes=2))] == [
            later["run_id"]
        ]
        assert await b.runs.next_due() is None

    async def test_run_finish(self, b: Backend) -> None:
        tid = (await make_thread(b))["thread_id"]
        run = await add_run(b, tid)
        error = {"error": "ValueError", "message": "bädness"}
        assert await b.runs.finish(run["run_id"], status="error", error=error) is True
        got = await b.runs.get(run["run_id"])
        assert got is not None
        assert (got["status"], got["error"]) == ("error", error)
        assert got["ended_at"] is not None and is_utc(got["ended_at"])
        assert got["updated_at"] >= run["updated_at"]
        other = await add_run(b, tid)
        assert (
            await b.runs.finish(other["run_id"], status="interrupted", only_if=["running"]) is False
        )
        got = await b.runs.get(other["run_id"])
        assert got is not None and got["status"] == "pending" and got["ended_at"] is None
        assert (
            await b.runs.finish(
                other["run_id"],
                status="interrupted",
                cancel_reason="cancelled",
                only_if=["pending", "running"],
            )
            is True
        )
        got = await b.runs.get(other["run_id"])
        assert got is not None
        assert (got["status"], got["cancel_reason"], got["error"]) == (
            "interrupted",
            "cancelled",
            None,
        )
        assert await b.runs.finish(new_id(), status="success") is False

    async def test_run_delete(self, b: Backend) -> None:
        tid = (await make_thread(b))["thread_id"]
        run = await add_run(b, tid)
        keep = await add_run(b, tid)
        assert await b.runs.delete(run["run_id"]) is True
        assert await b.runs.get(run["run_id"]) is None
        assert await b.runs.delete(run["run_id"]) is False
        assert [r["run_id"] for r in await b.runs.list(tid)] == [keep["run_id"]]

    async def test_run_delete_only_if(self, b: Backend) -> None:
        # One statement: the status a delete is conditional on is the one it deletes under.
        tid = (await make_thread(b))["thread_id"]
        running = await add_run(b, tid, status="running")
        done = await add_run(b, tid, status="success")
        finished: list[RunStatus] = ["success", "error", "timeout", "interrupted"]
        assert await b.runs.delete(running["run_id"], only_if=finished) is False
        got = await b.runs.get(running["run_id"])
        assert got is not None and got["status"] == "running"
        assert await b.runs.delete(done["run_id"], only_if=finished) is True
        assert await b.runs.get(done["run_id"]) is None
        assert await b.runs.delete(done["run_id"], only_if=finished) is False

    async def test_run_requeue_running(self, b: Backend) -> None:
        t1 = (await make_thread(b))["thread_id"]
        t2 = (await make_thread(b))["thread_id"]
        await add_run(b, t1)
        await add_run(b, t2)
        claimed = await b.runs.claim(10, datetime.now(UTC))
        done = await add_run(b, t1, status="success")
        stale = await b.runs.requeue_running()
        assert {r["run_id"] for r in stale} == {r["run_id"] for r in claimed}
        for r in claimed:
            got = await b.runs.get(r["run_id"])
            assert got is not None and got["status"] == "pending" and got["attempts"] == 1
        got = await b.runs.get(done["run_id"])
        assert got is not None and got["status"] == "success"
        assert await b.runs.requeue_running() == []
        again = await b.runs.claim(10, datetime.now(UTC))
        assert sorted(r["attempts"] for r in again) == [2, 2]

    async def test_assistant_created_concurrently_with_do_nothing(self, b: Backend) -> None:
        # Processes starting together all create the graphs' default assistants.
        aid = new_id()
        made = await asyncio.gather(
            *(make_assistant(b, assistant_id=aid, if_exists="do_nothing") for _ in range(6))
        )
        assert {m["assistant_id"] for m in made} == {aid}
        assert len(await b.assistants.versions(aid)) == 1

    async def test_run_lease_heartbeat_and_expiry(self, b: Backend) -> None:
        now = datetime.now(UTC)
        t1 = (await make_thread(b))["thread_id"]
        t2 = (await make_thread(b))["thread_id"]
        r1, r2 = await add_run(b, t1), await add_run(b, t2)
        lease = now + timedelta(seconds=10)
        claimed = await b.runs.claim(1, now, worker_id="w1", lease_until=lease)
        other = await b.runs.claim(1, now, worker_id="w2", lease_until=lease)
        assert [r["run_id"] for r in claimed + other] == [r1["run_id"], r2["run_id"]]
        got = await b.runs.get(r1["run_id"])
        assert got is not None and got["worker_id"] == "w1"
        assert got["lease_expires_at"] == lease
        # w1 renews its own run only; another worker's run is not its to renew.
        later = now + timedelta(seconds=20)
        held = await b.runs.heartbeat("w1", [r1["run_id"], r2["run_id"]], later)
        assert held == {r1["run_id"]: None}
        # w2 died: its lease runs out and its run goes back to the queue, not w1's.
        assert await b.runs.requeue_expired(now + timedelta(seconds=15)) == [r2["run_id"]]
        at = now + timedelta(seconds=15)
        again = await b.runs.claim(5, at, worker_id="w1", lease_until=later)
        assert [(r["run_id"], r["attempts"]) for r in again] == [(r2["run_id"], 2)]
        # The old owner cannot settle a run it lost (fencing).
        assert not await b.runs.finish(r2["run_id"], status="success", worker_id="w2")
        assert await b.runs.finish(r2["run_id"], status="success", worker_id="w1")
        done = await b.runs.get(r2["run_id"])
        assert done is not None and done["status"] == "success" and done["worker_id"] is None

    async def test_run_cancel_request_and_release(self, b: Backend) -> None:
        now = datetime.now(UTC)
        tid = (await make_thread(b))["thread_id"]
        run = await add_run(b, tid)
        lease = now + timedelta(seconds=30)
        await b.runs.claim(1, now, worker_id="w1", lease_until=lease)
        assert await b.runs.request_cancel(run["run_id"], "rollback")
        assert await b.runs.heartbeat("w1", [run["run_id"]], lease) == {run["run_id"]: "rollback"}
        assert not await b.runs.release(run["run_id"], "w2")
        assert await b.runs.release(run["run_id"], "w1")
        got = await b.runs.get(run["run_id"])
        assert got is not None and got["status"] == "pending" and got["worker_id"] is None
        assert await b.runs.heartbeat("w1", [run["run_id"]], lease) == {}
        await b.runs.finish(run["run_id"], status="success")
        assert not await b.runs.request_cancel(run["run_id"], "interrupt")

    async def backdate_store_item(self, b: Any, prefix: str, key: str) -> None:
        """Set the store item's created_at to 2000-01-01 with the backend's own SQL."""
        raise NotImplementedError

    async def test_store_update_keeps_created_at(self, b: Backend) -> None:
        store = b.store  # type: ignore[attr-defined]
        await store.aput(("prefs",), "theme", {"color": "dark"})
        await self.backdate_store_item(b, "prefs", "theme")
        await store.aput(("prefs",), "theme", {"color": "light"})
        item = await store.aget(("prefs",), "theme")
        assert item is not None and item.value == {"color": "light"}
        assert item.created_at.year == 2000  # the first put's, not the update's
        assert item.updated_at.year > 2000
