"""The API key part of the conformance suite (``StorageConformance`` inherits it)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import pytest

from dockyard.errors import ConflictError
from dockyard.storage.base import ApiKey, KeyStore


class KeyBackend(Protocol):
    keys: KeyStore


T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def key_row(**overrides: Any) -> ApiKey:
    row = ApiKey(
        key_id="key_" + uuid.uuid4().hex[:12],
        key_hash=uuid.uuid4().hex + uuid.uuid4().hex,
        prefix="dk_abcd",
        tenant="acme",
        name=None,
        scopes=[],
        policies={},
        created_at=T0,
        expires_at=None,
        revoked_at=None,
    )
    row.update(overrides)  # type: ignore[typeddict-item]
    return row


class KeyConformance:
    async def test_key_round_trip_by_id_and_hash(self, b: KeyBackend) -> None:
        row = key_row(
            name="ci", scopes=["admin"], policies={"rate_limit": {"requests_per_minute": 5}}
        )
        assert await b.keys.create(row) == row
        assert await b.keys.get(row["key_id"]) == row
        assert await b.keys.by_hash(row["key_hash"]) == row
        assert await b.keys.get("key_missing") is None
        assert await b.keys.by_hash("0" * 64) is None

    async def test_key_ids_and_hashes_are_unique(self, b: KeyBackend) -> None:
        row = key_row()
        await b.keys.create(row)
        with pytest.raises(ConflictError):
            await b.keys.create(key_row(key_id=row["key_id"]))
        with pytest.raises(ConflictError):
            await b.keys.create(key_row(key_hash=row["key_hash"]))

    async def test_key_list_per_tenant_oldest_first(self, b: KeyBackend) -> None:
        first = await b.keys.create(key_row(created_at=T0))
        second = await b.keys.create(key_row(created_at=T0 + timedelta(seconds=1)))
        other = await b.keys.create(key_row(tenant="globex", created_at=T0))
        assert [k["key_id"] for k in await b.keys.list(tenant="acme")] == [
            first["key_id"],
            second["key_id"],
        ]
        assert {k["key_id"] for k in await b.keys.list()} == {
            first["key_id"],
            second["key_id"],
            other["key_id"],
        }

    async def test_key_revoke_once_and_hidden_from_list(self, b: KeyBackend) -> None:
        row = await b.keys.create(key_row())
        revoked = await b.keys.revoke(row["key_id"], T0 + timedelta(hours=1))
        assert revoked is not None and revoked["revoked_at"] == T0 + timedelta(hours=1)
        again = await b.keys.revoke(row["key_id"], T0 + timedelta(hours=2))
        assert again is not None and again["revoked_at"] == T0 + timedelta(hours=1)
        assert await b.keys.revoke("key_missing", T0) is None
        assert await b.keys.list() == []
        assert [k["key_id"] for k in await b.keys.list(include_revoked=True)] == [row["key_id"]]

    async def test_key_count_leaves_out_revoked_and_expired(self, b: KeyBackend) -> None:
        assert await b.keys.count() == 0
        await b.keys.create(key_row())
        gone = await b.keys.create(key_row())
        await b.keys.revoke(gone["key_id"], T0)
        await b.keys.create(key_row(expires_at=datetime.now(UTC) - timedelta(minutes=1)))
        await b.keys.create(key_row(expires_at=datetime.now(UTC) + timedelta(days=1)))
        assert await b.keys.count() == 2
