"""``RolloutStore`` in SQL (storage/rollouts.py): SQLite and PostgreSQL."""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from dockyard.storage.rollouts import RolloutRecord, RolloutState
from dockyard.storage.sql._common import SqlStore
from dockyard.storage.tables import rollouts


def _record(row: Any) -> RolloutRecord:
    return RolloutRecord(
        name=row["name"],
        assistant=row["assistant"],
        definition=dict(row["definition"] or {}),
        source=row["source"],
        state=row["state"],
        reason=row["reason"],
        changed_by=row["changed_by"],
        details=dict(row["details"] or {}),
        started_at=row["started_at"],
        updated_at=row["updated_at"],
    )


class SqlRollouts(SqlStore):
    def __init__(self, engine: Any) -> None:
        super().__init__(engine)
        self._insert = pg_insert if self.dialect == "postgresql" else sqlite_insert

    async def list(self) -> builtins.list[RolloutRecord]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(sa.select(rollouts).order_by(rollouts.c.name))).mappings()
            return [_record(r) for r in rows]

    async def get(self, name: str) -> RolloutRecord | None:
        async with self.engine.connect() as conn:
            q = sa.select(rollouts).where(rollouts.c.name == name)
            row = (await conn.execute(q)).mappings().first()
        return None if row is None else _record(row)

    async def start(
        self, name: str, assistant: str, definition: dict[str, Any], source: str, now: datetime
    ) -> RolloutRecord:
        values = {
            "name": name,
            "assistant": assistant,
            "definition": definition,
            "source": source,
            "state": "active",
            "reason": None,
            "changed_by": None,
            "details": {},
            "started_at": now,
            "updated_at": now,
        }
        # One statement: processes starting together put the same rollout at once.
        ins = self._insert(rollouts).values(**values)
        stmt = ins.on_conflict_do_update(
            index_elements=["name"],
            set_={k: getattr(ins.excluded, k) for k in values if k != "name"},
        )
        async with self.engine.begin() as conn:
            await conn.execute(stmt)
        return _record(values)

    async def set_state(
        self,
        name: str,
        state: RolloutState,
        *,
        reason: str,
        changed_by: str,
        details: dict[str, Any],
        now: datetime,
    ) -> RolloutRecord | None:
        stmt = (
            rollouts.update()
            .where(rollouts.c.name == name, rollouts.c.state == "active")
            .values(
                state=state, reason=reason, changed_by=changed_by, details=details, updated_at=now
            )
            .returning(*rollouts.c)
        )
        async with self.engine.begin() as conn:
            row = (await conn.execute(stmt)).mappings().first()
        return None if row is None else _record(row)

    async def delete(self, name: str) -> bool:
        async with self.engine.begin() as conn:
            done = await conn.execute(rollouts.delete().where(rollouts.c.name == name))
        return bool(done.rowcount)
