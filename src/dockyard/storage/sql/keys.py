"""API keys in SQL (``KeyStore``)."""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from dockyard.errors import ConflictError
from dockyard.storage.base import ApiKey
from dockyard.storage.sql._common import SqlStore, utcnow
from dockyard.storage.tables import api_keys

_COLUMNS = tuple(c.name for c in api_keys.c)


def _key(row: Any) -> ApiKey:
    out: ApiKey = {c: row[c] for c in _COLUMNS}  # type: ignore[assignment]
    return out


class SqlKeys(SqlStore):
    async def create(self, key: ApiKey) -> ApiKey:
        async with self.engine.begin() as conn:
            try:
                await conn.execute(api_keys.insert().values(**key))
            except sa.exc.IntegrityError:
                raise ConflictError(
                    f"key {key['key_id']} already exists", code="key_exists"
                ) from None
        return key

    async def _one(self, where: Any) -> ApiKey | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(sa.select(api_keys).where(where))).mappings().first()
        return _key(row) if row is not None else None

    async def get(self, key_id: str) -> ApiKey | None:
        return await self._one(api_keys.c.key_id == key_id)

    async def by_hash(self, key_hash: str) -> ApiKey | None:
        return await self._one(api_keys.c.key_hash == key_hash)

    async def list(
        self, *, tenant: str | None = None, include_revoked: bool = False
    ) -> builtins.list[ApiKey]:
        q = sa.select(api_keys).order_by(api_keys.c.created_at, api_keys.c.key_id)
        if tenant is not None:
            q = q.where(api_keys.c.tenant == tenant)
        if not include_revoked:
            q = q.where(api_keys.c.revoked_at.is_(None))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q)).mappings().all()
        return [_key(r) for r in rows]

    async def revoke(self, key_id: str, at: datetime) -> ApiKey | None:
        async with self.engine.begin() as conn:
            await conn.execute(
                api_keys.update()
                .where(api_keys.c.key_id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=at)
            )
        return await self.get(key_id)

    async def count(self) -> int:
        now = utcnow()
        q = (
            sa.select(sa.func.count())
            .select_from(api_keys)
            .where(
                api_keys.c.revoked_at.is_(None),
                sa.or_(api_keys.c.expires_at.is_(None), api_keys.c.expires_at > now),
            )
        )
        async with self.engine.connect() as conn:
            return int((await conn.execute(q)).scalar_one())
