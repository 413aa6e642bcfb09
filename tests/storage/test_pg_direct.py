"""The direct PostgreSQL path (storage/postgres/direct.py) beyond what the conformance
suite shows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool
from sqlalchemy.dialects.postgresql import JSONB

from dockyard.storage.postgres.direct import DirectPg
from dockyard.storage.sql._common import P
from tests.pg import fresh_database

pytestmark = pytest.mark.asyncio

_items = sa.Table(
    "items",
    sa.MetaData(),
    sa.Column("id", sa.String, primary_key=True),
    sa.Column("doc", sa.JSON().with_variant(JSONB(), "postgresql")),
    sa.Column("at", sa.DateTime(timezone=True)),
    sa.Column("state", sa.String),
)
_INSERT = _items.insert().values(
    id=P("p_id"), doc=P("p_doc", type_=_items.c.doc.type), at=P("p_at"), state="new"
)
_BY_ID = _items.select().where(_items.c.id == P("p_id"))
_UPDATE = _items.update().where(_items.c.id == P("p_id"))


async def test_binds_json_defaults_utc_and_set_columns() -> None:
    async with fresh_database() as url:
        # Replies come in the session's time zone (+09 here); rows must carry UTC.
        kwargs = {"autocommit": True, "row_factory": dict_row, "options": "-c TimeZone=Asia/Seoul"}
        pool: AsyncConnectionPool = AsyncConnectionPool(
            url, min_size=1, max_size=2, open=False, kwargs=kwargs
        )
        await pool.open()
        try:
            async with pool.connection() as conn:
                await conn.execute(
                    "CREATE TABLE items (id text primary key, doc jsonb, at timestamptz, "
                    "state text)"
                )
            direct = DirectPg(pool)
            at = datetime(2026, 11, 29, 12, 0, tzinfo=timezone(timedelta(hours=-5)))
            doc = {"a": [1, "two", None], "nested": {"ok": True}}
            assert await direct.execute(_INSERT, {"p_id": "x", "p_doc": doc, "p_at": at}) == 1
            row = (await direct.fetch(_BY_ID, {"p_id": "x"}))[0]
            # The literal "new" came from the statement itself; JSON went in as JSON.
            assert row["state"] == "new" and row["doc"] == doc
            assert row["at"] == at and row["at"].tzinfo == UTC

            n = await direct.execute(_UPDATE, {"p_id": "x", "state": "done"}, ("state",))
            assert n == 1
            assert (await direct.fetch(_BY_ID, {"p_id": "x"}))[0]["state"] == "done"
            assert await direct.execute(_UPDATE, {"p_id": "nope", "state": "x"}, ("state",)) == 0

            with pytest.raises(sa.exc.IntegrityError):
                await direct.execute(_INSERT, {"p_id": "x", "p_doc": None, "p_at": at})
            with pytest.raises(TypeError, match="missing parameters: p_at"):
                await direct.execute(_INSERT, {"p_id": "y", "p_doc": None})
            with pytest.raises(TypeError, match="expanding"):
                await direct.fetch(_items.select().where(_items.c.id.in_(["x"])), {})
        finally:
            await pool.close()
