"""Semantic store search on PostgreSQL without pgvector: dockyard's exact-scan fallback.

Each test gets a fresh database. The pgvector path itself cannot run here (this machine's
PostgreSQL has no pgvector); what is checked for it is that detection answers truthfully
and that the store selection hands LangGraph its index config when pgvector is present.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

import psycopg
import pytest
from langgraph.store.base import SearchItem
from langgraph.store.postgres.aio import AsyncPostgresStore
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from dockyard.settings import Settings, load_settings
from dockyard.storage.postgres import vector as pg_vector
from dockyard.storage.postgres.store import build_store, open_postgres_store
from dockyard.storage.postgres.vector import (
    VECTORS_TABLE,
    ExactScanPostgresStore,
    PgvectorStatus,
    adopt_fallback_vectors,
    detect_pgvector,
)
from dockyard.storage.sqlite.store import open_sqlite_store
from dockyard.testing import DeterministicEmbeddings
from tests.pg import fresh_database

DIMS = 32
EMB = DeterministicEmbeddings(DIMS)

DOCS: list[tuple[tuple[str, ...], str, dict[str, Any]]] = [
    (("docs", "a"), "refund", {"text": "refund policy for damaged items", "kind": "faq", "n": 3}),
    (("docs", "a"), "ship", {"text": "shipping times to europe", "kind": "faq", "n": 100}),
    (("docs", "a"), "returns", {"text": "returns of damaged parcels", "kind": "guide", "n": 7}),
    (("docs", "b"), "invoice", {"text": "invoice for a refund request", "kind": "faq", "n": 12}),
    (("docs", "b"), "europe", {"text": "europe warehouse opening hours", "kind": "guide", "n": 1}),
    (("docsx",), "refund2", {"text": "refund policy for damaged items", "kind": "faq", "n": 5}),
]
QUERIES = ["refund for a damaged item", "shipping to europe", "opening hours", "parcels"]


def _settings(
    tmp_path: Path, *, index: bool = True, embed: str = f"fake:{DIMS}", fields: bool = True
) -> Settings:
    config = tmp_path / "dockyard.yaml"
    field_list = ", fields: ['text']" if fields else ""
    store = f"store:\n  index: {{dims: {DIMS}, embed: '{embed}'{field_list}}}\n" if index else ""
    config.write_text("graphs: {}\n" + store)
    return load_settings(config, data_dir=tmp_path / "data")


def _cosine(a: list[float], b: list[float]) -> float:
    dot = math.fsum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(math.fsum(x * x for x in a)) * math.sqrt(math.fsum(y * y for y in b)))


@pytest.fixture
async def pool() -> AsyncIterator[AsyncConnectionPool[Any]]:
    async with fresh_database() as url:
        # The same connection settings dockyard's own pool uses (storage/postgres/__init__.py).
        p: AsyncConnectionPool[Any] = AsyncConnectionPool(
            url,
            min_size=1,
            max_size=2,
            open=False,
            kwargs={"autocommit": True, "prepare_threshold": None, "row_factory": dict_row},
        )
        await p.open(wait=True, timeout=30)
        try:
            yield p
        finally:
            await p.close()


@pytest.fixture
async def store(pool: AsyncConnectionPool[Any], tmp_path: Path) -> ExactScanPostgresStore:
    s = build_store(pool, _settings(tmp_path), pgvector=False)
    assert isinstance(s, ExactScanPostgresStore)
    await s.setup()
    return s


async def _vector_rows(pool: AsyncConnectionPool[Any]) -> list[dict[str, Any]]:
    async with pool.connection() as conn:
        cur = await conn.execute(
            f"SELECT prefix, key, field_name, embedding FROM {VECTORS_TABLE} "
            "ORDER BY prefix, key, field_name"
        )
        return list(await cur.fetchall())


def _keys(items: list[SearchItem]) -> list[str]:
    return [i.key for i in items]


async def _put_docs(s: Any) -> None:
    for ns, key, value in DOCS:
        await s.aput(ns, key, value)


# --- pgvector detection and store selection ------------------------------------------


async def test_detection_matches_the_server(pool: AsyncConnectionPool[Any]) -> None:
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")
        server_has_pgvector = await cur.fetchone() is not None
    status = await detect_pgvector(pool)
    assert status.available == server_has_pgvector
    if not server_has_pgvector:  # this machine: no pgvector package for its PostgreSQL
        assert "not installed" in status.detail
    else:
        async with pool.connection() as conn:
            cur = await conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'")
            assert await cur.fetchone() is not None


class _FakeConn:
    """Answers detect_pgvector's catalogue queries as a server in a given state would."""

    def __init__(self, *, installed: bool, available: bool, create: str) -> None:
        self.installed, self.available, self.create = installed, available, create
        self.statements: list[str] = []

    async def execute(self, sql: str) -> _FakeCursor:
        self.statements.append(sql)
        if "FROM pg_extension" in sql:
            return _FakeCursor(self.installed)
        if "FROM pg_available_extensions" in sql:
            return _FakeCursor(self.available)
        assert sql == "CREATE EXTENSION IF NOT EXISTS vector"
        if self.create == "ok":
            self.installed = True
            return _FakeCursor(False)
        if self.create == "raced":  # another process created it a moment earlier
            self.installed = True
            raise psycopg.errors.UniqueViolation("duplicate key value")
        raise psycopg.errors.InsufficientPrivilege("permission denied to create extension")


class _FakeCursor:
    def __init__(self, row: bool) -> None:
        self.row = row

    async def fetchone(self) -> tuple[int] | None:
        return (1,) if self.row else None


class _FakePool:
    def __init__(self, conn: _FakeConn) -> None:
        self.conn = conn

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[_FakeConn]:
        yield self.conn


@pytest.mark.parametrize(
    ("installed", "available", "create", "expected", "detail"),
    [
        (True, True, "ok", True, "installed"),
        (False, False, "ok", False, "not installed on this PostgreSQL server"),
        (False, True, "ok", True, "created"),
        (False, True, "denied", False, "CREATE EXTENSION vector failed (permission denied"),
        (False, True, "raced", True, "installed"),
    ],
)
async def test_detection_states(
    installed: bool, available: bool, create: str, expected: bool, detail: str
) -> None:
    conn = _FakeConn(installed=installed, available=available, create=create)
    status = await detect_pgvector(cast(Any, _FakePool(conn)))
    assert status.available is expected
    assert detail in status.detail
    tried_create = any(s.startswith("CREATE EXTENSION") for s in conn.statements)
    assert tried_create == (not installed and available)


async def test_selection_hands_langgraph_the_index_when_pgvector_is_present(
    tmp_path: Path,
) -> None:
    # No server needed: the pool is never opened.
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        "postgresql://nowhere.invalid/db", open=False
    )
    with_pgvector = build_store(pool, _settings(tmp_path), pgvector=True)
    assert isinstance(with_pgvector, AsyncPostgresStore)
    assert not isinstance(with_pgvector, ExactScanPostgresStore)
    assert with_pgvector.index_config is not None
    assert with_pgvector.index_config["dims"] == DIMS
    assert with_pgvector.index_config["fields"] == ["text"]
    assert isinstance(with_pgvector.embeddings, DeterministicEmbeddings)
    assert len(with_pgvector.VECTOR_MIGRATIONS) > 0  # LangGraph's pgvector migrations

    fallback = build_store(pool, _settings(tmp_path), pgvector=False)
    assert isinstance(fallback, ExactScanPostgresStore)
    assert fallback.index_config is not None and fallback.index_config["dims"] == DIMS
    assert len(fallback.VECTOR_MIGRATIONS) == 0

    no_index = build_store(pool, _settings(tmp_path, index=False), pgvector=False)
    assert not isinstance(no_index, ExactScanPostgresStore)
    assert no_index.index_config is None


async def test_startup_warns_once_and_uses_the_fallback(
    pool: AsyncConnectionPool[Any],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The fallback works on any server; detection is pinned to "absent" so that this
    # runs the same on a PostgreSQL that has pgvector.
    async def absent(_pool: Any) -> PgvectorStatus:
        return PgvectorStatus(False, "the vector extension is not available on this server")

    monkeypatch.setattr(pg_vector, "detect_pgvector", absent)
    with caplog.at_level(logging.WARNING, logger="dockyard.storage"):
        s = await open_postgres_store(pool, _settings(tmp_path))
    assert isinstance(s, ExactScanPostgresStore)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert "exact-scan fallback" in message
    assert "CREATE EXTENSION vector" in message
    # Idempotent setup: a second start on the same database works.
    again = await open_postgres_store(pool, _settings(tmp_path))
    await again.aput(("x",), "k", {"text": "hello"})
    assert _keys(await again.asearch(("x",), query="hello")) == ["k"]


async def test_adopting_fallback_vectors_never_loses_them(
    store: ExactScanPostgresStore, pool: AsyncConnectionPool[Any]
) -> None:
    await _put_docs(store)
    # The copy into pgvector's table fails here (this database has no store_vectors
    # table: the fallback never creates one, with or without pgvector on the server);
    # it must fail before dropping the fallback's table.
    with pytest.raises(psycopg.Error):
        await adopt_fallback_vectors(pool, DIMS)
    assert len(await _vector_rows(pool)) == len(DOCS)


async def test_adopting_without_a_fallback_table_does_nothing(
    pool: AsyncConnectionPool[Any],
) -> None:
    assert await adopt_fallback_vectors(pool, DIMS) == 0


# --- the fallback store --------------------------------------------------------------


async def test_ranks_by_cosine_with_langgraph_scores(store: ExactScanPostgresStore) -> None:
    await _put_docs(store)
    query = "refund for a damaged item"
    found = await store.asearch(("docs",), query=query, limit=10)
    q = EMB.embed_query(query)
    expected = sorted(
        ((_cosine(q, EMB.embed_query(v["text"])), key) for ns, key, v in DOCS if ns[0] == "docs"),
        reverse=True,
    )
    assert _keys(found) == [key for _, key in expected]
    for item, (score, _) in zip(found, expected, strict=True):
        assert item.score == pytest.approx(score, abs=1e-9)
    assert found[0].key == "refund"
    assert found[0].score is not None and found[-1].score is not None
    assert found[0].score > found[-1].score
    assert found[0].namespace == ("docs", "a")
    assert found[0].value["kind"] == "faq"


async def test_limit_and_offset_page_the_ranking(store: ExactScanPostgresStore) -> None:
    await _put_docs(store)
    full = _keys(await store.asearch((), query="refund europe", limit=20))
    assert len(full) == len(DOCS)
    assert _keys(await store.asearch((), query="refund europe", limit=2)) == full[:2]
    assert _keys(await store.asearch((), query="refund europe", limit=2, offset=2)) == full[2:4]
    assert _keys(await store.asearch((), query="refund europe", offset=5)) == full[5:]


async def test_update_replaces_the_vector(
    store: ExactScanPostgresStore, pool: AsyncConnectionPool[Any]
) -> None:
    await store.aput(("n",), "k", {"text": "apples and pears"})
    await store.aput(("n",), "other", {"text": "bananas"})
    await store.aput(("n",), "k", {"text": "bananas split"})
    rows = await _vector_rows(pool)
    assert [(r["key"], r["field_name"]) for r in rows] == [("k", "text"), ("other", "text")]
    assert rows[0]["embedding"] == pytest.approx(EMB.embed_query("bananas split"))
    found = await store.asearch(("n",), query="apples and pears")
    by_key = {i.key: i.score for i in found}
    q = EMB.embed_query("apples and pears")
    assert by_key["k"] == pytest.approx(_cosine(q, EMB.embed_query("bananas split")), abs=1e-9)

    # index=False on an update: stored, but its old vector must not keep it searchable.
    await store.aput(("n",), "k", {"text": "apples and pears"}, index=False)
    assert [r["key"] for r in await _vector_rows(pool)] == ["other"]
    assert _keys(await store.asearch(("n",), query="apples and pears")) == ["other"]
    item = await store.aget(("n",), "k")
    assert item is not None and item.value == {"text": "apples and pears"}


async def test_per_put_index_fields(
    store: ExactScanPostgresStore, pool: AsyncConnectionPool[Any]
) -> None:
    await store.aput(("notes",), "n1", {"title": "apples", "text": "pears"}, index=["title"])
    await store.aput(("notes",), "n2", {"title": "pears", "text": "apples"})
    await store.aput(("notes",), "n3", {"tags": ["pears", "apples"]}, index=["tags[*]"])
    rows = await _vector_rows(pool)
    assert [(r["key"], r["field_name"]) for r in rows] == [
        ("n1", "title"),
        ("n2", "text"),
        ("n3", "tags[*].0"),
        ("n3", "tags[*].1"),
    ]
    found = await store.asearch(("notes",), query="apples")
    # n3's best field is an exact match too; ties are broken by key.
    assert _keys(found) == ["n1", "n2", "n3"]
    assert found[0].score == pytest.approx(1.0)
    assert found[2].score == pytest.approx(1.0)


async def test_delete_and_ttl_expiry_remove_vectors(
    store: ExactScanPostgresStore, pool: AsyncConnectionPool[Any]
) -> None:
    await _put_docs(store)
    await store.adelete(("docs", "a"), "refund")
    assert "refund" not in [r["key"] for r in await _vector_rows(pool)]
    assert "refund" not in _keys(await store.asearch(("docs",), query="refund damaged"))

    await store.aput(("tmp",), "soon", {"text": "expiring note"}, ttl=1)
    assert "soon" in [r["key"] for r in await _vector_rows(pool)]
    async with pool.connection() as conn:
        await conn.execute(
            "UPDATE store SET expires_at = NOW() - interval '1 minute' WHERE key = 'soon'"
        )
    assert await store.sweep_ttl() == 1
    assert "soon" not in [r["key"] for r in await _vector_rows(pool)]
    assert _keys(await store.asearch(("tmp",), query="expiring note")) == []


async def test_filter_and_query_together(store: ExactScanPostgresStore) -> None:
    await _put_docs(store)
    query = "refund for a damaged item"
    everything = _keys(await store.asearch((), query=query, limit=20))
    faq = await store.asearch((), query=query, filter={"kind": "faq"}, limit=20)
    assert _keys(faq) == [k for k in everything if k in {"refund", "ship", "invoice", "refund2"}]
    # Numbers compare as numbers (dockyard's override), also on the semantic path.
    big = await store.asearch((), query=query, filter={"n": {"$gt": 6}}, limit=20)
    assert _keys(big) == [k for k in everything if k in {"ship", "returns", "invoice"}]
    both = await store.asearch(
        ("docs",), query=query, filter={"kind": {"$ne": "guide"}, "n": {"$lte": 12}}
    )
    assert _keys(both) == [k for k in everything if k in {"refund", "invoice"}]
    assert await store.asearch((), query=query, filter={"kind": "none"}) == []


async def test_namespace_prefix(store: ExactScanPostgresStore) -> None:
    await _put_docs(store)
    query = "refund for a damaged item"
    docs = await store.asearch(("docs",), query=query, limit=20)
    assert {i.namespace for i in docs} == {("docs", "a"), ("docs", "b")}  # not ("docsx",)
    assert _keys(await store.asearch(("docs", "b"), query=query)) == ["invoice", "europe"]
    assert _keys(await store.asearch(("docsx",), query=query)) == ["refund2"]
    assert await store.asearch(("doc",), query=query) == []


async def test_plain_search_refresh_ttl_and_batches(store: ExactScanPostgresStore) -> None:
    await _put_docs(store)
    plain = await store.asearch(("docs", "a"), filter={"kind": "faq"})
    assert sorted(_keys(plain)) == ["refund", "ship"]
    assert all(i.score is None for i in plain)
    refreshed = await store.asearch(("docs",), query="shipping to europe", refresh_ttl=True)
    assert _keys(refreshed) == _keys(await store.asearch(("docs",), query="shipping to europe"))
    # Several searches and a put in one batch, as LangGraph batches concurrent calls.
    from langgraph.store.base import PutOp, SearchOp

    results = await store.abatch(
        [
            SearchOp(("docs",), query="warehouse hours", limit=1),
            SearchOp(("docs", "a"), filter={"kind": "guide"}),
            PutOp(("docs", "c"), "new", {"text": "europe europe"}),
            SearchOp(("docs",), query="parcels", limit=1),
        ]
    )
    assert _keys(results[0]) == ["europe"]  # batch searches run before its puts
    assert _keys(results[1]) == ["returns"]
    assert _keys(results[3]) == ["returns"]
    assert _keys(await store.asearch(("docs",), query="europe europe", limit=1)) == ["new"]


async def test_wrong_embedding_size_is_refused(
    pool: AsyncConnectionPool[Any], tmp_path: Path
) -> None:
    s = build_store(pool, _settings(tmp_path, embed="fake:8"), pgvector=False)
    await s.setup()
    with pytest.raises(ValueError, match="dims is 32"):
        await s.aput(("x",), "k", {"text": "hello"})
    assert await s.aget(("x",), "k") is None  # nothing half-written


async def test_same_order_as_the_sqlite_store(
    pool: AsyncConnectionPool[Any], tmp_path: Path
) -> None:
    # Whole-item embeddings (no `fields`): LangGraph's SQLite store ignores the `fields`
    # key (it reads `text_fields`; langchain-ai/langgraph#8808), so only this setting
    # means the same thing on both stores.
    settings = _settings(tmp_path, fields=False)
    store = build_store(pool, settings, pgvector=False)
    await store.setup()
    sqlite_store, conn = await open_sqlite_store(settings, tmp_path / "store.db")
    try:
        await _put_docs(store)
        await _put_docs(sqlite_store)
        searches: list[tuple[tuple[str, ...], dict[str, Any]]] = [
            ((), {}),
            (("docs",), {}),
            (("docs", "a"), {}),
            ((), {"filter": {"kind": "faq"}}),
            (("docs",), {"filter": {"kind": "guide"}}),
            ((), {"limit": 3, "offset": 1}),
        ]
        for query in QUERIES:
            for prefix, kwargs in searches:
                pg = await store.asearch(prefix, query=query, **kwargs)
                lite = await sqlite_store.asearch(prefix, query=query, **kwargs)
                assert pg, (query, prefix, kwargs)
                assert _keys(pg) == _keys(lite), (query, prefix, kwargs)
                # sqlite-vec keeps float32 vectors; the fallback double precision.
                assert [i.score for i in pg] == pytest.approx([i.score for i in lite], abs=1e-5)
    finally:
        await sqlite_store.stop_ttl_sweeper()
        await conn.close()
