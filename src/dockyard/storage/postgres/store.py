"""LangGraph's Postgres store, with numbers compared as numbers and semantic search on
pgvector or, without it, dockyard's exact-scan fallback (``postgres.vector``)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from dockyard.settings import Settings
from dockyard.storage.common import index_config

if TYPE_CHECKING:
    from langgraph.store.postgres.aio import AsyncPostgresStore
    from psycopg_pool import AsyncConnectionPool

log = logging.getLogger("dockyard.storage")


_COMPARE = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}


def _numeric_filters(store_cls: Any) -> Any:
    """LangGraph's Postgres store compares ``$gt``/``$lt`` filter values as text, of
    any JSON type (so 100 < 3, and 5 < "b"); here numbers compare as numbers and
    strings as strings (by code point, whatever the database's collation), each with
    values of its own type only, as on the SQLite store (storage.sqlite.store)."""

    class NumericFilterStore(store_cls):  # type: ignore[misc, valid-type]
        def _get_filter_condition(self, key: str, op: str, value: Any) -> tuple[str, list[Any]]:
            if op in _COMPARE and isinstance(value, int | float) and not isinstance(value, bool):
                return (
                    f"(jsonb_typeof(value->%s) = 'number' AND "
                    f"(value->>%s)::numeric {_COMPARE[op]} %s)",
                    [key, key, value],
                )
            if op in _COMPARE and isinstance(value, str):
                return (
                    f"(jsonb_typeof(value->%s) = 'string' AND "
                    f'(value->>%s) COLLATE "C" {_COMPARE[op]} %s)',
                    [key, key, value],
                )
            result: tuple[str, list[Any]] = super()._get_filter_condition(key, op, value)
            return result

    return NumericFilterStore


def build_store(
    pool: AsyncConnectionPool[Any], settings: Settings, *, pgvector: bool
) -> AsyncPostgresStore:
    """The store for these settings: LangGraph's own (with its pgvector index when
    ``store.index`` is set and pgvector is usable), else dockyard's exact-scan fallback."""
    from langgraph.store.postgres.aio import AsyncPostgresStore

    from dockyard.storage.postgres.vector import ExactScanPostgresStore

    ttl = settings.store.ttl.model_dump(exclude_none=True)
    index = index_config(settings)
    base = AsyncPostgresStore if index is None or pgvector else ExactScanPostgresStore
    store: AsyncPostgresStore = _numeric_filters(base)(pool, index=index, ttl=ttl)
    return store


async def open_postgres_store(
    pool: AsyncConnectionPool[Any], settings: Settings
) -> AsyncPostgresStore:
    from dockyard.storage.postgres.vector import (
        ENABLE_HINT,
        adopt_fallback_vectors,
        detect_pgvector,
    )

    index = settings.store.index
    if index is None:
        store = build_store(pool, settings, pgvector=False)
        await store.setup()
        return store
    status = await detect_pgvector(pool)
    store = build_store(pool, settings, pgvector=status.available)
    await store.setup()
    if status.available:
        try:
            copied = await adopt_fallback_vectors(pool, index.dims)
        except Exception as e:  # the store works without the old vectors; say what to do
            log.warning(
                "store.index: could not copy the vectors of dockyard's exact-scan fallback "
                "(table dockyard_store_vectors) into pgvector's store_vectors: %s; items put "
                "before pgvector was enabled are not found by semantic search until put again",
                e,
            )
        else:
            if copied:
                log.info("store.index: copied %d fallback vectors into pgvector", copied)
        log.info("store.index: semantic search uses pgvector (%s)", status.detail)
    else:
        log.warning(
            "store.index: %s; semantic search uses dockyard's exact-scan fallback, which "
            "compares the query with every stored vector under the searched namespace "
            "(cost grows with items x dims; no index); %s",
            status.detail,
            ENABLE_HINT,
        )
    return store
