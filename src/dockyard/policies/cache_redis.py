"""Response cache entries in Redis, shared by every process (``DOCKYARD_REDIS_URL``).

One string per entry (``<redis_prefix>:cache:<sha256>``), the answer as LangChain's
message dict in JSON, set with ``SET EX`` so Redis forgets it after the TTL. Imported
only when Redis is configured.
"""

from __future__ import annotations

import asyncio
import math
import threading

import redis
import redis.asyncio


class RedisCacheStore:
    """The clients are made on first use: a synchronous one for model calls made from
    threads, an asyncio one per event loop."""

    def __init__(self, url: str, prefix: str) -> None:
        self.url = url
        self.prefix = prefix
        self._sync: redis.Redis | None = None
        self._async: dict[int, tuple[asyncio.AbstractEventLoop, redis.asyncio.Redis]] = {}
        self._lock = threading.Lock()

    def _key(self, key: str) -> str:
        return f"{self.prefix}:cache:{key}"

    def _client(self) -> redis.Redis:
        with self._lock:
            if self._sync is None:
                self._sync = redis.Redis.from_url(self.url, socket_timeout=2, protocol=2)
            return self._sync

    def _aclient(self) -> redis.asyncio.Redis:
        loop = asyncio.get_running_loop()
        entry = self._async.get(id(loop))
        if entry is None or entry[0] is not loop:
            client = redis.asyncio.Redis.from_url(self.url, socket_timeout=2, protocol=2)
            entry = self._async[id(loop)] = (loop, client)
        return entry[1]

    def get(self, key: str) -> str | None:
        return _text(self._client().get(self._key(key)))

    def set(self, key: str, value: str, ttl: float) -> None:
        self._client().set(self._key(key), value, ex=max(1, math.ceil(ttl)))

    async def aget(self, key: str) -> str | None:
        return _text(await self._aclient().get(self._key(key)))

    async def aset(self, key: str, value: str, ttl: float) -> None:
        await self._aclient().set(self._key(key), value, ex=max(1, math.ceil(ttl)))


def _text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value
