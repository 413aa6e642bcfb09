"""The embedded SQLite backend: dockyard's tables, checkpoints and store, each in a
file of ``sqlite_dir``, run inline in the event loop (``storage.inline``).

``open`` is the backend's one entry point; ``storage.database`` calls it.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from dockyard.settings import Settings
from dockyard.storage.common import Storage, migrate
from dockyard.storage.inline import InlineEngine
from dockyard.storage.sql import (
    SqlAssistants,
    SqlCrons,
    SqlEvals,
    SqlKeys,
    SqlPrompts,
    SqlRollouts,
    SqlRuns,
    SqlThreads,
    SqlUsage,
    register_sqlite_functions,
)
from dockyard.storage.sqlite.checkpoints import (
    InlineSqliteSaver,
    SqliteCheckpointAdmin,
    sqlite_connect,
)
from dockyard.storage.sqlite.store import open_sqlite_store
from dockyard.storage.sqlite.wal import WalCheckpointer

__all__ = ["open"]


def _sqlite_engine(path: Path) -> InlineEngine:
    # One connection, used inline by one event loop: transactions never
    # interleave, so SQLite's single writer never sees contention.
    engine = sa.create_engine(
        f"sqlite:///{path}",
        poolclass=sa.pool.StaticPool,
        connect_args={"check_same_thread": False},
    )

    @sa.event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()
        register_sqlite_functions(dbapi_conn)

    return InlineEngine(engine)


@contextlib.asynccontextmanager
async def open(settings: Settings) -> AsyncIterator[Storage]:
    data_dir = settings.sqlite_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    engine = _sqlite_engine(data_dir / "dockyard.db")
    await migrate(engine)
    cp_conn = sqlite_connect(str(data_dir / "checkpoints.db"))
    wal = WalCheckpointer([data_dir / "dockyard.db", data_dir / "checkpoints.db"])
    wal.start()
    try:
        store, store_conn = await open_sqlite_store(settings, data_dir / "store.db")
    except BaseException:
        wal.stop()
        cp_conn.close()
        await engine.dispose()
        raise
    try:
        checkpointer = InlineSqliteSaver(cp_conn)
        checkpointer.setup()
        storage = Storage(
            engine=engine,
            assistants=SqlAssistants(engine),
            threads=SqlThreads(engine),
            runs=SqlRuns(engine),
            crons=SqlCrons(engine),
            checkpointer=checkpointer,
            checkpoint_admin=SqliteCheckpointAdmin(cp_conn),
            store=store,
            backend="sqlite",
            usage=SqlUsage(engine),
            keys=SqlKeys(engine),
            prompts=SqlPrompts(engine),
            evals=SqlEvals(engine),
            rollouts=SqlRollouts(engine),
        )
        yield storage
    finally:
        with contextlib.suppress(Exception):
            await store.stop_ttl_sweeper()
        await store_conn.close()
        wal.stop()
        cp_conn.close()
        await engine.dispose()
