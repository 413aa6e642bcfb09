"""The storage conformance suite on the embedded default: SQLite under a temporary data_dir."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from dockyard.settings import load_settings
from dockyard.storage.database import Storage, open_storage
from tests.storage.conformance import StorageConformance


@asynccontextmanager
async def sqlite_backend(tmp_path: Path) -> AsyncIterator[Storage]:
    config = tmp_path / "dockyard.yaml"
    config.write_text("graphs: {}\n")
    settings = load_settings(config, data_dir=tmp_path / "data")
    async with open_storage(settings) as storage:
        assert storage.backend == "sqlite"
        yield storage


class TestSqlite(StorageConformance):
    factory = staticmethod(sqlite_backend)

    async def backdate_store_item(self, b: Any, prefix: str, key: str) -> None:
        await b.store.conn.execute(
            "UPDATE store SET created_at = '2000-01-01 00:00:00' WHERE prefix = ? AND key = ?",
            (prefix, key),
        )
