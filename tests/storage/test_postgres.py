"""The storage conformance suite on PostgreSQL (a fresh database per test)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from dockyard.settings import load_settings
from dockyard.storage.database import Storage, open_storage
from tests.pg import fresh_database
from tests.storage.conformance import StorageConformance


@asynccontextmanager
async def postgres_backend(tmp_path: Path) -> AsyncIterator[Storage]:
    config = tmp_path / "dockyard.yaml"
    config.write_text("graphs: {}\n")
    async with fresh_database() as url:
        settings = load_settings(config, database_url=url, database_pool_size=2)
        async with open_storage(settings) as storage:
            assert storage.backend == "postgres"
            yield storage


@asynccontextmanager
async def postgres_twin(b: Storage, tmp_path: Path) -> AsyncIterator[Storage]:
    """A second handle on ``b``'s database, with its own pools, as another worker holds."""
    url = b.engine.url.render_as_string(hide_password=False)
    settings = load_settings(tmp_path / "dockyard.yaml", database_url=url, database_pool_size=2)
    async with open_storage(settings) as storage:
        yield storage


class TestPostgres(StorageConformance):
    factory = staticmethod(postgres_backend)
    twin_factory = staticmethod(postgres_twin)

    async def backdate_store_item(self, b: Any, prefix: str, key: str) -> None:
        async with b.store.conn.connection() as conn:
            await conn.execute(
                "UPDATE store SET created_at = '2000-01-01T00:00:00Z' "
                "WHERE prefix = %s AND key = %s",
                (prefix, key),
            )


async def test_pool_size_overflow_and_recycle_reach_both_pools(tmp_path: Path) -> None:
    async with fresh_database() as url:
        settings = load_settings(
            None,
            project_dir=tmp_path,
            database_url=url,
            database_pool_size=10,
            database_max_overflow=20,
            database_pool_timeout=30,
            database_pool_recycle_seconds=1800,
        )
        async with open_storage(settings) as storage:
            pool: Any = storage.engine.pool  # type: ignore[union-attr]
            assert (pool.size(), pool._max_overflow, pool._recycle) == (10, 20, 1800)
            assert pool._timeout == 30
            run_path = storage.checkpointer.conn  # type: ignore[attr-defined]
            assert (run_path.max_size, run_path.max_lifetime, run_path.timeout) == (30, 1800, 30)
