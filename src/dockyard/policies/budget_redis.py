"""Budget holds in Redis, shared by every process on one ``redis_prefix``: each hold and
each settle is one Lua script over all of its budget lines at once.

Per line and period, one hash ``<prefix>:budget:<line name>`` holds ``spent`` (nano-USD),
``held`` (the sum of live holds), ``h:<hold id>`` (each hold's amount) and ``m:<share>``
(thresholds reached), and a sorted set ``…:exp`` the holds' expiry times; both expire a
day after their period. ``<prefix>:budget:hold:<id>`` records a hold's lines and limits
until it is settled (for a settle that comes after the hold expired).

``spent`` is read from the ledger the first time a line is used in a period (the script
answers which lines have no counter; the caller reads the ledger and runs it again),
then raised by each settle. A settle that finds no counter seeds it from the ledger,
which has the settled cost by then; so a ledger read racing a settle never loses that
cost (at worst one cost counts twice until the period ends: refusing early, never
overspending).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from dockyard.storage.budgets import (
    BudgetLine,
    Crossing,
    Ledger,
    Shortfall,
    parse_name,
    period_end,
    period_start,
)

if TYPE_CHECKING:
    from redis.asyncio import Redis

_KEEP_MS = 86_400_000  # a line's keys outlive their period by a day
_KEEP_RECORD = timedelta(days=2)

# KEYS: per line its hash and expiry set, then the hold's record. ARGV: hold id, amount,
# now (ms), the hold's expiry (ms), the record's expiry (ms), then per line: limit, seed
# ('' = none), the keys' expiry (ms), name. Answers {1} held, {-1} the id is taken,
# {0, i...} lines i have no counter (seed them), {2, i, spent, held} line i has no room.
_HOLD = """
local id, amount, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local n = (#KEYS - 1) / 2
local record = KEYS[#KEYS]
if redis.call('EXISTS', record) == 1 then return {-1} end
local missing, spent, held = {0}, {}, {}
for i = 1, n do
  local h, z, a = KEYS[2 * i - 1], KEYS[2 * i], 5 + 4 * (i - 1)
  local gone = redis.call('ZRANGEBYSCORE', z, '-inf', now)
  for _, hid in ipairs(gone) do
    local amt = redis.call('HGET', h, 'h:' .. hid)
    if amt then
      redis.call('HINCRBY', h, 'held', '-' .. amt)
      redis.call('HDEL', h, 'h:' .. hid)
    end
  end
  if #gone > 0 then redis.call('ZREMRANGEBYSCORE', z, '-inf', now) end
  local s = redis.call('HGET', h, 'spent')
  if not s and ARGV[a + 2] ~= '' then
    s = ARGV[a + 2]
    redis.call('HSET', h, 'spent', s)
    redis.call('PEXPIREAT', h, ARGV[a + 3])
  end
  if not s then missing[#missing + 1] = i end
  spent[i] = tonumber(s or 0)
  held[i] = tonumber(redis.call('HGET', h, 'held') or 0)
end
if #missing > 1 then return missing end
for i = 1, n do
  if spent[i] + held[i] + tonumber(amount) > tonumber(ARGV[5 + 4 * (i - 1) + 1]) then
    return {2, i, tostring(spent[i]), tostring(held[i])}
  end
end
for i = 1, n do
  local h, z, a = KEYS[2 * i - 1], KEYS[2 * i], 5 + 4 * (i - 1)
  redis.call('HSET', h, 'h:' .. id, amount)
  redis.call('HINCRBY', h, 'held', amount)
  redis.call('ZADD', z, ARGV[4], id)
  redis.call('PEXPIREAT', h, ARGV[a + 3])
  redis.call('PEXPIREAT', z, ARGV[a + 3])
  redis.call('HSET', record, ARGV[a + 4], ARGV[a + 1])
end
redis.call('PEXPIREAT', record, ARGV[5])
return {1}
"""

# KEYS: the hold's record, then per line the reserved period's hash and expiry set and the
# current period's hash. ARGV: hold id, cost, the number of thresholds k, the k thresholds,
# then per line: limit, seed ('' = none), the current keys' expiry (ms). Answers
# {missing lines...} and, after a 0, {i, threshold, spent} per threshold reached first.
_SETTLE = """
local id, cost, k = ARGV[1], ARGV[2], tonumber(ARGV[3])
local n = (#KEYS - 1) / 3
local missing, crossed = {}, {}
for i = 1, n do
  local rh, rz, ch = KEYS[3 * i - 1], KEYS[3 * i], KEYS[3 * i + 1]
  local a = 3 + k + 3 * (i - 1)
  local amt = redis.call('HGET', rh, 'h:' .. id)
  if amt then
    redis.call('HINCRBY', rh, 'held', '-' .. amt)
    redis.call('HDEL', rh, 'h:' .. id)
  end
  redis.call('ZREM', rz, id)
  local s = redis.call('HGET', ch, 'spent')
  if s then
    s = redis.call('HINCRBY', ch, 'spent', cost)
  elseif ARGV[a + 2] ~= '' then
    s = ARGV[a + 2]
    redis.call('HSET', ch, 'spent', s)
  end
  if not s then
    missing[#missing + 1] = i
  else
    redis.call('PEXPIREAT', ch, ARGV[a + 3])
    local limit = tonumber(ARGV[a + 1])
    for j = 1, k do
      local t = ARGV[3 + j]
      if tonumber(s) >= tonumber(t) * limit and redis.call('HSETNX', ch, 'm:' .. t, 1) == 1 then
        crossed[#crossed + 1] = i
        crossed[#crossed + 1] = t
        crossed[#crossed + 1] = tostring(s)
      end
    end
  end
end
if #missing == 0 then redis.call('DEL', KEYS[1]) end
local out = missing
out[#out + 1] = 0
for _, v in ipairs(crossed) do out[#out + 1] = v end
return out
"""

# KEYS: the hold's record, then per line its hash and expiry set. ARGV: the hold id.
_RELEASE = """
for i = 2, #KEYS, 2 do
  local amt = redis.call('HGET', KEYS[i], 'h:' .. ARGV[1])
  if amt then
    redis.call('HINCRBY', KEYS[i], 'held', '-' .. amt)
    redis.call('HDEL', KEYS[i], 'h:' .. ARGV[1])
  end
  redis.call('ZREM', KEYS[i + 1], ARGV[1])
end
redis.call('DEL', KEYS[1])
return 1
"""


def _ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


class RedisBudgets:
    """``BudgetStore`` in Redis; ``ledger`` gives a scope's spend since a time (the
    database's ledger, storage/sql/budgets.py)."""

    def __init__(self, redis: Redis, prefix: str, ledger: Ledger, *, owns: bool = False) -> None:
        self._redis = redis
        self._owns = owns  # close the client with the store (else its owner does)
        self._prefix = f"{prefix}:budget:"
        self._ledger = ledger
        self._hold = redis.register_script(_HOLD)
        self._settle = redis.register_script(_SETTLE)
        self._release = redis.register_script(_RELEASE)

    @classmethod
    def from_url(cls, url: str, prefix: str, ledger: Ledger) -> RedisBudgets:
        from redis.asyncio import Redis

        return cls(
            Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5, protocol=2),
            prefix,
            ledger,
            owns=True,
        )

    def _key(self, name: str) -> str:
        return self._prefix + name

    def _record(self, hold_id: str) -> str:
        return f"{self._prefix}hold:{hold_id}"

    async def hold(
        self,
        hold_id: str,
        lines: Sequence[BudgetLine],
        amount: int,
        *,
        now: datetime,
        ttl: float,
    ) -> Shortfall | None:
        keys: list[str] = []
        for line in lines:
            keys += [self._key(line.name(now)), self._key(line.name(now)) + ":exp"]
        keys.append(self._record(hold_id))
        forget = max(period_end(line.period, now) for line in lines) + _KEEP_RECORD
        seeds: dict[int, int] = {}
        while True:
            args: list[Any] = [
                hold_id,
                amount,
                _ms(now),
                _ms(now + timedelta(seconds=ttl)),
                _ms(max(forget, now + timedelta(seconds=ttl) + _KEEP_RECORD)),
            ]
            for i, line in enumerate(lines, 1):
                seed = seeds.get(i)
                args += [
                    line.limit,
                    "" if seed is None else seed,
                    _ms(period_end(line.period, now)) + _KEEP_MS,
                    line.name(now),
                ]
            reply = [int(x) for x in await self._hold(keys=keys, args=args)]
            if reply[0] == 1:
                return None
            if reply[0] == -1:
                raise ValueError(f"hold {hold_id!r} exists")
            if reply[0] == 2:
                return Shortfall(lines[reply[1] - 1], reply[2], reply[3])
            for i in reply[1:]:
                line = lines[i - 1]
                seeds[i] = await self._ledger(line.scope, period_start(line.period, now))

    async def settle(
        self, hold_id: str, cost: int, *, now: datetime, thresholds: Sequence[float]
    ) -> list[Crossing]:
        lines = await self._recorded(hold_id)
        if not lines:
            return []
        shares = [repr(float(t)) for t in thresholds]
        seeds: dict[int, int] = {}
        todo = list(range(1, len(lines) + 1))
        out: list[Crossing] = []
        while todo:
            keys = [self._record(hold_id)]
            args: list[Any] = [hold_id, cost, len(shares), *shares]
            for i in todo:
                name, line = lines[i - 1]
                keys += [self._key(name), self._key(name) + ":exp", self._key(line.name(now))]
                seed = seeds.get(i)
                args += [
                    line.limit,
                    "" if seed is None else seed,
                    _ms(period_end(line.period, now)) + _KEEP_MS,
                ]
            reply: list[Any] = await self._settle(keys=keys, args=args)
            split = reply.index(0)
            missing = [todo[int(j) - 1] for j in reply[:split]]
            rest = reply[split + 1 :]
            for j in range(0, len(rest), 3):
                line = lines[todo[int(rest[j]) - 1] - 1][1]
                share = float(rest[j + 1])
                start = period_start(line.period, now)
                out.append(Crossing(line, share, int(rest[j + 2]), start))
            for i in missing:
                line = lines[i - 1][1]
                seeds[i] = await self._ledger(line.scope, period_start(line.period, now))
            todo = missing
        return out

    async def _recorded(self, hold_id: str) -> list[tuple[str, BudgetLine]]:
        """(name in the period held, line) of each line the hold is on."""
        raw: dict[Any, Any] = await self._redis.hgetall(self._record(hold_id))  # type: ignore[misc]
        out = []
        for name_b, limit_b in sorted(raw.items()):
            name = name_b.decode()
            scope, period, _ = parse_name(name)
            out.append((name, BudgetLine(scope, period, int(limit_b))))
        return out

    async def lines(self, hold_id: str) -> list[BudgetLine]:
        return [line for _, line in await self._recorded(hold_id)]

    async def release(self, hold_id: str) -> None:
        record = self._record(hold_id)
        raw: dict[Any, Any] = await self._redis.hgetall(record)  # type: ignore[misc]
        keys = [record]
        for name_b in sorted(raw):
            keys += [self._key(name_b.decode()), self._key(name_b.decode()) + ":exp"]
        await self._release(keys=keys, args=[hold_id])

    async def spent(self, line: BudgetLine, now: datetime) -> int:
        value = await self._redis.hget(self._key(line.name(now)), "spent")  # type: ignore[misc]
        if value is not None:
            return int(value)
        return await self._ledger(line.scope, period_start(line.period, now))

    async def aclose(self) -> None:
        if self._owns:
            await self._redis.aclose()
