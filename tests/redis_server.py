"""The machine's Redis for tests, under a throw-away key prefix.

The server is DOCKYARD_TEST_REDIS_URL (default redis://127.0.0.1:6379/0). With
CI=true a missing server fails the test; elsewhere the test is skipped.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import redis

REDIS_URL = os.environ.get("DOCKYARD_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@contextmanager
def fresh_prefix() -> Iterator[str]:
    """A key prefix nobody else uses; its keys are deleted afterwards."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.RedisError as e:
        message = f"Redis at {REDIS_URL} is not available: {e}"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)
    prefix = f"dockyard-test-{uuid.uuid4().hex[:10]}"
    try:
        yield prefix
    finally:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()
