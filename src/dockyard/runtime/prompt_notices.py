"""With ``redis_url``: a registry write through this process's API tells every other
process at once (Redis pub/sub), instead of waiting for their next revision poll.

The poll (``prompts/cache.py``) stays the guarantee: a notice lost while Redis is away,
or a write from the CLI (which publishes nothing), is still picked up within
``prompts.refresh_seconds``. Imported only when ``redis_url`` is set.
"""

from __future__ import annotations

import asyncio
import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError

from dockyard.prompts.cache import PromptCache
from dockyard.runtime.components import BackgroundTask

log = logging.getLogger("dockyard.prompts")


class RedisPromptNotices:
    def __init__(self, redis: Redis, prefix: str, cache: PromptCache) -> None:
        self._redis = redis
        self._channel = f"{prefix}:prompts"
        self.cache = cache
        self._listener = BackgroundTask("dockyard-prompt-notices", self._listen)
        self.connected = asyncio.Event()

    async def publish(self) -> None:
        try:
            await self._redis.publish(self._channel, b"changed")
        except RedisError as e:
            log.warning("prompt change notice not sent (%s); others see it by polling", e)

    async def start(self) -> None:
        await self._listener.start()

    async def stop(self) -> None:
        await self._listener.stop()

    async def _listen(self) -> None:
        while True:
            try:
                async with self._redis.pubsub(ignore_subscribe_messages=True) as ps:
                    await ps.subscribe(self._channel)
                    self.connected.set()
                    async for _ in ps.listen():
                        await self._refresh()
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as e:
                self.connected.clear()
                log.warning("prompt change notices lost (%s); reconnecting in 1s", e)
                await asyncio.sleep(1.0)

    async def _refresh(self) -> None:
        try:
            await self.cache.refresh()
        except Exception as e:  # the database is away: the poll logs it and retries
            log.debug("prompt refresh on notice failed: %s", e)
