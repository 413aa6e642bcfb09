"""SQLAlchemy (async) backend for assistants, threads and runs: SQLite and PostgreSQL."""

from __future__ import annotations

import builtins
import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dockyard.errors import ConflictError, InvalidRequestError, NotFoundError
from dockyard.storage.base import (
    ACTIVE_RUN_STATUSES,
    Assistant,
    IfExists,
    Run,
    RunStatus,
    SortOrder,
    Thread,
    ThreadStatus,
)
from dockyard.storage.inline import InlineConnection, InlineEngine
from dockyard.storage.tables import assistant_versions, assistants, runs, threads

# SQLite runs inline (see storage.inline); PostgreSQL through SQLAlchemy's asyncio engine.
Engine = AsyncEngine | InlineEngine
Conn = AsyncConnection | InlineConnection


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


def _order(
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
_P = sa.bindparam
_ASSISTANT_BY_ID = assistants.select().where(assistants.c.assistant_id == _P("p_id"))
_THREAD_BY_ID = threads.select().where(threads.c.thread_id == _P("p_id"))
_THREAD_BY_ID_LOCKED = _THREAD_BY_ID.with_for_update()
_UPDATE_THREAD = threads.update().where(threads.c.thread_id == _P("p_id"))
_DELETE_THREAD = threads.delete().where(threads.c.thread_id == _P("p_id"))
_MARK_THREAD_BUSY = _UPDATE_THREAD.values(
    status="busy",
    updated_at=_P("p_now"),
    graph_id=sa.func.coalesce(threads.c.graph_id, _P("p_graph_id")),
)
_RUN_BY_ID = runs.select().where(runs.c.run_id == _P("p_id"))
_RUN_BY_ID_ON_THREAD = _RUN_BY_ID.where(runs.c.thread_id == _P("p_thread_id"))
_ACTIVE_RUNS = (
    runs.select()
    .where(runs.c.thread_id == _P("p_id"), runs.c.status.in_(ACTIVE_RUN_STATUSES))
    .order_by(runs.c.created_at)
)
_UPDATE_RUN = runs.update().where(runs.c.run_id == _P("p_id"))
_UPDATE_RUN_IF = _UPDATE_RUN.where(runs.c.status.in_(_P("p_only", expanding=True)))
_CLAIM_RUN = _UPDATE_RUN.where(runs.c.status == "pending").values(
    status="running",
    attempts=runs.c.attempts + 1,
    started_at=_P("p_now"),
    updated_at=_P("p_now"),
)
_DUE_RUNS = (
    runs.select()
    .where(
        runs.c.status == "pending",
        sa.or_(runs.c.not_before.is_(None), runs.c.not_before <= _P("p_now")),
        runs.c.thread_id.not_in(
            sa.select(runs.c.thread_id).where(runs.c.status == "running").scalar_subquery()
        ),
    )
    .order_by(runs.c.created_at)
    .limit(_P("p_limit"))
)
_NEXT_DUE = sa.select(sa.func.min(runs.c.not_before)).where(
    runs.c.status == "pending", runs.c.not_before.is_not(None)
)


class SqlAssistants:
    _SORTABLE = ("assistant_id", "graph_id", "name", "created_at", "updated_at")

    def __init__(self, engine: Engine, cache_seconds: float = 1.0) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        # Every run reads its assistant twice; assistants change rarely. Writes
        # through this object drop the entry at once; another process's write
        # is seen within cache_seconds.
        self._cache: dict[str, tuple[float, Assistant]] = {}
        self._cache_seconds = cache_seconds

    async def create(
        self,
        *,
        assistant_id: str,
        graph_id: str,
        config: dict[str, Any],
        context: dict[str, Any],
        metadata: dict[str, Any],
        name: str,
        description: str | None,
        if_exists: IfExists,
    ) -> Assistant:
        now = utcnow()
        row = {
            "assistant_id": assistant_id,
            "graph_id": graph_id,
            "name": name,
            "description": description,
            "config": config,
            "context": context,
            "metadata": metadata,
            "version": 1,
            "created_at": now,
            "updated_at": now,
        }
        async with self.engine.begin() as conn:
            existing = await self._get(conn, assistant_id)
            if existing is not None:
                if if_exists == "do_nothing":
                    return existing
                raise ConflictError(
                    f"assistant {assistant_id} already exists; pass if_exists='do_nothing' "
                    "to reuse it",
                    code="assistant_exists",
                )
            await conn.execute(assistants.insert().values(**row))
            await conn.execute(
                assistant_versions.insert().values(
                    {k: v for k, v in row.items() if k != "updated_at"}
                )
            )
        return cast(Assistant, row)

    async def _get(self, conn: Conn, assistant_id: str) -> Assistant | None:
        res = await conn.execute(_ASSISTANT_BY_ID, {"p_id": assistant_id})
        r = res.mappings().first()
        return cast(Assistant, dict(r)) if r else None

    async def get(self, assistant_id: str) -> Assistant | None:
        now = time.monotonic()
        hit = self._cache.get(assistant_id)
        if hit is not None and hit[0] > now:
            return cast(Assistant, dict(hit[1]))
        async with self.engine.connect() as conn:
            found = await self._get(conn, assistant_id)
        if found is not None and self._cache_seconds > 0:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[assistant_id] = (now + self._cache_seconds, found)
            return cast(Assistant, dict(found))
        return found

    async def update(
        self,
        assistant_id: str,
        *,
        graph_id: str | None = None,
        config: dict[str, Any] | None = None,
        context: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        name: str | None = None,
        description: str | None = None,
    ) -> Assistant:
        self._cache.pop(assistant_id, None)
        async with self.engine.begin() as conn:
            current = await self._get(conn, assistant_id)
            if current is None:
                raise NotFoundError(
                    f"assistant {assistant_id} not found", code="assistant_not_found"
                )
            res = await conn.execute(
                sa.select(sa.func.max(assistant_versions.c.version)).where(
                    assistant_versions.c.assistant_id == assistant_id
                )
            )
            version = int(res.scalar_one() or 0) + 1
            now = utcnow()
            new = dict(current)
            new.update(
                graph_id=graph_id or current["graph_id"],
                config=config if config is not None else current["config"],
                context=context if context is not None else current["context"],
                # metadata merges, as on LangGraph's server
                metadata={**current["metadata"], **(metadata or {})},
                name=name if name is not None else current["name"],
                description=description if description is not None else current["description"],
                version=version,
                updated_at=now,
            )
            await conn.execute(
                assistants.update()
                .where(assistants.c.assistant_id == assistant_id)
                .values({k: v for k, v in new.items() if k not in ("assistant_id", "created_at")})
            )
            ver = {k: v for k, v in new.items() if k != "updated_at"}
            ver["created_at"] = now
            await conn.execute(assistant_versions.insert().values(ver))
        return cast(Assistant, new)

    async def delete(self, assistant_id: str) -> bool:
        self._cache.pop(assistant_id, None)
        async with self.engine.begin() as conn:
            await conn.execute(
                assistant_versions.delete().where(assistant_versions.c.assistant_id == assistant_id)
            )
            res = await conn.execute(
                assistants.delete().where(assistants.c.assistant_id == assistant_id)
            )
            return bool(res.rowcount)

    def _where(
        self, graph_id: str | None, name: str | None, metadata: dict[str, Any] | None
    ) -> list[Any]:
        conds: list[Any] = []
        if graph_id:
            conds.append(assistants.c.graph_id == graph_id)
        if name:
            conds.append(assistants.c.name.ilike(f"%{name}%"))
        conds.extend(json_match(assistants.c.metadata, metadata or {}, self.dialect))
        return conds

    async def search(
        self,
        *,
        graph_id: str | None = None,
        name: str | None = None,
        metadata: dict[str, Any] | None = None,
        limit: int = 10,
        offset: int = 0,
        sort_by: str | None = None,
        sort_order: SortOrder | None = None,
    ) -> list[Assistant]:
        q = (
            assistants.select()
            .where(*self._where(graph_id, name, metadata))
            .order_by(_order(assistants, sort_by, sort_order, self._SORTABLE))
            .limit(limit)
            .offset(offset)
        )
        async with self.engine.connect() as conn:
            res = await conn.execute(q)
            return [cast(Assistant, dict(r)) for r in res.mappings()]

    async def count(
        self,
        *,
        graph_id: str | None = None,
        name: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> int:
        q = (
            sa.select(sa.func.count())
            .select_from(assistants)
            .where(*self._where(graph_id, name, metadata))
        )
        async with self.engine.connect() as conn:
            return int((await conn.execute(q)).scalar_one())

    async def versions(
        self,
        assistant_id: str,
        *,
        metadata: dict[str, Any] | None = None,
        limit: int = 10,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        q = (
            assistant_versions.select()
            .where(
                assistant_versions.c.assistant_id == assistant_id,
                *json_match(assistant_versions.c.metadata, metadata or {}, self.dialect),
            )
            .order_by(assistant_versions.c.version.desc())
            .limit(limit)
            .offset(offset)
        )
        async with self.engine.connect() as conn:
            return [dict(r) for r in (await conn.execute(q)).mappings()]

    async def set_latest(self, assistant_id: str, version: int) -> Assistant:
        self._cache.pop(assistant_id, None)
        async with self.engine.begin() as conn:
            res = await conn.execute(
                assistant_versions.select().where(
                    assistant_versions.c.assistant_id == assistant_id,
                    assistant_versions.c.version == version,
                )
            )
            ver = res.mappings().first()
            if ver is None:
                raise NotFoundError(
                    f"assistant {assistant_id} has no version {version}", code="version_not_found"
                )
            values = {
                k: ver[k]
                for k in (
                    "graph_id",
                    "name",
                    "description",
                    "config",
                    "context",
                    "metadata",
                    "version",
                )
            }
            await conn.execute(
                assistants.update()
                .where(assistants.c.assistant_id == assistant_id)
                .values(**values, updated_at=utcnow())
            )
            current = await self._get(conn, assistant_id)
        assert current is not None
        return current


class SqlThreads:
    _SORTABLE = ("thread_id", "status", "created_at", "updated_at")

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name

    async def create(
        self,
        *,
        thread_id: str,
        metadata: dict[str, Any],
        if_exists: IfExists,
        ttl: dict[str, Any] | None = None,
        expires_at: datetime | None = None,
        graph_id: str | None = None,
    ) -> Thread:
        async with self.engine.begin() as conn:
            existing = await _get_thread(conn, thread_id)
            if existing is not None:
                if if_exists == "do_nothing":
                    return existing
                raise ConflictError(
                    f"thread {thread_id} already exists; pass if_exists='do_nothing' to reuse it",
                    code="thread_exists",
                )
            row = new_thread_row(
                thread_id, metadata, ttl=ttl, expires_at=expires_at, graph_id=graph_id
            )
            await conn.execute(threads.insert().values(**row))
        return row

    async def get(self, thread_id: str) -> Thread | None:
        async with self.engine.connect() as conn:
            return await _get_thread(conn, thread_id)

    async def update(
        self,
        thread_id: str,
        *,
        metadata: dict[str, Any] | None = None,
        ttl: dict[str, Any] | None = None,
        expires_at: datetime | None = None,
    ) -> Thread:
        async with self.engine.begin() as conn:
            current = await _get_thread(conn, thread_id)
            if current is None:
                raise NotFoundError(f"thread {thread_id} not found", code="thread_not_found")
            values: dict[str, Any] = {"updated_at": utcnow()}
            if metadata is not None:
                values["metadata"] = {**current["metadata"], **metadata}
            if ttl is not None:
                values["ttl"] = ttl
                values["expires_at"] = expires_at
            await conn.execute(
                threads.update().where(threads.c.thread_id == thread_id).values(**values)
            )
            current.update(values)  # type: ignore[typeddict-item]
        return current

    async def set_state(
        self,
        thread_id: str,
        *,
        status: ThreadStatus | None = None,
        values: Any = ...,
        interrupts: dict[str, Any] | None = None,
        graph_id: str | None = None,
    ) -> None:
        upd: dict[str, Any] = {"updated_at": utcnow()}
        if status is not None:
            upd["status"] = status
        if values is not ...:
            upd["values"] = values
        if interrupts is not None:
            upd["interrupts"] = interrupts
        if graph_id is not None:
            upd["graph_id"] = graph_id
        async with self.engine.begin() as conn:
            await conn.execute(_UPDATE_THREAD, {"p_id": thread_id, **upd})

    async def delete(self, thread_id: str) -> bool:
        async with self.engine.begin() as conn:
            # runs.thread_id is ON DELETE CASCADE (SQLite: PRAGMA foreign_keys=ON)
            res = await conn.execute(_DELETE_THREAD, {"p_id": thread_id})
            return bool(res.rowcount)

    def _where(
        self,
        ids: Sequence[str] | None,
        metadata: dict[str, Any] | None,
        values: dict[str, Any] | None,
        status: ThreadStatus | None,
    ) -> list[Any]:
        conds: list[Any] = []
        if ids is not None:
            conds.append(threads.c.thread_id.in_(list(ids)))
        if status:
            conds.append(threads.c.status == status)
        conds.extend(json_match(threads.c.metadata, metadata or {}, self.dialect))
        conds.extend(json_match(threads.c["values"], values or {}, self.dialect))
        return conds

    async def search(
        self,
        *,
        ids: Sequence[str] | None = None,
        metadata: dict[str, Any] | None = None,
        values: dict[str, Any] | None = None,
        status: ThreadStatus | None = None,
        limit: int = 10,
        offset: int = 0,
        sort_by: str | None = None,
        sort_order: SortOrder | None = None,
    ) -> list[Thread]:
        q = (
            threads.select()
            .where(*self._where(ids, metadata, values, status))
            .order_by(_order(threads, sort_by, sort_order, self._SORTABLE))
            .limit(limit)
            .offset(offset)
        )
        async with self.engine.connect() as conn:
            return [cast(Thread, dict(r)) for r in (await conn.execute(q)).mappings()]

    async def count(
        self,
        *,
        ids: Sequence[str] | None = None,
        metadata: dict[str, Any] | None = None,
        values: dict[str, Any] | None = None,
        status: ThreadStatus | None = None,
    ) -> int:
        q = (
            sa.select(sa.func.count())
            .select_from(threads)
            .where(*self._where(ids, metadata, values, status))
        )
        async with self.engine.connect() as conn:
            return int((await conn.execute(q)).scalar_one())

    async def expired(self, now: datetime, limit: int = 100) -> list[str]:
        q = (
            sa.select(threads.c.thread_id)
            .where(threads.c.expires_at.is_not(None), threads.c.expires_at <= now)
            .limit(limit)
        )
        async with self.engine.connect() as conn:
            return list((await conn.execute(q)).scalars())


def new_thread_row(
    thread_id: str,
    metadata: dict[str, Any],
    *,
    ttl: dict[str, Any] | None = None,
    expires_at: datetime | None = None,
    graph_id: str | None = None,
) -> Thread:
    now = utcnow()
    return {
        "thread_id": thread_id,
        "status": "idle",
        "metadata": metadata,
        "values": None,
        "interrupts": {},
        "graph_id": graph_id,
        "ttl": ttl,
        "expires_at": expires_at,
        "created_at": now,
        "updated_at": now,
    }


async def _get_thread(conn: Conn, thread_id: str, lock: bool = False) -> Thread | None:
    q = _THREAD_BY_ID_LOCKED if lock else _THREAD_BY_ID
    r = (await conn.execute(q, {"p_id": thread_id})).mappings().first()
    return cast(Thread, dict(r)) if r else None


class SqlRuns:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name

    async def create(
        self,
        run: Run,
        *,
        reject_if_busy: bool,
        create_thread: Thread | None,
        graph_id: str,
    ) -> tuple[Run, builtins.list[Run]]:
        async with self.engine.begin() as conn:
            # The row lock (PostgreSQL) / the single writer (SQLite) makes the
            # busy check and the insert one step: two concurrent resumes of
            # one interrupt cannot both get in.
            thread = await _get_thread(conn, run["thread_id"], lock=True)
            if thread is None:
                if create_thread is None:
                    raise NotFoundError(
                        f"thread {run['thread_id']} not found; create it first or pass "
                        "if_not_exists='create'",
                        code="thread_not_found",
                    )
                row = {
                    **create_thread,
                    "status": "busy",
                    "graph_id": create_thread["graph_id"] or graph_id,
                    "updated_at": run["created_at"],
                }
                await conn.execute(threads.insert(), row)
                await conn.execute(runs.insert(), run)
                return run, []
            else:
                res = await conn.execute(_ACTIVE_RUNS, {"p_id": run["thread_id"]})
                inflight = [cast(Run, dict(r)) for r in res.mappings()]
                if inflight and reject_if_busy:
                    raise ConflictError(
                        f"thread {run['thread_id']} is busy with run {inflight[0]['run_id']}; "
                        "wait for it, or send multitask_strategy 'interrupt', 'rollback' or "
                        "'enqueue'",
                        code="thread_busy",
                    )
            await conn.execute(runs.insert(), run)
            await conn.execute(
                _MARK_THREAD_BUSY,
                {"p_id": run["thread_id"], "p_now": run["created_at"], "p_graph_id": graph_id},
            )
        return run, inflight

    async def get(self, run_id: str, thread_id: str | None = None) -> Run | None:
        if thread_id is None:
            q, params = _RUN_BY_ID, {"p_id": run_id}
        else:
            q, params = _RUN_BY_ID_ON_THREAD, {"p_id": run_id, "p_thread_id": thread_id}
        async with self.engine.connect() as conn:
            r = (await conn.execute(q, params)).mappings().first()
            return cast(Run, dict(r)) if r else None

    async def list(
        self,
        thread_id: str,
        *,
        limit: int = 10,
        offset: int = 0,
        status: RunStatus | None = None,
    ) -> builtins.list[Run]:
        q = runs.select().where(runs.c.thread_id == thread_id)
        if status:
            q = q.where(runs.c.status == status)
        q = q.order_by(runs.c.created_at.desc()).limit(limit).offset(offset)
        async with self.engine.connect() as conn:
            return [cast(Run, dict(r)) for r in (await conn.execute(q)).mappings()]

    async def active(self, thread_id: str) -> builtins.list[Run]:
        async with self.engine.connect() as conn:
            res = await conn.execute(_ACTIVE_RUNS, {"p_id": thread_id})
            return [cast(Run, dict(r)) for r in res.mappings()]

    async def with_status(
        self, statuses: Sequence[RunStatus], limit: int = 1000
    ) -> builtins.list[Run]:
        q = (
            runs.select()
            .where(runs.c.status.in_(list(statuses)))
            .order_by(runs.c.created_at)
            .limit(limit)
        )
        async with self.engine.connect() as conn:
            return [cast(Run, dict(r)) for r in (await conn.execute(q)).mappings()]

    async def claim(self, limit: int, now: datetime) -> builtins.list[Run]:
        if limit <= 0:
            return []
        q = (
            _DUE_RUNS.with_for_update(skip_locked=True)
            if self.dialect == "postgresql"
            else _DUE_RUNS
        )
        claimed: builtins.list[Run] = []
        async with self.engine.begin() as conn:
            seen: set[str] = set()
            for r in (await conn.execute(q, {"p_now": now, "p_limit": limit * 4})).mappings():
                if r["thread_id"] in seen:
                    continue
                seen.add(r["thread_id"])
                run = cast(Run, dict(r))
                res = await conn.execute(_CLAIM_RUN, {"p_id": run["run_id"], "p_now": now})
                if res.rowcount:
                    run["status"] = "running"
                    run["attempts"] += 1
                    run["started_at"] = run["updated_at"] = now
                    claimed.append(run)
                if len(claimed) >= limit:
                    break
        return claimed

    async def next_due(self) -> datetime | None:
        async with self.engine.connect() as conn:
            value = (await conn.execute(_NEXT_DUE)).scalar_one()
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return cast(datetime | None, value)

    async def finish(
        self,
        run_id: str,
        *,
        status: RunStatus,
        error: dict[str, Any] | None = None,
        cancel_reason: str | None = None,
        only_if: Sequence[RunStatus] | None = None,
    ) -> bool:
        now = utcnow()
        values: dict[str, Any] = {
            "p_id": run_id,
            "status": status,
            "updated_at": now,
            "error": error,
        }
        q = _UPDATE_RUN
        if only_if:
            q = _UPDATE_RUN_IF
            values["p_only"] = list(only_if)
        if status not in ACTIVE_RUN_STATUSES:
            values["ended_at"] = now
        if cancel_reason is not None:
            values["cancel_reason"] = cancel_reason
        async with self.engine.begin() as conn:
            res = await conn.execute(q, values)
            return bool(res.rowcount)

    async def delete(self, run_id: str) -> bool:
        async with self.engine.begin() as conn:
            res = await conn.execute(runs.delete().where(runs.c.run_id == run_id))
            return bool(res.rowcount)

    async def requeue_running(self) -> builtins.list[Run]:
        async with self.engine.begin() as conn:
            res = await conn.execute(runs.select().where(runs.c.status == "running"))
            stale: builtins.list[Run] = [cast(Run, dict(r)) for r in res.mappings()]
            if stale:
                await conn.execute(
                    runs.update()
                    .where(runs.c.status == "running")
                    .values(status="pending", updated_at=utcnow())
                )
        return stale
