"""The ledger writer: usage rows of gateway calls written in batches, off the request path,
none lost at stop or while the database is away."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, date, datetime

from dockyard.runtime.ledger_writer import LedgerWriter
from dockyard.storage.base import UsageRecord


def row(run_id: str) -> UsageRecord:
    now = datetime.now(UTC)
    return UsageRecord(
        run_id=run_id,
        assistant_id="gateway:default",
        tenant_id=None,
        key_id=None,
        model="gpt-4o-mini",
        day=date.today(),
        created_at=now,
        calls=1,
        input_tokens=10,
        output_tokens=2,
        cached_input_tokens=0,
        cache_write_tokens=0,
        cost_usd=0.0,
    )


class Store:
    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.down = False

    async def record(self, rows: Sequence[UsageRecord]) -> None:
        if self.down:
            raise OSError("database is away")
        self.batches.append([r["run_id"] for r in rows])


async def test_rows_are_written_in_one_batch_after_the_delay() -> None:
    store = Store()
    writer = LedgerWriter(store, delay_seconds=0.05)  # type: ignore[arg-type]
    await writer.start()
    try:
        writer.add([row("a")])
        writer.add([row("b"), row("c")])
        writer.add([])
        assert store.batches == []  # nothing waits on the database
        await asyncio.sleep(0.2)
        assert store.batches == [["a", "b", "c"]]
        writer.add([row("d")])
        await asyncio.sleep(0.2)
        assert store.batches == [["a", "b", "c"], ["d"]]
    finally:
        await writer.stop()


async def test_stop_writes_what_is_queued() -> None:
    store = Store()
    writer = LedgerWriter(store, delay_seconds=60)  # type: ignore[arg-type]
    await writer.start()
    writer.add([row("a")])
    await writer.stop()
    assert store.batches == [["a"]]


async def test_rows_wait_while_the_database_is_away_up_to_a_bound() -> None:
    store = Store()
    writer = LedgerWriter(store, delay_seconds=0.01, max_pending=3)  # type: ignore[arg-type]
    await writer.start()
    store.down = True
    writer.add([row("a"), row("b")])
    await asyncio.sleep(0.1)
    assert writer.pending == 2
    writer.add([row("c"), row("d")])  # over the bound: the oldest goes
    assert writer.pending == 3
    store.down = False
    await writer.stop()
    assert store.batches == [["b", "c", "d"]]
