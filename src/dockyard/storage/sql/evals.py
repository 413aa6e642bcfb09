"""Evaluation experiments and results in SQL (``EvalStore``), and the past runs a dataset
can be made from."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from dockyard.errors import ConflictError, NotFoundError
from dockyard.storage.base import EvalExperiment, EvalResult, EvalStatus, RunExample
from dockyard.storage.sql._common import SqlStore
from dockyard.storage.tables import eval_experiments, eval_results, runs, threads

_EXPERIMENT = tuple(c.name for c in eval_experiments.c)
_RESULT = tuple(c.name for c in eval_results.c)


def _experiment(row: Any) -> EvalExperiment:
    return {c: row[c] for c in _EXPERIMENT}  # type: ignore[return-value]


def _result(row: Any) -> EvalResult:
    return {c: row[c] for c in _RESULT}  # type: ignore[return-value]


class SqlEvals(SqlStore):
    async def create(self, experiment: EvalExperiment) -> EvalExperiment:
        async with self.engine.begin() as conn:
            try:
                await conn.execute(eval_experiments.insert().values(**experiment))
            except sa.exc.IntegrityError:
                raise ConflictError(
                    f"experiment {experiment['experiment_id']} already exists",
                    code="experiment_exists",
                ) from None
        return experiment

    async def add_results(self, rows: Sequence[EvalResult]) -> None:
        if not rows:
            return
        c = eval_results.c
        async with self.engine.begin() as conn:
            for row in rows:
                await conn.execute(
                    eval_results.delete().where(
                        c.experiment_id == row["experiment_id"],
                        c.variant == row["variant"],
                        c.item_id == row["item_id"],
                    )
                )
            await conn.execute(eval_results.insert(), [dict(r) for r in rows])

    async def finish(
        self,
        experiment_id: str,
        *,
        status: EvalStatus,
        summary: dict[str, Any] | None,
        finished_at: datetime,
    ) -> EvalExperiment:
        async with self.engine.begin() as conn:
            done = await conn.execute(
                eval_experiments.update()
                .where(eval_experiments.c.experiment_id == experiment_id)
                .values(status=status, summary=summary, finished_at=finished_at)
            )
            if done.rowcount == 0:
                raise NotFoundError(f"no experiment {experiment_id}")
        found = await self.get(experiment_id)
        assert found is not None
        return found

    async def get(self, experiment_id: str) -> EvalExperiment | None:
        q = sa.select(eval_experiments).where(eval_experiments.c.experiment_id == experiment_id)
        async with self.engine.connect() as conn:
            row = (await conn.execute(q)).mappings().first()
        return _experiment(row) if row is not None else None

    async def list(
        self, *, assistant: str | None = None, limit: int = 20, offset: int = 0
    ) -> builtins.list[EvalExperiment]:
        c = eval_experiments.c
        q = sa.select(eval_experiments).order_by(c.created_at.desc(), c.experiment_id)
        if assistant is not None:
            q = q.where(c.assistant == assistant)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q.limit(limit).offset(offset))).mappings().all()
        return [_experiment(r) for r in rows]

    async def results(
        self, experiment_id: str, *, variant: str | None = None
    ) -> builtins.list[EvalResult]:
        c = eval_results.c
        q = (
            sa.select(eval_results)
            .where(c.experiment_id == experiment_id)
            .order_by(c.variant, c.position, c.item_id)
        )
        if variant is not None:
            q = q.where(c.variant == variant)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q)).mappings().all()
        return [_result(r) for r in rows]

    async def delete(self, experiment_id: str) -> bool:
        async with self.engine.begin() as conn:
            # Not left to ON DELETE CASCADE: SQLite enforces it only with foreign_keys on.
            await conn.execute(
                eval_results.delete().where(eval_results.c.experiment_id == experiment_id)
            )
            done = await conn.execute(
                eval_experiments.delete().where(eval_experiments.c.experiment_id == experiment_id)
            )
        return bool(done.rowcount)

    async def run_examples(
        self,
        *,
        assistant_ids: Sequence[str] | None = None,
        since: datetime | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> builtins.list[RunExample]:
        r, t = runs.c, threads.c
        later = runs.alias("later")
        q = (
            sa.select(
                r.run_id,
                r.thread_id,
                r.assistant_id,
                r["metadata"],
                r.kwargs,
                r.created_at,
                t["values"],
            )
            .join_from(runs, threads, r.thread_id == t.thread_id)
            .where(r.status == "success")
            .where(
                ~sa.exists().where(
                    later.c.thread_id == r.thread_id, later.c.created_at > r.created_at
                )
            )
            .order_by(r.created_at.desc(), r.run_id)
            .limit(limit)
            .offset(offset)
        )
        if assistant_ids is not None:
            q = q.where(r.assistant_id.in_(list(assistant_ids)))
        if since is not None:
            q = q.where(r.created_at >= since)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q)).mappings().all()
        return [
            RunExample(
                run_id=row["run_id"],
                thread_id=row["thread_id"],
                assistant_id=row["assistant_id"],
                metadata=row["metadata"] or {},
                input=(row["kwargs"] or {}).get("input"),
                output=row["values"],
                created_at=row["created_at"],
            )
            for row in rows
        ]
