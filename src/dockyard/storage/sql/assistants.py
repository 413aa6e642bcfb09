"""Assistants and their versions in SQL."""

from __future__ import annotations

import time
from typing import Any, cast

import sqlalchemy as sa

from dockyard.errors import ConflictError, NotFoundError
from dockyard.storage.base import (
    Assistant,
    IfExists,
    SortOrder,
)
from dockyard.storage.sql._common import (
    Conn,
    Direct,
    Engine,
    P,
    SqlStore,
    json_match,
    order_clause,
    utcnow,
)
from dockyard.storage.tables import assistant_versions, assistants

_ASSISTANT_BY_ID = assistants.select().where(assistants.c.assistant_id == P("p_id"))


class SqlAssistants(SqlStore):
    _SORTABLE = ("assistant_id", "graph_id", "name", "created_at", "updated_at")

    def __init__(
        self, engine: Engine, cache_seconds: float = 1.0, direct: Direct | None = None
    ) -> None:
        super().__init__(engine, direct)
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
        try:
            async with self.engine.begin() as conn:
                existing = await self._get(conn, assistant_id)
                if existing is None:
                    await conn.execute(assistants.insert().values(**row))
                    await conn.execute(
                        assistant_versions.insert().values(
                            {k: v for k, v in row.items() if k != "updated_at"}
                        )
                    )
                    return cast(Assistant, row)
        except sa.exc.IntegrityError:
            # Created by someone else between our check and our insert (processes
            # starting together all create the graphs' default assistants).
            async with self.engine.connect() as conn:
                existing = await self._get(conn, assistant_id)
            if existing is None:
                raise
        if if_exists == "do_nothing":
            return existing
        raise ConflictError(
            f"assistant {assistant_id} already exists; pass if_exists='do_nothing' to reuse it",
            code="assistant_exists",
        )

    async def _get(self, conn: Conn, assistant_id: str) -> Assistant | None:
        res = await conn.execute(_ASSISTANT_BY_ID, {"p_id": assistant_id})
        r = res.mappings().first()
        return cast(Assistant, dict(r)) if r else None

    async def get(self, assistant_id: str) -> Assistant | None:
        now = time.monotonic()
        hit = self._cache.get(assistant_id)
        if hit is not None and hit[0] > now:
            return cast(Assistant, dict(hit[1]))
        rows = await self._rows(_ASSISTANT_BY_ID, {"p_id": assistant_id})
        found = cast(Assistant, rows[0]) if rows else None
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
            .order_by(order_clause(assistants, sort_by, sort_order, self._SORTABLE))
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
