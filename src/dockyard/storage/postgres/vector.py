"""Semantic search on PostgreSQL: pgvector detection, and an exact-scan fallback store.

With pgvector, LangGraph's ``AsyncPostgresStore`` does everything (its ``store_vectors``
table, its migrations). Without it, :class:`ExactScanPostgresStore` keeps LangGraph's
``store`` table and item semantics and only replaces where vectors live and how a query
is scored: vectors are ``double precision[]`` rows in ``dockyard_store_vectors`` and a
search computes the exact cosine similarity in SQL for every vector under the searched
namespace prefix that passes the filter -- O(matching vectors x dims) per query, no index.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import orjson
import psycopg
from langgraph.store.base import PutOp, Result, SearchOp
from langgraph.store.postgres.aio import AsyncPostgresStore
from langgraph.store.postgres.base import (
    Migration,
    _decode_ns_bytes,
    _namespace_prefix_condition,
    _namespace_to_text,
    _row_to_search_item,
)

if TYPE_CHECKING:
    from psycopg import AsyncCursor
    from psycopg.rows import DictRow
    from psycopg_pool import AsyncConnectionPool

log = logging.getLogger("dockyard.storage")

VECTORS_TABLE = "dockyard_store_vectors"

# The foreign key makes every way an item leaves `store` (delete, TTL sweep, a direct
# DELETE) take its vectors with it; the primary key's leading (prefix, key) columns
# index that cascade and the per-put cleanup.
_SETUP_SQL = f"""
CREATE TABLE IF NOT EXISTS {VECTORS_TABLE} (
    prefix text NOT NULL,
    key text NOT NULL,
    field_name text NOT NULL,
    embedding double precision[] NOT NULL,
    norm double precision NOT NULL,
    PRIMARY KEY (prefix, key, field_name),
    FOREIGN KEY (prefix, key) REFERENCES store (prefix, key) ON DELETE CASCADE
)
"""

ENABLE_HINT = (
    "to use pgvector instead, install it on the PostgreSQL server "
    "(https://github.com/pgvector/pgvector#installation: e.g. the postgresql-<major>-pgvector "
    "package or the pgvector/pgvector Docker image), run CREATE EXTENSION vector; in this "
    "database as a role allowed to, and restart dockyard (vectors stored by the fallback "
    "are copied over on that start)"
)


@dataclass(frozen=True)
class PgvectorStatus:
    available: bool
    detail: str


async def detect_pgvector(pool: AsyncConnectionPool[Any]) -> PgvectorStatus:
    """Whether the ``vector`` extension is usable in this database, creating it when the
    server has it and this role may; never raises for a missing or forbidden extension."""
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'")
        if await cur.fetchone() is not None:
            return PgvectorStatus(True, "the vector extension is installed")
        cur = await conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")
        if await cur.fetchone() is None:
            return PgvectorStatus(False, "pgvector is not installed on this PostgreSQL server")
        try:
            await conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        except psycopg.Error as e:
            # Two processes starting together can race on the CREATE; if the other one
            # won, pgvector is there, and both must use it (one table of vectors).
            cur = await conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'")
            if await cur.fetchone() is not None:
                return PgvectorStatus(True, "the vector extension is installed")
            # Usually insufficient privilege: creating pgvector needs a superuser or,
            # where the extension is trusted, the database owner.
            message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            return PgvectorStatus(
                False,
                f"pgvector is available on the server but CREATE EXTENSION vector failed "
                f"({message})",
            )
        return PgvectorStatus(True, "created the vector extension")


async def adopt_fallback_vectors(pool: AsyncConnectionPool[Any], dims: int) -> int:
    """Copy vectors the fallback stored into LangGraph's pgvector table, once, after
    pgvector appears; otherwise items written before it would vanish from search."""
    async with pool.connection() as conn:
        cur = await conn.execute(f"SELECT to_regclass('{VECTORS_TABLE}') IS NOT NULL AS present")
        row = await cur.fetchone()
        if not row or not row["present"]:
            return 0
        async with conn.transaction():
            cur = await conn.execute(
                f"INSERT INTO store_vectors (prefix, key, field_name, embedding) "
                f"SELECT prefix, key, field_name, embedding::vector FROM {VECTORS_TABLE} "
                f"WHERE cardinality(embedding) = %s "
                f"ON CONFLICT (prefix, key, field_name) DO NOTHING",
                (dims,),
            )
            copied = max(int(cur.rowcount), 0)
            await conn.execute(f"DROP TABLE {VECTORS_TABLE}")
    return copied


def _norm(vector: Sequence[float]) -> float:
    return math.sqrt(math.fsum(x * x for x in vector))


class ExactScanPostgresStore(AsyncPostgresStore):
    """LangGraph's Postgres store with semantic search that needs no extension.

    Puts, deletes, gets, plain searches, namespaces and TTL stay LangGraph's; only the
    vectors of puts and the ``query=`` searches are handled here.
    """

    # LangGraph's vector migrations create the pgvector extension and a vector(dims)
    # column; none of that may run here. Leaving them out also keeps its
    # `vector_migrations` table empty, so a later switch to pgvector runs them all.
    VECTOR_MIGRATIONS: Sequence[Migration] = ()

    async def setup(self) -> None:
        await super().setup()
        async with self._cursor() as cur:
            await cur.execute(_SETUP_SQL)

    @property
    def _dims(self) -> int:
        assert self.index_config is not None
        return int(self.index_config["dims"])

    async def _embed(self, texts: list[str]) -> list[list[float]]:
        assert self.embeddings is not None
        vectors = await self.embeddings.aembed_documents(texts)
        out: list[list[float]] = []
        for vector in vectors:
            if len(vector) != self._dims:
                # pgvector would refuse these too; storing them would make the
                # cosine over mismatched arrays meaningless.
                raise ValueError(
                    f"store.index.dims is {self._dims} but the embeddings model returned "
                    f"{len(vector)} dimensions"
                )
            out.append([float(x) for x in vector])
        return out

    async def _batch_put_ops(
        self,
        put_ops: Sequence[tuple[int, PutOp]],
        cur: AsyncCursor[DictRow],
    ) -> None:
        # LangGraph builds the item writes and decides which texts to embed (index=False,
        # per-put index=[...], the configured fields); its vector INSERT is replaced.
        queries, embedding_request = self._prepare_batch_PUT_queries(put_ops)
        requests = list(embedding_request[1]) if embedding_request else []
        # Embed before writing anything, so a failing embeddings call leaves no half-put.
        vectors = await self._embed([text for *_, text in requests]) if requests else []

        for query, query_params in queries:
            await cur.execute(query, query_params)

        # Every rewritten item drops its old vectors first: an update that embeds other
        # fields, fewer list elements, or nothing at all (index=False) leaves none stale.
        latest = {(op.namespace, op.key): op for _, op in put_ops}
        written = [(ns, key) for (ns, key), op in latest.items() if op.value is not None]
        if written:
            await cur.execute(
                f"DELETE FROM {VECTORS_TABLE} AS sv "
                "USING unnest(%s::text[], %s::text[]) AS w(prefix, key) "
                "WHERE sv.prefix = w.prefix AND sv.key = w.key",
                ([_namespace_to_text(ns) for ns, _ in written], [key for _, key in written]),
            )

        rows: dict[tuple[str, str, str], list[float]] = {}
        for (prefix, key, field_name, _), vector in zip(requests, vectors, strict=True):
            rows[(prefix, key, field_name)] = vector
        if rows:
            values = ",".join(["(%s, %s, %s, %s::float8[], %s)"] * len(rows))
            params: list[Any] = []
            for (prefix, key, field_name), vector in rows.items():
                params.extend((prefix, key, field_name, vector, _norm(vector)))
            # A concurrent put of the same item may have inserted between our DELETE and
            # this INSERT; the later writer wins instead of failing on the primary key.
            await cur.execute(
                f"INSERT INTO {VECTORS_TABLE} (prefix, key, field_name, embedding, norm) "
                f"VALUES {values} ON CONFLICT (prefix, key, field_name) DO UPDATE "
                "SET embedding = EXCLUDED.embedding, norm = EXCLUDED.norm",
                params,
            )

    async def _batch_search_ops(
        self,
        search_ops: Sequence[tuple[int, SearchOp]],
        results: list[Result],
        cur: AsyncCursor[DictRow],
    ) -> None:
        semantic = [(idx, op) for idx, op in search_ops if op.query]
        plain = [(idx, op) for idx, op in search_ops if not op.query]
        if plain:
            await super()._batch_search_ops(plain, results, cur)
        if not semantic:
            return
        vectors = await self._embed([cast(str, op.query) for _, op in semantic])
        for (idx, op), vector in zip(semantic, vectors, strict=True):
            query, params = self._semantic_query(op, vector)
            await cur.execute(query, params)
            rows = await cur.fetchall()
            results[idx] = [
                _row_to_search_item(
                    _decode_ns_bytes(row["prefix"]),
                    cast(Any, row),
                    loader=self._deserializer,
                )
                for row in rows
            ]

    def _filter_sql(self, op: SearchOp) -> tuple[str, list[Any]]:
        # Same translation as LangGraph's own search (including dockyard's numeric
        # comparison override of _get_filter_condition), so both paths filter alike.
        clauses: list[str] = []
        params: list[Any] = []
        for key, value in (op.filter or {}).items():
            if isinstance(value, dict):
                for op_name, val in value.items():
                    condition, condition_params = self._get_filter_condition(key, op_name, val)
                    clauses.append(condition)
                    params.extend(condition_params)
            else:
                clauses.append("store.value->%s = %s::jsonb")
                params.extend([key, orjson.dumps(value).decode("utf-8")])
        return "".join(f" AND {c}" for c in clauses), params

    def _semantic_query(self, op: SearchOp, vector: list[float]) -> tuple[str, list[Any]]:
        ns_condition, ns_params = (
            _namespace_prefix_condition(op.namespace_prefix)
            if op.namespace_prefix
            else ("TRUE", ())
        )
        filters, filter_params = self._filter_sql(op)
        expiry = (
            " AND (store.expires_at IS NULL OR store.expires_at > NOW())"
            if self._omit_expired
            else ""
        )
        # An item's score is its best field's cosine similarity, as in LangGraph's
        # pgvector and sqlite-vec searches. A zero vector has no direction: NULL score,
        # ranked last. Vectors of another length (dims changed since they were written)
        # are skipped rather than compared element-wise with the wrong query.
        query = f"""
            SELECT store.prefix, store.key, store.value, store.created_at, store.updated_at,
                MAX(sim.score) AS score
            FROM store
            JOIN {VECTORS_TABLE} sv ON sv.prefix = store.prefix AND sv.key = store.key
            CROSS JOIN LATERAL (
                SELECT SUM(e.a * e.b) / NULLIF(sv.norm * %s, 0) AS score
                FROM unnest(sv.embedding, %s::float8[]) AS e(a, b)
            ) AS sim
            WHERE {ns_condition} AND cardinality(sv.embedding) = %s {filters} {expiry}
            GROUP BY store.prefix, store.key
            ORDER BY MAX(sim.score) DESC NULLS LAST, store.prefix, store.key
            LIMIT %s OFFSET %s
        """
        params: list[Any] = [
            _norm(vector),
            vector,
            *ns_params,
            self._dims,
            *filter_params,
            op.limit,
            op.offset,
        ]
        if op.refresh_ttl:
            query = f"""
                WITH search_results AS ({query}),
                updated AS (
                    UPDATE store s
                    SET expires_at = NOW() + (s.ttl_minutes || ' minutes')::interval
                    FROM search_results sr
                    WHERE s.prefix = sr.prefix AND s.key = sr.key AND s.ttl_minutes IS NOT NULL
                )
                SELECT sr.prefix, sr.key, sr.value, sr.created_at, sr.updated_at, sr.score
                FROM search_results sr
                ORDER BY sr.score DESC NULLS LAST, sr.prefix, sr.key
            """
        return query, params
