"""Crons through langgraph-sdk's crons client: records, validation, firing, exactly once.

The servers here poll for due crons every 0.1 s. Firing is tested two ways: a schedule with
a seconds field, left to the real scheduler loop, and ``CronScheduler.fire_due`` called on
the server's own event loop with a chosen ``now`` (for yearly schedules nobody can wait for).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import httpx
import pytest
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.errors import NotFoundError, UnprocessableEntityError

from dockyard.runtime.crons import _FIRING_NS, CronScheduler
from dockyard.runtime.service import default_assistant_id
from dockyard.storage.tables import crons
from tests.conftest import LiveServer, eventually

T = TypeVar("T")
FAST = {"crons": {"poll_interval_seconds": 0.1}}
YEARLY = "0 0 1 1 *"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    data_dir = tmp_path_factory.mktemp("dockyard-crons")
    if request.param == "sqlite":
        live = LiveServer(data_dir, **FAST).start()
        yield live
        live.stop()
        return
    from tests.pg import fresh_database_sync

    with fresh_database_sync() as url:
        live = LiveServer(data_dir, database_url=url, **FAST).start()
        yield live
        live.stop()


@pytest.fixture
async def client(server: LiveServer) -> AsyncIterator[LangGraphClient]:
    c = get_client(url=server.url, timeout=30)
    yield c
    await c.aclose()


async def on_server(server: LiveServer, coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on the server's event loop, where its storage lives."""
    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, server.loop))


async def fire_at(server: LiveServer, now: datetime) -> list[dict[str, Any]]:
    # A scheduler like the server's own, on the server's RunService and storage.
    scheduler = CronScheduler(server.app.state.runtime.runs, interval_seconds=3600)
    runs: list[dict[str, Any]] = await on_server(server, scheduler.fire_due(now))
    return runs


def when(value: str) -> datetime:
    return datetime.fromisoformat(value)


def slot_runs(cron: Any, until: datetime) -> set[str]:
    """The run ids of the firings of a once-a-second ``cron`` for its slots up to
    ``until`` (a firing's run id comes from its cron and slot)."""
    first = when(cron["created_at"]).replace(microsecond=0)
    count = int((until - first).total_seconds())
    slots = (first + timedelta(seconds=i) for i in range(1, count + 1))
    return {str(uuid.uuid5(_FIRING_NS, f"{cron['cron_id']}@{s.isoformat()}")) for s in slots}


# -- records --------------------------------------------------------------------------------


async def test_create_search_count_update_delete(client: LangGraphClient) -> None:
    suite = {"suite": str(uuid.uuid4())}
    tid = (await client.threads.create())["thread_id"]
    on_thread: Any = await client.crons.create_for_thread(
        tid,
        "trivial",
        schedule="15 9 * * 1-5",
        timezone=ZoneInfo("Europe/Paris"),
        input={"x": 1},
        metadata=suite,
    )
    assert on_thread["thread_id"] == tid
    assert on_thread["assistant_id"] == default_assistant_id("trivial")
    assert (on_thread["schedule"], on_thread["timezone"]) == ("15 9 * * 1-5", "Europe/Paris")
    assert on_thread["enabled"] is True and on_thread["end_time"] is None
    assert on_thread["metadata"] == suite and on_thread["user_id"] is None
    assert on_thread["payload"]["input"] == {"x": 1}
    paris = when(on_thread["next_run_date"]).astimezone(ZoneInfo("Europe/Paris"))
    assert (paris.hour, paris.minute) == (9, 15) and paris.weekday() < 5

    end = datetime.now(UTC) + timedelta(days=400)
    stateless: Any = await client.crons.create(
        "trivial",
        schedule="*/10 * * * *",
        end_time=end,
        enabled=False,
        on_run_completed="keep",
        metadata={**suite, "kind": "stateless"},
    )
    assert stateless["thread_id"] is None and stateless["enabled"] is False
    assert stateless["on_run_completed"] == "keep"
    assert when(stateless["end_time"]) == end

    def cron_ids(items: list[Any]) -> list[str]:
        return [c["cron_id"] for c in items]

    both = await client.crons.search(metadata=suite, sort_by="created_at", sort_order="asc")
    assert cron_ids(both) == [on_thread["cron_id"], stateless["cron_id"]]
    assert both[0] == on_thread
    assert cron_ids(await client.crons.search(thread_id=tid)) == [on_thread["cron_id"]]
    assert cron_ids(await client.crons.search(enabled=False, metadata=suite)) == [
        stateless["cron_id"]
    ]
    assert len(await client.crons.search(assistant_id="trivial", metadata=suite)) == 2
    first = await client.crons.search(metadata=suite, limit=1, select=["cron_id", "schedule"])
    assert len(first) == 1 and set(first[0]) == {"cron_id", "schedule"}
    assert await client.crons.count(metadata=suite) == 2
    assert await client.crons.count(thread_id=tid) == 1

    updated = await client.crons.update(stateless["cron_id"], enabled=True, schedule=YEARLY)
    assert updated["enabled"] is True and updated["schedule"] == YEARLY
    nxt = when(updated["next_run_date"])
    assert (nxt.month, nxt.day, nxt.hour, nxt.minute) == (1, 1, 0, 0)
    assert updated["end_time"] is not None
    cleared = await client.crons.update(stateless["cron_id"], end_time=None)
    assert cleared["end_time"] is None and cleared["schedule"] == YEARLY
    daily = await client.crons.update(stateless["cron_id"], schedule="@daily")
    nxt = when(daily["next_run_date"])
    assert (nxt.hour, nxt.minute) == (0, 0) and nxt - datetime.now(UTC) <= timedelta(days=1)
    tokyo = await client.crons.update(on_thread["cron_id"], timezone="Asia/Tokyo")
    local = when(tokyo["next_run_date"]).astimezone(ZoneInfo("Asia/Tokyo"))
    assert (local.hour, local.minute) == (9, 15)

    await client.crons.delete(on_thread["cron_id"])
    await client.crons.delete(stateless["cron_id"])
    assert await client.crons.count(metadata=suite) == 0
    with pytest.raises(NotFoundError):
        await client.crons.delete(on_thread["cron_id"])


async def test_info_announces_crons(client: LangGraphClient) -> None:
    info = await client.http.get("/info")
    assert info["flags"]["crons"] is True


# -- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"schedule": "every day at nine"}, "invalid_schedule"),
        ({"schedule": "61 * * * *"}, "invalid_schedule"),
        ({"schedule": "0 0 1 1 * 0 2030"}, "invalid_schedule"),  # croniter's year field
        ({"schedule": YEARLY, "timezone": "Mars/Olympus_Mons"}, "invalid_timezone"),
    ],
)
async def test_bad_schedule_or_timezone_is_422(
    client: LangGraphClient, kwargs: dict[str, Any], code: str
) -> None:
    with pytest.raises(UnprocessableEntityError) as err:
        await client.crons.create("trivial", **kwargs)
    assert err.value.code == code
    what = "schedule" if code == "invalid_schedule" else "timezone"
    assert what in str(err.value.body)


async def test_bad_update_and_missing_targets(client: LangGraphClient, server: LiveServer) -> None:
    cron = await client.crons.create("trivial", schedule=YEARLY)
    try:
        with pytest.raises(UnprocessableEntityError) as err:
            await client.crons.update(cron["cron_id"], schedule="* * *")
        assert err.value.code == "invalid_schedule"
        with pytest.raises(UnprocessableEntityError) as err:
            await client.crons.update(cron["cron_id"], interrupt_before=["no_such_node"])
        assert "no_such_node" in str(err.value.body)
    finally:
        await client.crons.delete(cron["cron_id"])
    with pytest.raises(NotFoundError) as missing:
        await client.crons.update(str(uuid.uuid4()), enabled=False)
    assert missing.value.code == "cron_not_found"
    with pytest.raises(NotFoundError) as missing:
        await client.crons.create_for_thread(str(uuid.uuid4()), "trivial", schedule=YEARLY)
    assert missing.value.code == "thread_not_found"
    with pytest.raises(NotFoundError):
        await client.crons.create("no-such-assistant", schedule=YEARLY)

    async with httpx.AsyncClient(base_url=server.url) as http:
        tid = (await http.post("/threads", json={})).json()["thread_id"]
        body = {"assistant_id": "trivial", "schedule": YEARLY, "on_run_completed": "keep"}
        r = await http.post(f"/threads/{tid}/runs/crons", json=body)
        assert r.status_code == 422 and r.json()["param"] == "on_run_completed"
        # Run fields a cron cannot pass on are refused, not dropped.
        body = {"assistant_id": "trivial", "schedule": YEARLY, "command": {"resume": 1}}
        r = await http.post("/runs/crons", json=body)
        assert r.status_code == 422 and "command" in r.text
        assert await client.crons.count(thread_id=tid) == 0


# -- firing ---------------------------------------------------------------------------------


async def test_cron_fires_on_its_thread_until_disabled(client: LangGraphClient) -> None:
    tid = (await client.threads.create())["thread_id"]
    cron = await client.crons.create_for_thread(
        tid, "trivial", schedule="* * * * * *", input={"x": 7}, metadata={"from": "cron"}
    )
    try:

        async def a_run_succeeded() -> list[Any]:
            runs = await client.runs.list(tid)
            return [r for r in runs if r["status"] == "success"]

        done = (await eventually(a_run_succeeded, timeout=15))[0]
        assert done["metadata"] == {"from": "cron"}
        assert done["assistant_id"] == default_assistant_id("trivial")
        assert (await client.threads.get_state(tid))["values"] == {"x": 7}

        disabled = await client.crons.update(cron["cron_id"], enabled=False)
        off = when(disabled["updated_at"])
        # A firing claimed just before the update may still land after it, but no slot
        # after the update fires. That is something not happening: nothing to wait
        # for but time, so give the scheduler (polling every 0.1 s) over a slot.
        await asyncio.sleep(1.5)
        fired = {r["run_id"] for r in await client.runs.list(tid, limit=100)}
        assert fired and fired <= slot_runs(cron, until=off)
    finally:
        await client.crons.delete(cron["cron_id"])


async def test_stateless_cron_keeps_or_deletes_its_thread(
    client: LangGraphClient, server: LiveServer
) -> None:
    keep = await client.crons.create(
        "trivial", schedule=YEARLY, input={"x": 3}, on_run_completed="keep"
    )
    drop = await client.crons.create("trivial", schedule=YEARLY, input={"x": 4})
    try:
        assert keep["next_run_date"] == drop["next_run_date"]
        due = when(keep["next_run_date"]) + timedelta(seconds=1)
        runs = {r["kwargs"]["input"]["x"]: r for r in await fire_at(server, due)}
        assert set(runs) == {3, 4}
        assert await fire_at(server, due) == []  # each firing happens once

        async def finished(run: dict[str, Any]) -> bool:
            try:
                return (await client.threads.get(run["thread_id"]))["status"] == "idle"
            except NotFoundError:
                return True

        for run in runs.values():
            await eventually(lambda run=run: finished(run))
        kept = await client.threads.get_state(runs[3]["thread_id"])
        assert kept["values"] == {"x": 3}
        with pytest.raises(NotFoundError):
            await client.threads.get(runs[4]["thread_id"])
        after = await client.crons.search(limit=1000)
        nxt = {c["cron_id"]: c["next_run_date"] for c in after}
        assert when(nxt[keep["cron_id"]]).year == due.year + 1
    finally:
        await client.crons.delete(keep["cron_id"])
        await client.crons.delete(drop["cron_id"])


async def test_failed_firing_is_skipped_and_others_still_fire(
    client: LangGraphClient, server: LiveServer
) -> None:
    assistant = await client.assistants.create("trivial")
    orphan = await client.crons.create(assistant["assistant_id"], schedule=YEARLY)
    await client.assistants.delete(assistant["assistant_id"])
    tid = (await client.threads.create())["thread_id"]
    good = await client.crons.create_for_thread(tid, "trivial", schedule=YEARLY, input={"x": 1})
    try:
        due = when(good["next_run_date"]) + timedelta(seconds=1)
        runs = await fire_at(server, due)
        assert [r["thread_id"] for r in runs] == [tid]
        # The orphan's slot is spent, not retried every poll.
        assert await fire_at(server, due) == []
    finally:
        await client.crons.delete(orphan["cron_id"])
        await client.crons.delete(good["cron_id"])


# -- several processes ----------------------------------------------------------------------


@pytest.fixture
def two_servers(tmp_path: Path) -> Iterator[tuple[LiveServer, LiveServer]]:
    """Two dockyard processes' worth of app (own storage handles, own scheduler) on one
    PostgreSQL database."""
    from tests.pg import fresh_database_sync

    with fresh_database_sync() as url:
        a = LiveServer(tmp_path / "a", database_url=url, **FAST).start()
        try:
            b = LiveServer(tmp_path / "b", database_url=url, **FAST).start()
            try:
                yield a, b
            finally:
                b.stop()
        finally:
            a.stop()


async def test_two_schedulers_fire_each_slot_once(
    two_servers: tuple[LiveServer, LiveServer],
) -> None:
    a, b = two_servers
    client = get_client(url=a.url, timeout=30)
    try:
        tid = (await client.threads.create())["thread_id"]
        cron = await client.crons.create_for_thread(tid, "trivial", schedule=YEARLY)
        rounds = 6
        for _ in range(rounds):
            [current] = await client.crons.search(thread_id=tid)
            due = when(current["next_run_date"]) + timedelta(seconds=1)
            fired = await asyncio.gather(fire_at(a, due), fire_at(b, due))
            assert sorted(len(f) for f in fired) == [0, 1]
        assert len(await client.runs.list(tid, limit=100)) == rounds
        await client.crons.delete(cron["cron_id"])

        # The real loops of both processes, polling every 0.1 s, on a cron due every second.
        tid = (await client.threads.create())["thread_id"]
        end = datetime.now(UTC) + timedelta(seconds=2.5)
        cron = await client.crons.create_for_thread(
            tid, "trivial", schedule="* * * * * *", end_time=end
        )
        created = when(cron["created_at"])
        slots = int(end.timestamp()) - int(created.timestamp())

        async def no_slot_left() -> bool:
            # Set after the last slot's run exists: every firing has happened.
            [current] = await client.crons.search(thread_id=tid)
            return current["next_run_date"] is None

        await eventually(no_slot_left, timeout=30)
        fired = len(await client.runs.list(tid, limit=100))
        assert 1 <= fired <= slots, (fired, slots)
    finally:
        await client.aclose()


async def test_a_slot_fired_again_after_a_crash_makes_no_second_run(
    server: LiveServer, client: LangGraphClient
) -> None:
    """A scheduler that died after creating a slot's run but before advancing the cron
    leaves the slot due; firing it again finds the run (same id) and only advances."""
    tid = (await client.threads.create())["thread_id"]
    cron: Any = await client.crons.create_for_thread(tid, "trivial", schedule=YEARLY)
    slot = when(cron["next_run_date"])
    first = await fire_at(server, slot + timedelta(seconds=1))
    assert len(first) == 1
    engine = server.app.state.runtime.storage.engine

    async def back_to_slot() -> None:  # what a crash before the advance leaves behind
        async with engine.begin() as conn:
            await conn.execute(
                crons.update().where(crons.c.cron_id == cron["cron_id"]).values(next_run_date=slot)
            )

    await on_server(server, back_to_slot())
    again = await fire_at(server, slot + timedelta(seconds=2))
    assert again == []
    assert len(await client.runs.list(tid)) == 1
    after = (await client.crons.search(thread_id=tid))[0]
    assert when(after["next_run_date"]) > slot
