"""The CronStore part of the conformance suite (``StorageConformance`` inherits it).

A backend whose processes can share a database names ``twin_factory``: given the backend
under test, it opens a second, independent handle on the same database, as a second
worker process holds. Without one, the concurrency cases race two claims on one handle.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, Protocol
from zoneinfo import ZoneInfo

import pytest

from dockyard.errors import NotFoundError
from dockyard.storage.base import Cron, CronStore, ThreadStore
from dockyard.storage.schedule import next_run


class CronBackend(Protocol):
    threads: ThreadStore
    crons: CronStore


TwinFactory = Callable[[Any, Path], AbstractAsyncContextManager[CronBackend]]

HOURLY = "0 * * * *"
# A fixed moment, so that schedule arithmetic in the assertions is exact.
T0 = datetime(2025, 1, 15, 12, 0, 30, tzinfo=UTC)


def cron_row(**overrides: Any) -> Cron:
    now = datetime.now(UTC)
    row: Cron = {
        "cron_id": str(uuid.uuid4()),
        "assistant_id": "asst",
        "thread_id": None,
        "schedule": HOURLY,
        "timezone": None,
        "payload": {"input": {"x": 1}, "stream_mode": ["values"]},
        "metadata": {},
        "enabled": True,
        "end_time": None,
        "next_run_date": None,
        "on_run_completed": None,
        "user_id": None,
        "created_at": now,
        "updated_at": now,
    }
    row.update(overrides)  # type: ignore[typeddict-item]
    if "next_run_date" not in overrides:
        row["next_run_date"] = next_run(row["schedule"], row["timezone"], now, row["end_time"])
    return row


async def add_cron(b: CronBackend, **overrides: Any) -> Cron:
    return await b.crons.create(cron_row(**overrides))


async def add_thread(b: CronBackend) -> str:
    thread = await b.threads.create(thread_id=str(uuid.uuid4()), metadata={}, if_exists="raise")
    return thread["thread_id"]


def ids(crons: list[Cron]) -> list[str]:
    return [c["cron_id"] for c in crons]


class CronConformance:
    twin_factory: ClassVar[TwinFactory | None] = None

    @pytest.fixture
    async def twin(self, b: Any, tmp_path: Path) -> AsyncIterator[CronBackend]:
        factory = type(self).twin_factory
        if factory is None:
            yield b
            return
        async with factory(b, tmp_path) as other:
            yield other

    # -- records --------------------------------------------------------------------------

    async def test_cron_create_and_get_round_trip(self, b: CronBackend) -> None:
        tid = await add_thread(b)
        end = datetime.now(UTC) + timedelta(days=30)
        created = await add_cron(
            b,
            thread_id=tid,
            schedule="15 9 * * 1-5",
            timezone="Europe/Paris",
            payload={"input": {"q": "ünïcode"}, "config": {"tags": ["a"]}},
            metadata={"owner": "me", "n": [1, 2]},
            end_time=end,
            on_run_completed=None,
        )
        got = await b.crons.get(created["cron_id"])
        assert got == created
        assert got is not None
        assert got["thread_id"] == tid and got["enabled"] is True
        assert got["end_time"] == end and got["end_time"].utcoffset() == timedelta(0)
        nxt = got["next_run_date"]
        assert nxt is not None and nxt.utcoffset() == timedelta(0) and nxt > datetime.now(UTC)
        paris = nxt.astimezone(ZoneInfo("Europe/Paris"))
        assert (paris.hour, paris.minute) == (9, 15) and paris.weekday() < 5
        assert await b.crons.get(str(uuid.uuid4())) is None

    async def test_cron_update(self, b: CronBackend) -> None:
        cron = await add_cron(b, metadata={"a": 1}, on_run_completed="delete")
        up = await b.crons.update(
            cron["cron_id"],
            now=T0,
            metadata={"b": 2},
            payload={"input": {"x": 2}},
            on_run_completed="keep",
        )
        assert up["metadata"] == {"a": 1, "b": 2}
        assert up["payload"] == {"input": {"x": 2}}
        assert up["on_run_completed"] == "keep"
        assert up["updated_at"] == T0
        # Only schedule-shaping changes move next_run_date.
        assert up["next_run_date"] == cron["next_run_date"]
        up = await b.crons.update(cron["cron_id"], now=T0, schedule="*/5 * * * *")
        assert up["next_run_date"] == datetime(2025, 1, 15, 12, 5, tzinfo=UTC)
        up = await b.crons.update(cron["cron_id"], now=T0, timezone="Asia/Kolkata")
        assert up["timezone"] == "Asia/Kolkata"  # +05:30: every 5 minutes still lands on :05
        assert up["next_run_date"] == datetime(2025, 1, 15, 12, 5, tzinfo=UTC)
        up = await b.crons.update(cron["cron_id"], now=T0, end_time=T0 + timedelta(minutes=1))
        assert up["end_time"] == T0 + timedelta(minutes=1)
        assert up["next_run_date"] is None  # no firing left before the end time
        up = await b.crons.update(cron["cron_id"], now=T0, clear_end_time=True)
        assert up["end_time"] is None
        assert up["next_run_date"] == datetime(2025, 1, 15, 12, 5, tzinfo=UTC)
        up = await b.crons.update(cron["cron_id"], now=T0, enabled=False)
        assert up["enabled"] is False
        assert await b.crons.get(cron["cron_id"]) == up
        with pytest.raises(NotFoundError):
            await b.crons.update(str(uuid.uuid4()), now=T0, enabled=True)

    async def test_cron_delete_and_thread_delete(self, b: CronBackend) -> None:
        tid = await add_thread(b)
        on_thread = await add_cron(b, thread_id=tid)
        stateless = await add_cron(b)
        assert await b.crons.delete(stateless["cron_id"])
        assert not await b.crons.delete(stateless["cron_id"])
        assert await b.crons.get(stateless["cron_id"]) is None
        # A thread's crons go with it.
        await b.threads.delete(tid)
        assert await b.crons.get(on_thread["cron_id"]) is None

    async def test_cron_search_and_count(self, b: CronBackend) -> None:
        t1, t2 = await add_thread(b), await add_thread(b)
        base = datetime.now(UTC) + timedelta(hours=1)
        c1 = await add_cron(b, assistant_id="a1", thread_id=t1, next_run_date=base)
        c2 = await add_cron(
            b,
            assistant_id="a1",
            metadata={"team": "x", "tags": ["p", "q"]},
            next_run_date=base + timedelta(minutes=2),
        )
        c3 = await add_cron(
            b,
            assistant_id="a2",
            thread_id=t2,
            enabled=False,
            metadata={"team": "y"},
            next_run_date=base + timedelta(minutes=1),
        )

        async def soonest_first(**kw: Any) -> list[str]:
            return ids(await b.crons.search(sort_by="next_run_date", sort_order="asc", **kw))

        assert await soonest_first() == ids([c1, c3, c2])
        assert await soonest_first(assistant_id="a1") == ids([c1, c2])
        assert await soonest_first(enabled=True) == ids([c1, c2])
        assert ids(await b.crons.search(thread_id=t2)) == ids([c3])
        assert ids(await b.crons.search(enabled=False)) == ids([c3])
        assert ids(await b.crons.search(metadata={"tags": ["q"]})) == ids([c2])
        assert await b.crons.search(metadata={"team": "z"}) == []
        page = await b.crons.search(sort_by="next_run_date", sort_order="desc", limit=2, offset=1)
        assert ids(page) == ids([c3, c1])
        assert await b.crons.count() == 3
        assert await b.crons.count(assistant_id="a1") == 2
        assert await b.crons.count(thread_id=t1) == 1
        assert await b.crons.count(enabled=False) == 1
        assert await b.crons.count(metadata={"team": "y"}) == 1

    # -- firing ---------------------------------------------------------------------------

    async def test_cron_claim_advances_next_run_date(self, b: CronBackend) -> None:
        due = await add_cron(b, next_run_date=T0 - timedelta(minutes=1))
        later = await add_cron(b, next_run_date=T0 + timedelta(minutes=1))
        claimed = await b.crons.claim(T0)
        assert ids(claimed) == [due["cron_id"]]
        assert claimed[0]["next_run_date"] == T0 - timedelta(minutes=1)  # the slot it fired
        got = await b.crons.get(due["cron_id"])
        assert got is not None and got["next_run_date"] == datetime(2025, 1, 15, 13, tzinfo=UTC)
        assert await b.crons.claim(T0) == []  # a firing is taken once
        untouched = await b.crons.get(later["cron_id"])
        assert untouched == later
        # A worker that was down for hours fires a late cron once, not once per missed slot.
        claimed = await b.crons.claim(T0 + timedelta(hours=5))
        assert sorted(ids(claimed)) == sorted([due["cron_id"], later["cron_id"]])
        got = await b.crons.get(due["cron_id"])
        assert got is not None and got["next_run_date"] == datetime(2025, 1, 15, 18, tzinfo=UTC)

    async def test_cron_firing_advances_only_after_its_block(self, b: CronBackend) -> None:
        due = await add_cron(b, next_run_date=T0 - timedelta(minutes=1))
        # The caller dies (an error here) before its runs exist: the slot stays due.
        with pytest.raises(RuntimeError):
            async with b.crons.firing(T0) as taken:
                assert ids(taken) == [due["cron_id"]]
                raise RuntimeError("process died")
        got = await b.crons.get(due["cron_id"])
        assert got is not None and got["next_run_date"] == due["next_run_date"]
        async with b.crons.firing(T0) as taken:
            assert ids(taken) == [due["cron_id"]]
            assert taken[0]["next_run_date"] == due["next_run_date"]  # the same slot
        got = await b.crons.get(due["cron_id"])
        assert got is not None and got["next_run_date"] == datetime(2025, 1, 15, 13, tzinfo=UTC)
        assert await b.crons.claim(T0) == []

    async def test_cron_claim_in_timezone(self, b: CronBackend) -> None:
        cron = await add_cron(
            b, schedule="0 9 * * *", timezone="America/New_York", next_run_date=T0
        )
        await b.crons.claim(T0)
        got = await b.crons.get(cron["cron_id"])
        assert got is not None  # 09:00 EST is 14:00 UTC in January
        assert got["next_run_date"] == datetime(2025, 1, 15, 14, tzinfo=UTC)
        july = datetime(2025, 7, 1, 15, tzinfo=UTC)
        await b.crons.claim(july)
        got = await b.crons.get(cron["cron_id"])
        assert got is not None  # 09:00 EDT is 13:00 UTC in July
        assert got["next_run_date"] == datetime(2025, 7, 2, 13, tzinfo=UTC)

    async def test_cron_claim_respects_end_time(self, b: CronBackend) -> None:
        # Its last slot (before its end) is reached only after the end, by a busy or
        # restarted scheduler: it fires once, late, like any late slot, and is done.
        ended = await add_cron(
            b, next_run_date=T0 - timedelta(minutes=5), end_time=T0 - timedelta(minutes=1)
        )
        last = await add_cron(
            b, next_run_date=T0 - timedelta(minutes=4), end_time=T0 + timedelta(minutes=10)
        )
        assert ids(await b.crons.claim(T0)) == [ended["cron_id"], last["cron_id"]]
        for cron in (ended, last):
            got = await b.crons.get(cron["cron_id"])
            assert got is not None and got["next_run_date"] is None  # 13:00 is past its end
        assert await b.crons.claim(T0 + timedelta(days=1)) == []
        # A slot after the end (an end moved back under it) never fires.
        moved = await add_cron(
            b, next_run_date=T0 - timedelta(minutes=1), end_time=T0 - timedelta(minutes=5)
        )
        assert await b.crons.claim(T0) == []
        assert await b.crons.get(moved["cron_id"]) == moved

    async def test_cron_claim_skips_disabled(self, b: CronBackend) -> None:
        off = await add_cron(b, enabled=False, next_run_date=T0 - timedelta(hours=3))
        assert await b.crons.claim(T0) == []
        # Re-enabled, it fires from now on; the slots it slept through are not made up.
        await b.crons.update(off["cron_id"], now=T0, enabled=True)
        assert await b.crons.claim(T0) == []
        assert ids(await b.crons.claim(T0 + timedelta(hours=1))) == [off["cron_id"]]

    async def test_cron_claim_limit_oldest_first(self, b: CronBackend) -> None:
        made = [await add_cron(b, next_run_date=T0 - timedelta(minutes=m)) for m in (1, 3, 2)]
        first = await b.crons.claim(T0, limit=2)
        assert ids(first) == [made[1]["cron_id"], made[2]["cron_id"]]
        assert ids(await b.crons.claim(T0, limit=2)) == [made[0]["cron_id"]]
        assert await b.crons.claim(T0, limit=0) == []

    async def test_cron_concurrent_claims_fire_each_slot_once(
        self, b: CronBackend, twin: CronBackend
    ) -> None:
        every_minute = [
            await add_cron(b, schedule="* * * * *", next_run_date=T0 - timedelta(seconds=30))
            for _ in range(12)
        ]
        for slot in range(8):
            now = T0 + timedelta(minutes=slot)
            first, second = await asyncio.gather(
                b.crons.claim(now, limit=5), twin.crons.claim(now, limit=5)
            )
            third, fourth = await asyncio.gather(
                twin.crons.claim(now, limit=100), b.crons.claim(now, limit=100)
            )
            fired = ids(first) + ids(second) + ids(third) + ids(fourth)
            assert sorted(fired) == sorted(ids(every_minute)), f"slot {slot}"
