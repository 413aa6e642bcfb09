"""Signals between processes over Redis pub/sub (see ``signals`` for what they carry).

Imported only when ``redis_url`` is set: redis-py comes with the ``redis`` extra.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import TYPE_CHECKING

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from dockyard.runtime.components import BackgroundTask

if TYPE_CHECKING:
    from dockyard.runtime.attempt import CancelAction
    from dockyard.runtime.executor import Executor
    from dockyard.runtime.redis_broker import RedisBroker

log = logging.getLogger("dockyard.signals")


class RedisSignals:
    def __init__(
        self,
        redis: Redis,
        prefix: str,
        executor: Executor | None,
        broker: RedisBroker | None = None,
    ) -> None:
        self._redis = redis
        # Wake-ups ride with the broker's next write: a run's creator has just queued
        # its first event, so the wake-up costs no round trip of its own.
        self._broker = broker
        self._channel = f"{prefix}:signals"
        self.executor = executor
        self._listener = BackgroundTask("dockyard-signals", self._listen)
        self.connected = asyncio.Event()

    async def wake(self, due: datetime | None = None) -> None:
        if self.executor is not None:
            self.executor.wake(due)
        msg = {"t": "wake"}
        if due is not None:
            msg["due"] = due.isoformat()
        if self._broker is not None:
            self._broker.send_with_next_batch(self._channel, orjson.dumps(msg))
            return
        await self._send(msg)

    async def cancel(self, run_id: str, action: CancelAction) -> None:
        await self._send({"t": "cancel", "run_id": run_id, "action": action})

    async def _send(self, msg: dict[str, str]) -> None:
        try:
            await self._redis.publish(self._channel, orjson.dumps(msg))
        except RedisError as e:
            # Workers poll and heartbeats carry cancel requests: late, not lost.
            log.warning("redis publish failed (%s); workers will notice by polling", e)

    async def start(self) -> None:
        """Listen for signals (only processes that execute runs need to)."""
        if self.executor is not None:
            await self._listener.start()

    async def stop(self) -> None:
        await self._listener.stop()

    async def _listen(self) -> None:
        assert self.executor is not None
        executor = self.executor
        while True:
            try:
                async with self._redis.pubsub(ignore_subscribe_messages=True) as ps:
                    await ps.subscribe(self._channel)
                    self.connected.set()
                    executor.wake()  # anything sent while we were not listening
                    async for msg in ps.listen():
                        await self._handle(executor, msg.get("data"))
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as e:
                self.connected.clear()
                log.warning("redis signals lost (%s); reconnecting in 1s", e)
                await asyncio.sleep(1.0)

    @staticmethod
    async def _handle(executor: Executor, data: object) -> None:
        if not isinstance(data, bytes | str):
            return
        try:
            msg = orjson.loads(data)
        except orjson.JSONDecodeError:
            return
        if msg.get("t") == "wake":
            due = msg.get("due")
            executor.wake(datetime.fromisoformat(due) if isinstance(due, str) else None)
        elif msg.get("t") == "cancel" and msg.get("action") in ("interrupt", "rollback"):
            executor.cancel(msg["run_id"], msg["action"])
