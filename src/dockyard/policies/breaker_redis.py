"""Circuit breaker state in Redis, shared by every process (``DOCKYARD_REDIS_URL``).

One hash per breaker (``<redis_prefix>:breaker:<provider:model>``); each step is one Lua
script, the same logic as ``breaker.check_state`` / ``record_state``, so two processes
cannot both send the half-open probe or lose a failure between them. Times are the
callers' wall clocks (the processes of one deployment agree on them well enough for
cooldowns of seconds). Imported only when Redis is configured.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import redis
import redis.asyncio

from dockyard.policies.breaker import ALLOW, Verdict
from dockyard.settings import BreakerConfig

# Returns {allowed, probe, retry_in}; retry_in as a string (Lua numbers go back as ints).
CHECK = """
local st = redis.call('HMGET', KEYS[1], 'open_until', 'probe_until')
local open_until = tonumber(st[1])
if not open_until then return {1, 0, '0'} end
local now = tonumber(ARGV[1])
if now < open_until then return {0, 0, tostring(open_until - now)} end
local probe_until = tonumber(st[2]) or 0
if probe_until > now then return {0, 0, tostring(probe_until - now)} end
redis.call('HSET', KEYS[1], 'probe_until', tostring(now + tonumber(ARGV[2])))
return {1, 1, '0'}
"""

# ARGV: now, cooldown, failures, failure_rate (0: off), window, min_calls, ok, probe, ttl_ms.
# Returns 1 when this outcome opened the breaker.
RECORD = """
local key = KEYS[1]
local now, cooldown = tonumber(ARGV[1]), tonumber(ARGV[2])
local failures, rate = tonumber(ARGV[3]), tonumber(ARGV[4])
local window, min_calls = tonumber(ARGV[5]), tonumber(ARGV[6])
local ok, probe, ttl = ARGV[7] == '1', ARGV[8] == '1', tonumber(ARGV[9])
local st = redis.call('HMGET', key, 'open_until', 'win_start', 'calls', 'failed', 'consecutive')
local tripped = false
if tonumber(st[1]) then
  if probe then
    redis.call('DEL', key)
    if not ok then
      redis.call('HSET', key, 'open_until', tostring(now + cooldown), 'probe_until', '0')
    end
  end
else
  local start = tonumber(st[2])
  local calls, failed = tonumber(st[3]) or 0, tonumber(st[4]) or 0
  local consecutive = tonumber(st[5]) or 0
  if not start or now - start >= window then start, calls, failed = now, 0, 0 end
  calls = calls + 1
  if ok then
    consecutive = 0
  else
    consecutive = consecutive + 1
    failed = failed + 1
    tripped = consecutive >= failures
      or (rate > 0 and calls >= min_calls and failed >= rate * calls)
  end
  if tripped then
    redis.call('DEL', key)
    redis.call('HSET', key, 'open_until', tostring(now + cooldown), 'probe_until', '0')
  else
    redis.call('HSET', key, 'win_start', tostring(start), 'calls', calls, 'failed', failed,
      'consecutive', consecutive)
  end
end
redis.call('PEXPIRE', key, ttl)
if tripped then return 1 end
return 0
"""


def _verdict(reply: Any) -> Verdict:
    allowed, probe, retry_in = reply
    if int(allowed) and not int(probe):
        return ALLOW
    return Verdict(bool(int(allowed)), bool(int(probe)), float(retry_in))


class RedisBreakerStore:
    """Breakers in Redis. The clients are made on first use: a synchronous one for model
    calls made from threads, an asyncio one per event loop."""

    def __init__(self, url: str, prefix: str) -> None:
        self.url = url
        self.prefix = prefix
        self._sync: redis.Redis | None = None
        self._async: dict[int, tuple[asyncio.AbstractEventLoop, redis.asyncio.Redis]] = {}
        self._lock = threading.Lock()

    def _key(self, key: str) -> str:
        return f"{self.prefix}:breaker:{key}"

    def _args(self, config: BreakerConfig, now: float, ok: bool, probe: bool) -> list[Any]:
        # Kept a while after the last outcome, then forgotten: a window and a cooldown.
        ttl_ms = int((config.window_seconds + 2 * config.cooldown_seconds) * 1000) + 60_000
        return [
            repr(now),
            repr(config.cooldown_seconds),
            config.failures,
            repr(config.failure_rate or 0),
            repr(config.window_seconds),
            config.min_calls,
            int(ok),
            int(probe),
            ttl_ms,
        ]

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

    def check(self, key: str, config: BreakerConfig, now: float) -> Verdict:
        reply = self._client().eval(CHECK, 1, self._key(key), repr(now), config.cooldown_seconds)
        return _verdict(reply)

    def record(self, key: str, config: BreakerConfig, now: float, ok: bool, probe: bool) -> bool:
        args = self._args(config, now, ok, probe)
        return bool(self._client().eval(RECORD, 1, self._key(key), *args))

    async def acheck(self, key: str, config: BreakerConfig, now: float) -> Verdict:
        client = self._aclient()
        reply = await client.eval(CHECK, 1, self._key(key), repr(now), config.cooldown_seconds)
        return _verdict(reply)

    async def arecord(
        self, key: str, config: BreakerConfig, now: float, ok: bool, probe: bool
    ) -> bool:
        args = self._args(config, now, ok, probe)
        return bool(await self._aclient().eval(RECORD, 1, self._key(key), *args))

    async def aopen(self) -> dict[str, float]:
        client = self._aclient()
        prefix = self._key("")
        out: dict[str, float] = {}
        async for name in client.scan_iter(match=f"{prefix}*", count=500):
            name = name.decode() if isinstance(name, bytes) else name
            value = await client.hget(name, "open_until")
            if value is not None:
                out[name.removeprefix(prefix)] = float(value)
        return out

    async def aclose(self) -> None:
        """Close the synchronous client and this loop's (the others close with their loops)."""
        entry = self._async.pop(id(asyncio.get_running_loop()), None)
        if entry is not None:
            await entry[1].aclose()
        with self._lock:
            if self._sync is not None:
                self._sync.close()
                self._sync = None
