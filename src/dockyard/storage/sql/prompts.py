"""The prompt registry in SQL (``PromptStore``), SQLite and PostgreSQL alike.

Every write starts by raising the one ``prompt_revision`` row: on PostgreSQL that row
lock serialises the registry's writes across processes, so the next version number
(max + 1) and a label's expected position are read and written without a race; on
SQLite the one inline connection serialises them anyway. Registry writes are rare (people
push prompts), so one lock for all of them costs nothing that matters.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa

from dockyard.prompt_template import Message, PromptKind, PromptVersion
from dockyard.storage.prompts import LabelMove, MoveKind, Snapshot
from dockyard.storage.sql._common import Conn, SqlStore
from dockyard.storage.tables import (
    prompt_label_moves,
    prompt_labels,
    prompt_revision,
    prompt_versions,
)

_BUMP = (
    prompt_revision.update()
    .where(prompt_revision.c.id == 1)
    .values(revision=prompt_revision.c.revision + 1)
)


def _version(row: Any) -> PromptVersion:
    return PromptVersion(
        name=row["name"],
        version=row["version"],
        kind=row["kind"],
        template=row["template"],
        messages=tuple(Message(m["role"], m["content"]) for m in row["messages"]),
        variables=tuple(row["variables"]),
        sample=row["sample"],
        message=row["message"],
        author=row["author"],
        created_at=row["created_at"],
        config=row["config"] or {},
    )


class _Unchanged(Exception):
    """Ends a write's transaction without committing (nothing to write after all)."""

    def __init__(self, version: PromptVersion | None = None) -> None:
        self.version = version


def _move(row: Any) -> LabelMove:
    return LabelMove(
        name=row["name"],
        label=row["label"],
        from_version=row["from_version"],
        to_version=row["to_version"],
        kind=row["kind"],
        author=row["author"],
        at=row["at"],
    )


class SqlPrompts(SqlStore):
    async def _bump(self, conn: Conn) -> None:
        await conn.execute(_BUMP)

    async def create_version(
        self,
        name: str,
        *,
        kind: PromptKind,
        template: str | None,
        messages: Sequence[Message],
        variables: Sequence[str],
        sample: Mapping[str, Any] | None,
        config: Mapping[str, Any],
        message: str,
        author: str,
        now: datetime,
        if_changed: bool = False,
    ) -> tuple[PromptVersion, bool]:
        try:
            async with self.engine.begin() as conn:
                await self._bump(conn)
                latest = (
                    (
                        await conn.execute(
                            sa.select(prompt_versions)
                            .where(prompt_versions.c.name == name)
                            .order_by(prompt_versions.c.version.desc())
                            .limit(1)
                        )
                    )
                    .mappings()
                    .first()
                )
                row = self._row(name, latest, kind, template, messages, variables, sample, config)
                row.update(message=message, author=author, created_at=now)
                new = _version(row)
                if if_changed and latest is not None:
                    old = _version(latest)
                    if old.content() == new.content():
                        raise _Unchanged(old)
                await conn.execute(prompt_versions.insert().values(**row))
        except _Unchanged as same:
            assert same.version is not None
            return same.version, False
        return new, True

    @staticmethod
    def _row(
        name: str,
        latest: Any,
        kind: PromptKind,
        template: str | None,
        messages: Sequence[Message],
        variables: Sequence[str],
        sample: Mapping[str, Any] | None,
        config: Mapping[str, Any],
    ) -> dict[str, Any]:
        return {
            "name": name,
            "version": (latest["version"] if latest is not None else 0) + 1,
            "kind": kind,
            "template": template,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "variables": list(variables),
            "sample": dict(sample) if sample is not None else None,
            "config": dict(config),
        }

    async def get(self, name: str, version: int | None = None) -> PromptVersion | None:
        q = sa.select(prompt_versions).where(prompt_versions.c.name == name)
        if version is not None:
            q = q.where(prompt_versions.c.version == version)
        q = q.order_by(prompt_versions.c.version.desc()).limit(1)
        async with self.engine.connect() as conn:
            row = (await conn.execute(q)).mappings().first()
        return _version(row) if row is not None else None

    async def versions(self, name: str) -> builtins.list[PromptVersion]:
        q = (
            sa.select(prompt_versions)
            .where(prompt_versions.c.name == name)
            .order_by(prompt_versions.c.version)
        )
        async with self.engine.connect() as conn:
            return [_version(r) for r in (await conn.execute(q)).mappings()]

    async def names(self) -> builtins.list[str]:
        q = sa.select(prompt_versions.c.name).distinct().order_by(prompt_versions.c.name)
        async with self.engine.connect() as conn:
            return [r[0] for r in await conn.execute(q)]

    async def labels(self, name: str) -> dict[str, int]:
        q = sa.select(prompt_labels.c.label, prompt_labels.c.version).where(
            prompt_labels.c.name == name
        )
        async with self.engine.connect() as conn:
            return {r["label"]: r["version"] for r in (await conn.execute(q)).mappings()}

    async def move_label(
        self,
        name: str,
        label: str,
        version: int,
        *,
        kind: MoveKind,
        author: str,
        now: datetime,
        expect: int | Literal["any"] | None = "any",
    ) -> LabelMove | None:
        try:
            return await self._move_locked(name, label, version, kind, author, now, expect)
        except _Unchanged:
            return None

    async def _move_locked(
        self,
        name: str,
        label: str,
        version: int,
        kind: MoveKind,
        author: str,
        now: datetime,
        expect: int | Literal["any"] | None,
    ) -> LabelMove:
        where = (prompt_labels.c.name == name, prompt_labels.c.label == label)
        async with self.engine.begin() as conn:
            await self._bump(conn)
            current = (
                await conn.execute(sa.select(prompt_labels.c.version).where(*where))
            ).scalar_one_or_none()
            if expect != "any" and current != expect:
                # Rolls the transaction back, the raised revision with it.
                raise _Unchanged
            if current is None:
                await conn.execute(
                    prompt_labels.insert().values(
                        name=name, label=label, version=version, updated_at=now
                    )
                )
            else:
                await conn.execute(
                    prompt_labels.update().where(*where).values(version=version, updated_at=now)
                )
            move = LabelMove(name, label, current, version, kind, author, now)
            await conn.execute(
                prompt_label_moves.insert().values(
                    name=name,
                    label=label,
                    from_version=current,
                    to_version=version,
                    kind=kind,
                    author=author,
                    at=now,
                )
            )
        return move

    async def history(self, name: str, label: str | None = None) -> builtins.list[LabelMove]:
        q = sa.select(prompt_label_moves).where(prompt_label_moves.c.name == name)
        if label is not None:
            q = q.where(prompt_label_moves.c.label == label)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q.order_by(prompt_label_moves.c.id))).mappings()
            return [_move(r) for r in rows]

    async def snapshot(self) -> Snapshot:
        # One transaction: on PostgreSQL (read committed) each statement sees its own
        # moment, so the revision is read first: a write landing in between makes the
        # next poll see a newer revision and load again.
        async with self.engine.connect() as conn:
            revision = (await conn.execute(sa.select(prompt_revision.c.revision))).scalar_one()
            versions = (
                await conn.execute(
                    sa.select(prompt_versions).order_by(
                        prompt_versions.c.name, prompt_versions.c.version
                    )
                )
            ).mappings()
            out = tuple(_version(r) for r in versions)
            labels = await conn.execute(
                sa.select(prompt_labels.c.name, prompt_labels.c.label, prompt_labels.c.version)
            )
            pointers = {(r["name"], r["label"]): r["version"] for r in labels.mappings()}
            return Snapshot(int(revision), out, pointers)

    async def revision(self) -> int:
        async with self.engine.connect() as conn:
            return int((await conn.execute(sa.select(prompt_revision.c.revision))).scalar_one())

    async def delete_unlabeled(self, older_than: datetime) -> int:
        v = prompt_versions.alias("v")
        labelled = sa.select(prompt_labels.c.version).where(
            prompt_labels.c.name == prompt_versions.c.name
        )
        latest = (
            sa.select(sa.func.max(v.c.version))
            .where(v.c.name == prompt_versions.c.name)
            .scalar_subquery()
        )
        stmt = prompt_versions.delete().where(
            prompt_versions.c.created_at < older_than,
            prompt_versions.c.version.not_in(labelled),
            prompt_versions.c.version != latest,
        )
        try:
            async with self.engine.begin() as conn:
                gone = int((await conn.execute(stmt)).rowcount)
                if not gone:
                    raise _Unchanged
                await self._bump(conn)
        except _Unchanged:
            return 0
        return gone
