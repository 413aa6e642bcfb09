"""A throw-away PostgreSQL database per test, on the server the machine provides.

The server is DOCKYARD_TEST_POSTGRES_URL (default: postgres on 127.0.0.1:5432, trust
auth). With CI=true a missing server fails the test; elsewhere the test is skipped
with the reason.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import psycopg
import pytest

ADMIN_URL = os.environ.get(
    "DOCKYARD_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def _unavailable(reason: str) -> None:
    message = f"PostgreSQL at {ADMIN_URL} is not available: {reason}"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message)
    pytest.skip(message)


@asynccontextmanager
async def fresh_database() -> AsyncIterator[str]:
    """Create an empty database, yield its URL, drop it afterwards."""
    name = f"dockyard_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = await psycopg.AsyncConnection.connect(ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as e:
        _unavailable(str(e).strip())
        raise  # unreachable: _unavailable raised
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        base, _, _ = ADMIN_URL.rpartition("/")
        yield f"{base}/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@contextmanager
def fresh_database_sync() -> Iterator[str]:
    """``fresh_database`` for synchronous fixtures."""
    name = f"dockyard_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as e:
        _unavailable(str(e).strip())
        raise
    try:
        admin.execute(f'CREATE DATABASE "{name}"')
        base, _, _ = ADMIN_URL.rpartition("/")
        yield f"{base}/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
