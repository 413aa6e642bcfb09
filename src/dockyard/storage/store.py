"""LangGraph's SQLite store, with TTL on by default and sqlite-vec for semantic search."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import aiosqlite
from langgraph.store.sqlite.aio import AsyncSqliteStore

from dockyard.errors import ConfigError
from dockyard.settings import Settings


def _connector(path: Path, needs_extensions: bool) -> Any:
    if not needs_extensions:
        return lambda: sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    # Semantic search loads the sqlite-vec extension; many Python builds (this
    # one included) compile sqlite3 without extension loading, so use the
    # self-contained pysqlite3 build for this one connection.
    try:
        from pysqlite3 import dbapi2  # type: ignore[import-not-found]
    except ImportError:
        raise ConfigError(
            "store.index: semantic search on SQLite needs the sqlite-vec extension, and this "
            "Python's sqlite3 cannot load extensions; install pysqlite3-binary "
            '(pip install "pysqlite3-binary") or remove store.index'
        ) from None
    return lambda: dbapi2.connect(str(path), isolation_level=None, check_same_thread=False)


def _index_config(settings: Settings) -> dict[str, Any] | None:
    index = settings.store.index
    if index is None:
        return None
    from dockyard.providers import load_embeddings

    config: dict[str, Any] = {
        "dims": index.dims,
        "embed": load_embeddings(index.embed, base_url=index.base_url),
    }
    if index.fields is not None:
        config["fields"] = index.fields
        # LangGraph's SQLite store reads the undocumented "text_fields" and embeds
        # the whole item without it (langchain-ai/langgraph#8808).
        config["text_fields"] = index.fields
    return config


async def open_sqlite_store(
    settings: Settings, path: Path
) -> tuple[AsyncSqliteStore, aiosqlite.Connection]:
    index = _index_config(settings)
    conn = aiosqlite.Connection(_connector(path, index is not None), iter_chunk_size=64)
    await conn
    for pragma in (
        "PRAGMA journal_mode=WAL",
        "PRAGMA synchronous=NORMAL",
        "PRAGMA busy_timeout=30000",
    ):
        await conn.execute(pragma)
    ttl = settings.store.ttl.model_dump(exclude_none=True)
    store = AsyncSqliteStore(conn, index=index, ttl=ttl)  # type: ignore[arg-type]
    await store.setup()
    if settings.store.ttl.sweep_interval_minutes:
        await store.start_ttl_sweeper()
    return store, conn
