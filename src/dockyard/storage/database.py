"""Open every storage concern for a Settings: own tables, checkpoints, store.

``database_url`` picks the backend package (``storage.sqlite`` or ``storage.postgres``),
each with one ``open``; both open the same ``Storage`` (``storage.common``), re-exported
here. Only this module chooses between them: the backends import the shared modules,
never each other, and nothing shared imports a backend.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from dockyard.errors import ConfigError
from dockyard.settings import Settings
from dockyard.storage import postgres, sqlite
from dockyard.storage.common import MIGRATIONS_DIR, Storage, migrate

__all__ = ["MIGRATIONS_DIR", "Storage", "migrate", "open_storage"]


@contextlib.asynccontextmanager
async def open_storage(settings: Settings) -> AsyncIterator[Storage]:
    url = settings.database_url
    if url and url.split("://", 1)[0].split("+", 1)[0] in ("postgresql", "postgres"):
        async with postgres.open(settings) as storage:
            yield storage
        return
    if url:
        raise ConfigError(
            f"database_url = {url!r}: expected postgresql://user@host:port/db "
            "(leave DOCKYARD_DATABASE_URL unset for the embedded SQLite default)"
        )
    async with sqlite.open(settings) as storage:
        yield storage
