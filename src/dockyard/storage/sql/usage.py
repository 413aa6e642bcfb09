"""The usage ledger in SQL: rows written as runs settle, sums for reports and budgets."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from dockyard.storage.base import UsageGroup, UsageRecord, UsageSummary
from dockyard.storage.sql._common import P, SqlStore
from dockyard.storage.tables import usage_ledger

# Built once with bind parameters, like the other per-run statements (a fifth cheaper
# than a plain insert() on SQLite).
INSERT_LEDGER = usage_ledger.insert().values(
    {c.name: P(f"l_{c.name}", type_=c.type) for c in usage_ledger.c if c.name != "id"}
)


LEDGER_COLUMNS = tuple(c.name for c in usage_ledger.c if c.name != "id")


def ledger_params(rows: Sequence[UsageRecord]) -> list[dict[str, Any]]:
    # Every column bound: a row may leave out the optional ones (variant).
    return [{f"l_{c}": row.get(c) for c in LEDGER_COLUMNS} for row in rows]


def ledger_select(rows: int, source: Any) -> Any:
    """``rows`` ledger rows as one SELECT from ``source`` (each row ``l{i}_<column>``
    parameters, typed: PostgreSQL cannot infer a parameter's type in a select list), for
    an INSERT … SELECT in the same statement as a data-modifying CTE."""
    selects = [
        sa.select(
            *(
                sa.cast(P(f"l{i}_{c}", type_=usage_ledger.c[c].type), usage_ledger.c[c].type).label(
                    c
                )
                for c in LEDGER_COLUMNS
            )
        ).select_from(source)
        for i in range(rows)
    ]
    return selects[0] if rows == 1 else sa.union_all(*selects)


def numbered_ledger_params(rows: Sequence[UsageRecord]) -> dict[str, Any]:
    return {f"l{i}_{c}": row.get(c) for i, row in enumerate(rows) for c in LEDGER_COLUMNS}


_GROUPS: dict[UsageGroup, sa.Column[Any]] = {
    "model": usage_ledger.c.model,
    "assistant": usage_ledger.c.assistant_id,
    "tenant": usage_ledger.c.tenant_id,
    "key": usage_ledger.c.key_id,
    "variant": usage_ledger.c.variant,
}
_TOKENS = ("calls", "input_tokens", "output_tokens", "cached_input_tokens", "cache_write_tokens")
_UNPRICED = sa.case((usage_ledger.c.cost_usd.is_(None), usage_ledger.c.calls), else_=0)


class SqlUsage(SqlStore):
    async def record(self, rows: Sequence[UsageRecord]) -> None:
        if rows:
            async with self.engine.begin() as conn:
                await conn.execute(INSERT_LEDGER, ledger_params(rows))

    async def summary(
        self, *, by: UsageGroup, since: datetime | None = None, tenant_id: str | None = None
    ) -> builtins.list[UsageSummary]:
        group = _GROUPS[by]
        c = usage_ledger.c
        q = (
            sa.select(
                c.day,
                group.label("group"),
                *(sa.func.sum(c[name]).label(name) for name in _TOKENS),
                sa.func.sum(c.cost_usd).label("cost_usd"),
                sa.func.sum(_UNPRICED).label("unpriced_calls"),
            )
            .group_by(c.day, group)
            .order_by(c.day, group)
        )
        if since is not None:
            q = q.where(c.created_at >= since)
        if tenant_id is not None:
            q = q.where(c.tenant_id == tenant_id)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q)).mappings().all()
        # PostgreSQL sums integers as numeric: back to int.
        return [
            UsageSummary(
                day=r["day"],
                group=r["group"],
                calls=int(r["calls"]),
                input_tokens=int(r["input_tokens"]),
                output_tokens=int(r["output_tokens"]),
                cached_input_tokens=int(r["cached_input_tokens"]),
                cache_write_tokens=int(r["cache_write_tokens"]),
                cost_usd=None if r["cost_usd"] is None else float(r["cost_usd"]),
                unpriced_calls=int(r["unpriced_calls"]),
            )
            for r in rows
        ]

    async def spent(
        self,
        since: datetime,
        *,
        tenant_id: str | None = None,
        key_id: str | None = None,
        assistant_id: str | None = None,
    ) -> float:
        c = usage_ledger.c
        q = sa.select(sa.func.coalesce(sa.func.sum(c.cost_usd), 0.0)).where(c.created_at >= since)
        for column, value in (
            (c.tenant_id, tenant_id),
            (c.key_id, key_id),
            (c.assistant_id, assistant_id),
        ):
            if value is not None:
                q = q.where(column == value)
        async with self.engine.connect() as conn:
            return float((await conn.execute(q)).scalar_one())
