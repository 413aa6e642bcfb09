"""What the SQL stores share: engine types, JSON matching, ordering, bind parameters."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dockyard.errors import InvalidRequestError
from dockyard.storage.base import (
    SortOrder,
)
from dockyard.storage.inline import InlineConnection, InlineEngine

# SQLite runs inline (see storage.inline); PostgreSQL through SQLAlchemy's asyncio engine.
Engine = AsyncEngine | InlineEngine
Conn = AsyncConnection | InlineConnection


@contextlib.asynccontextmanager
async def one_statement(engine: Engine) -> AsyncIterator[Conn]:
    """A connection for one write statement: autocommit on PostgreSQL, which saves the
    BEGIN and COMMIT round trips of a transaction (SQLite runs inline: no trip to save)."""
    if isinstance(engine, InlineEngine):
        async with engine.begin() as conn:
            yield conn
        return
    async with engine.connect() as conn:
        yield await conn.execution_options(isolation_level="AUTOCOMMIT")


class Direct(Protocol):
    """A faster path for single statements, given by the backend that has one
    (``storage.postgres.direct``); a protocol so these shared stores never import it."""

    async def fetch(
        self, stmt: Any, params: dict[str, Any], columns: tuple[str, ...] | None = None
    ) -> list[dict[str, Any]]: ...

    async def execute(
        self, stmt: Any, params: dict[str, Any], columns: tuple[str, ...] | None = None
    ) -> int: ...


class SqlStore:
    """An SQL store's engine and, on PostgreSQL, the direct path (``Direct``) that its
    per-run single statements take."""

    def __init__(self, engine: Engine, direct: Direct | None = None) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self.direct = direct

    async def _rows(
        self,
        stmt: Any,
        params: dict[str, Any],
        *,
        columns: tuple[str, ...] | None = None,
        write: bool = False,
    ) -> list[dict[str, Any]]:
        """One statement's rows; ``write``: it changes rows (an UPDATE … RETURNING)."""
        if self.direct is not None:
            return await self.direct.fetch(stmt, params, columns)
        ctx = one_statement(self.engine) if write else self.engine.connect()
        async with ctx as conn:
            return [dict(r) for r in (await conn.execute(stmt, params)).mappings()]

    async def _write(
        self, stmt: Any, params: dict[str, Any], *, columns: tuple[str, ...] | None = None
    ) -> int:
        """One statement that changes rows; how many it changed."""
        if self.direct is not None:
            return await self.direct.execute(stmt, params, columns)
        async with one_statement(self.engine) as conn:
            return int((await conn.execute(stmt, params)).rowcount)


def utcnow() -> datetime:
    return datetime.now(UTC)


def json_contains(doc: Any, wanted: Any) -> bool:
    """PostgreSQL's ``jsonb @>`` on decoded JSON: objects match a subset of keys,
    arrays match when every wanted element is in some element, scalars by value
    and type (``true`` is not ``1``)."""
    if isinstance(wanted, dict):
        return isinstance(doc, dict) and all(
            k in doc and json_contains(doc[k], v) for k, v in wanted.items()
        )
    if isinstance(wanted, list):
        return isinstance(doc, list) and all(any(json_contains(d, w) for d in doc) for w in wanted)
    if isinstance(wanted, bool) or isinstance(doc, bool):
        return type(doc) is type(wanted) and doc == wanted
    if isinstance(wanted, int | float):
        return isinstance(doc, int | float) and doc == wanted
    return type(doc) is type(wanted) and doc == wanted


def _sqlite_json_contains(doc: str | None, wanted: str) -> int:
    return int(doc is not None and json_contains(json.loads(doc), json.loads(wanted)))


def register_sqlite_functions(dbapi_conn: Any) -> None:
    """Install the SQL functions this module's queries use; call on every new SQLite connection."""
    dbapi_conn.create_function(
        "dockyard_json_contains", 2, _sqlite_json_contains, deterministic=True
    )


def json_match(col: sa.ColumnElement[Any], wanted: dict[str, Any], dialect: str) -> list[Any]:
    """Conditions for ``col`` (a JSON object) containing ``wanted``, as ``jsonb @>`` does."""
    if not wanted:
        return []
    if dialect == "postgresql":
        return [col.op("@>")(sa.cast(sa.literal(json.dumps(wanted)), JSONB))]
    # SQLite's JSON paths cannot name every key (quotes, dots) and compare
    # nested objects as text; a small Python function gives @>'s meaning.
    return [sa.func.dockyard_json_contains(col, json.dumps(wanted)) == 1]


def order_clause(
    table: sa.Table, sort_by: str | None, sort_order: SortOrder | None, allowed: Sequence[str]
) -> Any:
    key = sort_by or "created_at"
    if key not in allowed:
        raise InvalidRequestError(
            f"sort_by={key!r} is not supported; use one of {', '.join(allowed)}", param="sort_by"
        )
    col = table.c[key]
    return col.asc() if sort_order == "asc" else col.desc()


# Hot-path statements are built once with bind parameters: building a new
# statement per call (``.where(col == value).values(**row)``) costs more CPU
# than executing it on SQLite.
P = sa.bindparam
