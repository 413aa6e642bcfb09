"""Runs in SQL: creation with the busy check, claiming, finishing."""

from __future__ import annotations

import builtins
import functools
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import distinct_on

from dockyard.errors import ConflictError, NotFoundError
from dockyard.storage.base import (
    ACTIVE_RUN_STATUSES,
    Run,
    RunStatus,
    Thread,
    UsageRecord,
)
from dockyard.storage.sql._common import P, SqlStore, json_match, one_statement, utcnow
from dockyard.storage.sql.threads import MARK_THREAD_BUSY, get_thread_row
from dockyard.storage.sql.usage import (
    INSERT_LEDGER,
    LEDGER_COLUMNS,
    ledger_params,
    ledger_select,
    numbered_ledger_params,
)
from dockyard.storage.tables import runs, threads, usage_ledger


def _status_in(statuses: Sequence[str]) -> Any:
    # OR of equalities, not IN: SQLAlchemy renders IN with an expanding parameter,
    # which the direct PostgreSQL path (storage.postgres.direct) does not take.
    return sa.or_(*(runs.c.status == s for s in statuses))


_RUN_BY_ID = runs.select().where(runs.c.run_id == P("p_id"))
_RUN_BY_ID_ON_THREAD = _RUN_BY_ID.where(runs.c.thread_id == P("p_thread_id"))
_ACTIVE_RUNS = (
    runs.select()
    .where(runs.c.thread_id == P("p_id"), _status_in(ACTIVE_RUN_STATUSES))
    .order_by(runs.c.created_at)
)
_UPDATE_RUN = runs.update().where(runs.c.run_id == P("p_id"))


@functools.cache
def _finish_stmt(only_if: tuple[str, ...], fenced: bool) -> Any:
    q = _UPDATE_RUN
    if only_if:
        q = q.where(_status_in(only_if))
    if fenced:
        # A worker whose lease was taken over must not settle the run.
        q = q.where(runs.c.worker_id == P("p_worker"))
    return q


@functools.cache
def _finish_with_ledger_pg(
    only_if: tuple[str, ...], fenced: bool, columns: tuple[str, ...], rows: int
) -> Any:
    """PostgreSQL: the finish and the ledger rows in one autocommit statement (an UPDATE
    in a data-modifying CTE, the rows selected from it: none when it updated nothing).
    A transaction on the engine cost 1.2-1.8 ms more CPU per run than the finish alone."""
    update = _finish_stmt(only_if, fenced).values(
        {c: P(f"s_{c}", type_=runs.c[c].type) for c in columns}
    )
    finished = update.returning(runs.c.run_id).cte("finished")
    source = ledger_select(rows, finished)
    return usage_ledger.insert().from_select(LEDGER_COLUMNS, source).add_cte(finished)


# What a claim sets, on SQLite (one run at a time) and PostgreSQL (_CLAIM_DUE_PG).
_CLAIMED = {
    "status": "running",
    "attempts": runs.c.attempts + 1,
    "started_at": P("p_now"),
    "updated_at": P("p_now"),
    "worker_id": P("p_worker"),
    "lease_expires_at": P("p_lease"),
}
_CLAIM_RUN = _UPDATE_RUN.where(runs.c.status == "pending").values(_CLAIMED)
_HEARTBEAT = (
    runs.update()
    .where(
        runs.c.run_id.in_(P("p_ids", expanding=True)),
        runs.c.worker_id == P("p_worker"),
        runs.c.status == "running",
    )
    .values(lease_expires_at=P("p_lease"))
    .returning(runs.c.run_id, runs.c.cancel_requested)
)
_REQUEUE_EXPIRED = (
    runs.update()
    .where(runs.c.status == "running", runs.c.lease_expires_at < P("p_now"))
    .values(status="pending", worker_id=None, lease_expires_at=None, updated_at=P("p_now"))
    .returning(runs.c.run_id)
)
_RELEASE = (
    runs.update()
    .where(
        runs.c.run_id == P("p_id"),
        runs.c.worker_id == P("p_worker"),
        runs.c.status == "running",
    )
    .values(status="pending", worker_id=None, lease_expires_at=None, updated_at=P("p_now"))
)
_RELEASE_WITH_USAGE = _RELEASE.values(usage=P("p_usage", type_=runs.c.usage.type))
_REQUEST_CANCEL = (
    runs.update()
    .where(runs.c.run_id == P("p_id"), _status_in(ACTIVE_RUN_STATUSES))
    .values(cancel_requested=P("p_action"))
)
_DUE_RUNS = (
    runs.select()
    .where(
        runs.c.status == "pending",
        sa.or_(runs.c.not_before.is_(None), runs.c.not_before <= P("p_now")),
        runs.c.thread_id.not_in(
            sa.select(runs.c.thread_id).where(runs.c.status == "running").scalar_subquery()
        ),
    )
    .order_by(runs.c.created_at)
    .limit(P("p_limit"))
)
# PostgreSQL claims in one autocommit statement: lock up to p_scan due runs (skipping
# those another worker holds), keep the oldest per thread, take up to p_limit of them.
# A transaction of SELECT … FOR UPDATE + one UPDATE per run cost four round trips or more.
_CLAIM_CANDIDATES = (
    _DUE_RUNS.with_only_columns(runs.c.run_id, runs.c.thread_id, runs.c.created_at)
    .limit(P("p_scan"))
    .with_for_update(skip_locked=True)
    .cte("claim_candidates")
)
_FIRST_PER_THREAD = (
    sa.select(_CLAIM_CANDIDATES.c.run_id, _CLAIM_CANDIDATES.c.created_at)
    .ext(distinct_on(_CLAIM_CANDIDATES.c.thread_id))
    .order_by(_CLAIM_CANDIDATES.c.thread_id, _CLAIM_CANDIDATES.c.created_at)
    .cte("claim_first_per_thread")
)
_CLAIM_DUE_PG = (
    runs.update()
    .where(
        runs.c.run_id.in_(
            sa.select(_FIRST_PER_THREAD.c.run_id)
            .order_by(_FIRST_PER_THREAD.c.created_at)
            .limit(P("p_limit"))
        ),
        runs.c.status == "pending",
    )
    .values(_CLAIMED)
    .returning(*runs.c)
)
_NEXT_DUE = sa.select(sa.func.min(runs.c.not_before)).where(
    runs.c.status == "pending", runs.c.not_before.is_not(None)
)


def _new_thread_row(create_thread: Thread, run: Run, graph_id: str) -> dict[str, Any]:
    return {
        **create_thread,
        "status": "busy",
        "graph_id": create_thread["graph_id"] or graph_id,
        "updated_at": run["created_at"],
    }


@functools.cache
def _insert_thread_and_run(thread_keys: tuple[str, ...], run_keys: tuple[str, ...]) -> Any:
    # A data-modifying CTE runs whether or not the statement reads it; the run's
    # foreign key is checked at the end of the statement, after the thread is in.
    new_thread = (
        threads.insert()
        .values({k: P(f"t_{k}", type_=threads.c[k].type) for k in thread_keys})
        .cte("new_thread")
    )
    return (
        runs.insert()
        .values({k: P(f"r_{k}", type_=runs.c[k].type) for k in run_keys})
        .add_cte(new_thread)
    )


class SqlRuns(SqlStore):
    async def create(
        self,
        run: Run,
        *,
        reject_if_busy: bool,
        create_thread: Thread | None,
        graph_id: str,
    ) -> tuple[Run, builtins.list[Run]]:
        try:
            if create_thread is not None and run["temporary"]:
                return await self._create_stateless(run, create_thread, graph_id)
            return await self._create(run, reject_if_busy, create_thread, graph_id)
        except sa.exc.IntegrityError as e:
            if await self.get(run["run_id"]) is None:
                raise
            raise ConflictError(f"run {run['run_id']} already exists", code="run_exists") from e

    async def _create(
        self,
        run: Run,
        reject_if_busy: bool,
        create_thread: Thread | None,
        graph_id: str,
    ) -> tuple[Run, builtins.list[Run]]:
        async with self.engine.begin() as conn:
            # The row lock (PostgreSQL) / the single writer (SQLite) makes the
            # busy check and the insert one step: two concurrent resumes of
            # one interrupt cannot both get in.
            thread = await get_thread_row(conn, run["thread_id"], lock=True)
            if thread is None:
                if create_thread is None:
                    raise NotFoundError(
                        f"thread {run['thread_id']} not found; create it first or pass "
                        "if_not_exists='create'",
                        code="thread_not_found",
                    )
                await conn.execute(threads.insert(), _new_thread_row(create_thread, run, graph_id))
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
                MARK_THREAD_BUSY,
                {"p_id": run["thread_id"], "p_now": run["created_at"], "p_graph_id": graph_id},
            )
        return run, inflight

    async def _create_stateless(
        self, run: Run, create_thread: Thread, graph_id: str
    ) -> tuple[Run, builtins.list[Run]]:
        """A stateless run's thread is new and nobody else's: no lock or busy check. On
        PostgreSQL thread and run go in with one autocommit statement (a transaction took
        five round trips). A thread id that exists after all fails as a conflict."""
        row = _new_thread_row(create_thread, run, graph_id)
        if self.dialect != "postgresql":  # SQLite: no data-modifying CTEs
            async with self.engine.begin() as conn:
                await conn.execute(threads.insert(), row)
                await conn.execute(runs.insert(), run)
            return run, []
        q = _insert_thread_and_run(tuple(row), tuple(run))
        params = {f"t_{k}": v for k, v in row.items()} | {f"r_{k}": v for k, v in run.items()}
        await self._write(q, params)
        return run, []

    async def get(self, run_id: str, thread_id: str | None = None) -> Run | None:
        if thread_id is None:
            q, params = _RUN_BY_ID, {"p_id": run_id}
        else:
            q, params = _RUN_BY_ID_ON_THREAD, {"p_id": run_id, "p_thread_id": thread_id}
        rows = await self._rows(q, params)
        return cast(Run, rows[0]) if rows else None

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
        return cast(builtins.list[Run], await self._rows(_ACTIVE_RUNS, {"p_id": thread_id}))

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

    async def claim(
        self,
        limit: int,
        now: datetime,
        *,
        worker_id: str | None = None,
        lease_until: datetime | None = None,
    ) -> builtins.list[Run]:
        if limit <= 0:
            return []
        if self.dialect == "postgresql":
            params = {
                "p_now": now,
                "p_scan": limit * 4,
                "p_limit": limit,
                "p_worker": worker_id,
                "p_lease": lease_until,
            }
            rows = await self._rows(_CLAIM_DUE_PG, params, write=True)
            return sorted(cast(builtins.list[Run], rows), key=lambda r: r["created_at"])
        claimed: builtins.list[Run] = []
        async with self.engine.begin() as conn:
            seen: set[str] = set()
            for r in (
                await conn.execute(_DUE_RUNS, {"p_now": now, "p_limit": limit * 4})
            ).mappings():
                if r["thread_id"] in seen:
                    continue
                seen.add(r["thread_id"])
                run = cast(Run, dict(r))
                res = await conn.execute(
                    _CLAIM_RUN,
                    {
                        "p_id": run["run_id"],
                        "p_now": now,
                        "p_worker": worker_id,
                        "p_lease": lease_until,
                    },
                )
                if res.rowcount:
                    run["status"] = "running"
                    run["attempts"] += 1
                    run["started_at"] = run["updated_at"] = now
                    run["worker_id"], run["lease_expires_at"] = worker_id, lease_until
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
        worker_id: str | None = None,
        usage: dict[str, Any] | None = None,
        ledger: Sequence[UsageRecord] = (),
    ) -> bool:
        now = utcnow()
        values: dict[str, Any] = {
            "p_id": run_id,
            "status": status,
            "updated_at": now,
            "error": error,
        }
        q = _finish_stmt(tuple(only_if or ()), worker_id is not None)
        if worker_id is not None:
            values["p_worker"] = worker_id
        if status not in ACTIVE_RUN_STATUSES:
            values["ended_at"] = now
            values["worker_id"] = None
            values["lease_expires_at"] = None
        if cancel_reason is not None:
            values["cancel_reason"] = cancel_reason
        if usage is not None:
            values["usage"] = usage
        columns = tuple(k for k in values if not k.startswith("p_"))
        if ledger and self.dialect == "postgresql":
            stmt = _finish_with_ledger_pg(
                tuple(only_if or ()), worker_id is not None, columns, len(ledger)
            )
            params = {k if k.startswith("p_") else f"s_{k}": v for k, v in values.items()}
            return bool(await self._write(stmt, params | numbered_ledger_params(ledger)))
        if ledger:
            return await self._with_ledger(q, values, ledger)
        return bool(await self._write(q, values, columns=columns))

    async def _with_ledger(
        self, stmt: Any, params: dict[str, Any], ledger: Sequence[UsageRecord]
    ) -> bool:
        """``stmt`` (an update of the run) and, if it updated the run, its ledger rows, in
        one transaction: the outcome and the spend are stored together or not at all.
        Only runs that called a model come here, so the fast single-statement path of
        every other run stays as it is."""
        async with self.engine.begin() as conn:
            if not (await conn.execute(stmt, params)).rowcount:
                return False
            await conn.execute(INSERT_LEDGER, ledger_params(ledger))
        return True

    async def delete(self, run_id: str, *, only_if: Sequence[RunStatus] | None = None) -> bool:
        q = runs.delete().where(runs.c.run_id == run_id)
        if only_if:
            q = q.where(runs.c.status.in_(list(only_if)))
        async with self.engine.begin() as conn:
            res = await conn.execute(q)
            return bool(res.rowcount)

    async def requeue_running(self) -> builtins.list[Run]:
        async with self.engine.begin() as conn:
            res = await conn.execute(runs.select().where(runs.c.status == "running"))
            stale: builtins.list[Run] = [cast(Run, dict(r)) for r in res.mappings()]
            if stale:
                await conn.execute(
                    runs.update()
                    .where(runs.c.status == "running")
                    .values(
                        status="pending",
                        worker_id=None,
                        lease_expires_at=None,
                        updated_at=utcnow(),
                    )
                )
        return stale

    async def heartbeat(
        self, worker_id: str, run_ids: Sequence[str], lease_until: datetime
    ) -> dict[str, str | None]:
        if not run_ids:
            return {}
        params = {"p_ids": list(run_ids), "p_worker": worker_id, "p_lease": lease_until}
        async with one_statement(self.engine) as conn:
            res = await conn.execute(_HEARTBEAT, params)
            return {r.run_id: r.cancel_requested for r in res}

    async def requeue_expired(self, now: datetime) -> builtins.list[str]:
        rows = await self._rows(_REQUEUE_EXPIRED, {"p_now": now}, write=True)
        return [r["run_id"] for r in rows]

    async def release(
        self,
        run_id: str,
        worker_id: str,
        *,
        usage: dict[str, Any] | None = None,
        ledger: Sequence[UsageRecord] = (),
    ) -> bool:
        params: dict[str, Any] = {"p_id": run_id, "p_worker": worker_id, "p_now": utcnow()}
        if usage is None:
            return bool(await self._write(_RELEASE, params))
        params["p_usage"] = usage
        if ledger:
            return await self._with_ledger(_RELEASE_WITH_USAGE, params, ledger)
        return bool(await self._write(_RELEASE_WITH_USAGE, params))

    async def request_cancel(self, run_id: str, action: str) -> bool:
        return bool(await self._write(_REQUEST_CANCEL, {"p_id": run_id, "p_action": action}))

    async def set_webhook(self, run_id: str, webhook: dict[str, Any]) -> None:
        params = {"p_id": run_id, "webhook": webhook, "updated_at": utcnow()}
        async with self.engine.begin() as conn:
            await conn.execute(_UPDATE_RUN, params)

    async def claim_pending_webhooks(
        self, older_than: datetime, limit: int = 100
    ) -> builtins.list[Run]:
        q = (
            runs.select()
            .where(
                runs.c.status.not_in(ACTIVE_RUN_STATUSES),
                runs.c.updated_at < older_than,
                *json_match(runs.c.webhook, {"status": "pending"}, self.dialect),
            )
            .order_by(runs.c.updated_at)
            .limit(limit)
        )
        if self.dialect == "postgresql":
            q = q.with_for_update(skip_locked=True)
        now = utcnow()
        async with self.engine.begin() as conn:
            taken = [cast(Run, dict(r)) for r in (await conn.execute(q)).mappings()]
            if taken:
                ids = [r["run_id"] for r in taken]
                await conn.execute(
                    runs.update().where(runs.c.run_id.in_(ids)).values(updated_at=now)
                )
        for run in taken:
            run["updated_at"] = now
        return taken
