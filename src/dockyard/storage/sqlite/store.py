"""LangGraph's SQLite store, with TTL on by default and sqlite-vec for semantic search."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

import aiosqlite
from langgraph.store.sqlite.aio import AsyncSqliteStore

from dockyard.errors import ConfigError
from dockyard.settings import Settings
from dockyard.storage.common import index_config

_FILTER_KEY = re.compile(r"^[A-Za-z0-9_.-]+$")  # what LangGraph's SQLite store allows
_SQL = {"$eq": "=", "$ne": "!=", "$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}


def _json_types(value: Any) -> tuple[str, ...] | None:
    """SQLite's json_type() names for a filter value's JSON type."""
    if value is None:
        return ("null",)
    if isinstance(value, bool):
        return ("true",) if value else ("false",)
    if isinstance(value, int | float):
        return ("integer", "real")
    if isinstance(value, str):
        return ("text",)
    return None


class TypedFilterSqliteStore(AsyncSqliteStore):
    """LangGraph's SQLite store compares what json_extract() returns, in which true is 1
    and a missing key is null: ``{"flag": true}`` matched 1, ``{"x": null}`` matched items
    without x, ``{"n": {"$gt": -1}}`` matched strings. Here a filter value matches values
    of its own JSON type only, as on PostgreSQL (jsonb; storage.postgres.store). An
    update keeps the item's created_at, as on PostgreSQL."""

    def _get_filter_condition(self, key: str, op: str, value: Any) -> tuple[str, list[Any]]:
        types = _json_types(value)
        scalar = value is None or isinstance(value, bool)
        if op not in _SQL or types is None or (scalar and op not in ("$eq", "$ne")):
            result: tuple[str, list[Any]] = super()._get_filter_condition(key, op, value)
            return result
        if not _FILTER_KEY.match(key):  # it goes into the SQL text
            raise ValueError(f"invalid filter key {key!r}: use letters, digits, _ . -")
        kind = f"json_type(value, '$.{key}')"
        if scalar:
            return f"{kind} {_SQL[op]} '{types[0]}'", []
        of_type = f"{kind} IN ({', '.join(repr(t) for t in types)})"
        if op == "$ne":  # present and of another type, or of this type and another value
            return f"(NOT {of_type} OR json_extract(value, '$.{key}') != ?)", [value]
        return f"({of_type} AND json_extract(value, '$.{key}') {_SQL[op]} ?)", [value]

    def _prepare_batch_PUT_queries(self, put_ops: Any) -> Any:
        # LangGraph writes with INSERT OR REPLACE, which gives an updated item a new
        # created_at; PostgreSQL (and LangGraph's server) keep the first one.
        queries, embedding_request = super()._prepare_batch_PUT_queries(put_ops)
        return [(_keep_created_at(q), params) for q, params in queries], embedding_request


_REPLACE = "INSERT OR REPLACE INTO store ("
_UPSERT = (
    " ON CONFLICT (prefix, key) DO UPDATE SET value = excluded.value,"
    " updated_at = excluded.updated_at, expires_at = excluded.expires_at,"
    " ttl_minutes = excluded.ttl_minutes"
)


def _keep_created_at(query: str) -> str:
    if _REPLACE not in query:
        return query
    return query.replace(_REPLACE, "INSERT INTO store (", 1).rstrip() + _UPSERT


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


async def open_sqlite_store(
    settings: Settings, path: Path
) -> tuple[AsyncSqliteStore, aiosqlite.Connection]:
    index = index_config(settings)
    conn = aiosqlite.Connection(_connector(path, index is not None), iter_chunk_size=64)
    await conn
    for pragma in (
        "PRAGMA journal_mode=WAL",
        "PRAGMA synchronous=NORMAL",
        "PRAGMA busy_timeout=30000",
    ):
        await conn.execute(pragma)
    ttl = settings.store.ttl.model_dump(exclude_none=True)
    store = TypedFilterSqliteStore(conn, index=index, ttl=ttl)  # type: ignore[arg-type]
    await store.setup()
    if settings.store.ttl.sweep_interval_minutes:
        await store.start_ttl_sweeper()
    return store, conn
