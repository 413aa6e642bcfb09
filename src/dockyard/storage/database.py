"""Open every storage concern for a Settings: own tables, checkpoints, store."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.store.base import BaseStore
from sqlalchemy.ext.asyncio import AsyncEngine

from dockyard.errors import ConfigError
from dockyard.settings import Settings
from dockyard.storage.base import AssistantStore, CronStore, RunStore, ThreadStore
from dockyard.storage.checkpoints import CheckpointAdmin, SqliteCheckpointAdmin
from dockyard.storage.inline import InlineEngine, InlineSqliteSaver, sqlite_connect
from dockyard.storage.sql import (
    SqlAssistants,
    SqlCrons,
    SqlRuns,
    SqlThreads,
    register_sqlite_functions,
)
from dockyard.storage.sqlite_wal import WalCheckpointer
from dockyard.storage.store import open_sqlite_store

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


@dataclass
class Storage:
    engine: AsyncEngine | InlineEngine
    assistants: AssistantStore
    threads: ThreadStore
    runs: RunStore
    crons: CronStore
    checkpointer: BaseCheckpointSaver[Any]
    checkpoint_admin: CheckpointAdmin
    store: BaseStore
    backend: str

    async def ping(self, timeout: float = 3.0) -> dict[str, str]:  # noqa: ASYNC109
        """Problems per component; empty when everything answers within ``timeout``."""
        problems: dict[str, str] = {}

        async def select_one() -> None:
            async with self.engine.connect() as conn:
                await conn.execute(sa.text("SELECT 1"))

        for name, check in (
            ("database", select_one),
            ("checkpoints", self.checkpoint_admin.ping),
        ):
            try:
                async with asyncio.timeout(timeout):
                    await check()
            except TimeoutError:
                problems[name] = f"no answer within {timeout:g}s"
            except Exception as e:  # any driver error means "not ready"
                problems[name] = f"{type(e).__name__}: {e}"
        return problems


def _upgrade(sync_conn: sa.Connection) -> None:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = sync_conn
    command.upgrade(cfg, "head")


async def migrate(engine: AsyncEngine | InlineEngine) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade)


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
async def open_storage(settings: Settings) -> AsyncIterator[Storage]:
    url = settings.database_url
    if url and url.split("://", 1)[0].split("+", 1)[0] in ("postgresql", "postgres"):
        from dockyard.storage.postgres import open_postgres

        async with open_postgres(settings) as storage:
            yield storage
        return
    if url:
        raise ConfigError(
            f"database_url = {url!r}: expected postgresql://user@host:port/db "
            "(leave DOCKYARD_DATABASE_URL unset for the embedded SQLite default)"
        )
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
        )
        yield storage
    finally:
        with contextlib.suppress(Exception):
            await store.stop_ttl_sweeper()
        await store_conn.close()
        wal.stop()
        cp_conn.close()
        await engine.dispose()
