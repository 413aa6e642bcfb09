"""Rate limits per API key and per tenant (``policies.rate_limit``): requests per minute,
enforced here on every API route (``RateLimit``), and model tokens per minute, which the
model layer checks before a call and charges after it (``RateLimiter.check_tokens`` /
``consume_tokens``).

The algorithm is GCRA, the generic cell rate algorithm (as in redis-cell and Stripe's
limiter): a bucket stores one number, its theoretical arrival time (TAT), the moment all
of its limit would be available again if nothing more arrived. A limit of L per minute
frees one unit every 60/L seconds and holds a minute's worth: a cost c is admitted when
``max(TAT, now) + c * 60/L - now <= 60 s``. So L requests may come at once, then one every
60/L seconds; a weighted cost (n tokens) is one update like a single request.

Where buckets live: in this process by default (``MemoryStore``); with ``redis_url`` in
Redis (``RedisStore``): one Lua script decides and updates every bucket of a call at once,
on Redis's clock, so any number of processes share each limit exactly.

Who is counted (``Identity``): the request's caller (``dockyard.caller.current()``, set by
the auth layer, which runs first): its key's id (never the key), its tenant and, for a key
with limits of its own (``policies.rate_limit`` stored with the key), those (their fields
replace the defaults one by one). Without a key: the client's address.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dockyard import events
from dockyard.caller import Caller, current
from dockyard.errors import RateLimitedError, rate_limit_headers
from dockyard.settings import RateLimitConfig, RateLimits, Settings

if TYPE_CHECKING:
    from redis.asyncio import Redis

PERIOD_SECONDS = 60  # every limit is per minute
_US = 1_000_000
# Redis's clock is read as microseconds since 2025-01-01, not 1970: the floats stay
# fine-grained (1/256 µs today), and a TAT in cells stays below 2**53, where adding whole
# cells is exact, for 17 years at the highest limit allowed (10**9 a minute).
_ORIGIN = 1_735_689_600

# take: admit the cost only if every bucket has room; peek: say whether it would be
# admitted, change nothing; force: charge it whatever the outcome (tokens already used).
Mode = Literal["take", "peek", "force"]

# Not limited: probes, metrics and the API's own documentation.
EXEMPT_PATHS = frozenset(
    {"/ok", "/health", "/ready", "/metrics"}
    | {"/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"}
)


@dataclass(frozen=True, slots=True)
class Bucket:
    """One counter: ``key`` names it in the store, ``label`` in messages (never a secret).

    Its TAT is kept in cells (intervals of 60/limit s), so each unit charged adds exactly
    1 and a burst of ``limit`` is exactly ``limit``, whatever float 60/limit is."""

    key: str
    limit: int  # units per minute
    label: str
    interval_us: float = field(init=False)
    # Within a microsecond (clock rounding) counts as in time; never half a cell, so a
    # burst never admits one more than the limit.
    bound: float = field(init=False)

    def __post_init__(self) -> None:
        interval = PERIOD_SECONDS * _US / self.limit
        object.__setattr__(self, "interval_us", interval)
        object.__setattr__(self, "bound", self.limit + min(1.0 / interval, 0.5))


@dataclass(frozen=True)
class Outcome:
    """What a store did: its clock (µs), each bucket's TAT (cells) before the call, and
    whether the cost fit every bucket."""

    allowed: bool
    now_us: float
    tats: list[float]


@dataclass(frozen=True)
class Decision:
    """The answer for one call, told by the bucket that matters most: the refusing bucket
    that frees up last, or, when admitted, the one with the least room left."""

    allowed: bool
    bucket: Bucket
    remaining: int  # units that fit now
    retry_after: float  # seconds until the cost fits (0 when admitted)
    reset_after: float  # seconds until the bucket is full again

    def headers(self) -> dict[str, str]:
        """``X-RateLimit-*``; Reset in epoch seconds, as GitHub sends it."""
        return rate_limit_headers(self.bucket.limit, self.remaining, time.time() + self.reset_after)


def decide(outcome: Outcome, buckets: Sequence[Bucket], cost: int, mode: Mode) -> Decision:
    """The decision a store's ``outcome`` means. After a ``force``, ``allowed`` and
    ``retry_after`` are about the next unit: whether one fits now, and when."""
    applied = mode == "force" or (mode == "take" and outcome.allowed)
    best: tuple[float, int, float, Bucket] | None = None  # retry, -remaining, full in, bucket
    for bucket, tat in zip(buckets, outcome.tats, strict=True):
        step, bound = bucket.interval_us, bucket.bound
        now = outcome.now_us / step  # the stores' own division: the same float
        after = tat + cost if applied else tat
        level = (after + 1 if mode == "force" else tat + cost) - now
        # For take and peek, the stores' test term for term; from the bound with its
        # slack, so that the header's whole seconds never end early.
        retry = 0.0 if level <= bound else (level - bound) * step / _US
        remaining = min(max(math.floor(bound - (after - now)), 0), bucket.limit)
        candidate = (retry, -remaining, max(after - now, 0.0) * step / _US, bucket)
        if best is None or candidate[:2] > best[:2]:
            best = candidate
    assert best is not None, "decide() needs a bucket"
    retry, neg_remaining, reset_after, bucket = best
    return Decision(retry == 0.0, bucket, -neg_remaining, retry, reset_after)


class LimitStore(Protocol):
    async def update(self, buckets: Sequence[Bucket], cost: int, mode: Mode) -> Outcome: ...

    async def aclose(self) -> None: ...


class MemoryStore:
    """Buckets in this process's memory (the embedded default). ``clock``: seconds, read
    from when the store was made."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._origin = clock()
        self._tats: dict[str, tuple[float, float]] = {}  # key -> (TAT, when full in µs)
        self._prune_at = 1024

    async def update(self, buckets: Sequence[Bucket], cost: int, mode: Mode) -> Outcome:
        now_us = (self._clock() - self._origin) * _US
        tats = []
        allowed = True
        for b in buckets:
            now = now_us / b.interval_us
            entry = self._tats.get(b.key)
            tat = now if entry is None or entry[0] < now else entry[0]
            tats.append(tat)
            allowed = allowed and tat + cost - now <= b.bound
        if mode == "force" or (mode == "take" and allowed):
            for b, t in zip(buckets, tats, strict=True):
                self._tats[b.key] = (t + cost, (t + cost) * b.interval_us)
            if len(self._tats) >= self._prune_at:
                self._prune(now_us)
        return Outcome(allowed, now_us, tats)

    def _prune(self, now_us: float) -> None:
        # A bucket whose TAT has passed is full: the same as no entry. Pruning when the
        # table has doubled keeps the cost per call constant.
        self._tats = {k: v for k, v in self._tats.items() if v[1] > now_us}
        self._prune_at = max(1024, 2 * len(self._tats))

    async def aclose(self) -> None:
        self._tats.clear()


# KEYS: the buckets. ARGV: mode, cost, now (µs since _ORIGIN; '' = Redis's clock), then
# each bucket's interval (µs) and bound (cells). The same test as MemoryStore.update, for
# every bucket at once; floats go out as strings (Redis truncates Lua numbers).
_LUA = """
local mode, cost = ARGV[1], tonumber(ARGV[2])
local now
if ARGV[3] == '' then
  local t = redis.call('TIME')
  now = (tonumber(t[1]) - ORIGIN) * 1000000 + tonumber(t[2])
else
  now = tonumber(ARGV[3])
end
local tats, nows, allowed = {}, {}, 1
for i, key in ipairs(KEYS) do
  local n = now / tonumber(ARGV[2 + 2 * i])
  local tat = tonumber(redis.call('GET', key)) or n
  if tat < n then tat = n end
  tats[i], nows[i] = tat, n
  if tat + cost - n > tonumber(ARGV[3 + 2 * i]) then allowed = 0 end
end
local out = {allowed, string.format('%.17g', now)}
for i, key in ipairs(KEYS) do
  out[#out + 1] = string.format('%.17g', tats[i])
  if mode == 'force' or (mode == 'take' and allowed == 1) then
    local new = tats[i] + cost
    local ttl = math.ceil((new - nows[i]) * tonumber(ARGV[2 + 2 * i]) / 1000)
    if ttl > 0 then redis.call('SET', key, string.format('%.17g', new), 'PX', ttl) end
  end
end
return out
""".replace("ORIGIN", str(_ORIGIN))


class RedisStore:
    """Buckets in Redis, shared by every process on the same ``redis_prefix``; each bucket
    expires once full. ``clock`` (seconds) replaces Redis's clock, for tests."""

    def __init__(
        self, redis: Redis, prefix: str, *, clock: Callable[[], float] | None = None
    ) -> None:
        self._redis = redis
        self._script = redis.register_script(_LUA)
        self._prefix = f"{prefix}:ratelimit:"
        self._clock = clock

    @classmethod
    def from_url(cls, url: str, prefix: str) -> RedisStore:
        from redis.asyncio import Redis  # check_layout has made sure it is installed

        return cls(
            Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5, protocol=2), prefix
        )

    async def update(self, buckets: Sequence[Bucket], cost: int, mode: Mode) -> Outcome:
        now = "" if self._clock is None else repr((self._clock() - _ORIGIN) * _US)
        args: list[str | int] = [mode, cost, now]
        for b in buckets:
            args += [repr(b.interval_us), repr(b.bound)]
        reply: list[Any] = await self._script(
            keys=[self._prefix + b.key for b in buckets], args=args
        )
        allowed, now_us, *tats = reply
        return Outcome(int(allowed) == 1, float(now_us), [float(t) for t in tats])

    async def aclose(self) -> None:
        await self._redis.aclose()


@dataclass(frozen=True)
class Identity:
    """Who a call counts against: ``subject`` is ``key:<id>`` or ``addr:<client
    address>``; ``limits``: the key's own, when it has any."""

    subject: str
    tenant: str | None = None
    limits: RateLimits | None = None

    @classmethod
    def of_key(
        cls, key_id: str, tenant: str | None = None, limits: RateLimits | None = None
    ) -> Identity:
        return cls(f"key:{key_id}", tenant, limits)

    @property
    def label(self) -> str:
        kind = self.subject.partition(":")[0]
        return "this API key" if kind == "key" else "this client address"


def identity_of(scope: Scope) -> Identity:
    """The caller of an HTTP request (see the module doc)."""
    return identity(current(), scope)


def identity(who: Caller | None, scope: Scope | None = None) -> Identity:
    if who is not None and who.key_id is not None:
        own = who.policies.get("rate_limit")
        limits = RateLimits.model_validate(own) if own else None
        return Identity.of_key(who.key_id, who.tenant, limits)
    client = scope.get("client") if scope is not None else None
    return Identity(f"addr:{client[0] if client else 'unknown'}")


class RateLimiter:
    """The limits of ``config`` counted in ``store``: what the middleware and the model
    layer call. Each method returns None when no limit of its kind applies."""

    def __init__(self, config: RateLimitConfig, store: LimitStore) -> None:
        self.config = config
        self.store = store
        # Building a caller's buckets costs more than checking them: kept per caller,
        # forgotten all at once when there are many.
        self._buckets: dict[tuple[str, str, str | None, int | None], tuple[Bucket, ...]] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimiter | None:
        """The process's limiter: None without ``policies.rate_limit``; in Redis with
        ``redis_url``, else in memory."""
        config = settings.policies.rate_limit
        if config is None:
            return None
        if settings.redis_url:
            return cls(config, RedisStore.from_url(settings.redis_url, settings.redis_prefix))
        return cls(config, MemoryStore())

    def buckets(
        self, identity: Identity, kind: Literal["requests", "tokens"]
    ) -> tuple[Bucket, ...]:
        """The buckets a call of ``kind`` counts in: the caller's, and its tenant's."""
        field = f"{kind}_per_minute"
        own = getattr(identity.limits, field, None) if identity.limits is not None else None
        cache_key = (kind, identity.subject, identity.tenant, own)
        if (cached := self._buckets.get(cache_key)) is not None:
            return cached
        limit: int | None = own if own is not None else getattr(self.config, field)
        out = []
        if limit is not None:
            # The limit is in the key: a changed limit starts a fresh bucket rather than
            # reading cells of another size.
            out.append(Bucket(f"{kind}:{limit}:{identity.subject}", limit, identity.label))
        tenant_limit = getattr(self.config.tenant, field, None) if self.config.tenant else None
        if identity.tenant is not None and tenant_limit is not None:
            out.append(
                Bucket(
                    f"{kind}:{tenant_limit}:tenant:{identity.tenant}",
                    tenant_limit,
                    f"tenant {identity.tenant!r}",
                )
            )
        if len(self._buckets) >= 10_000:
            self._buckets.clear()
        self._buckets[cache_key] = result = tuple(out)
        return result

    async def check_request(self, identity: Identity) -> Decision | None:
        """Count one request; raise ``RateLimitedError`` when a bucket is full."""
        return await self._take(identity, "requests", 1, "take")

    async def check_tokens(self, identity: Identity, n: int = 1) -> Decision | None:
        """Before a model call: raise ``RateLimitedError`` unless ``n`` tokens (an estimate
        of the call's) fit now. Charges nothing: ``consume_tokens`` does, after the call."""
        return await self._take(identity, "tokens", n, "peek")

    async def consume_tokens(self, identity: Identity, n: int) -> Decision | None:
        """After a model call: charge the ``n`` tokens it used, even past the limit (they
        were spent); later calls wait until the bucket has drained below it."""
        if n < 0:
            raise ValueError(f"tokens used must be >= 0, got {n}")
        buckets = self.buckets(identity, "tokens")
        if not buckets:
            return None
        return decide(await self.store.update(buckets, n, "force"), buckets, n, "force")

    async def _take(
        self, identity: Identity, kind: Literal["requests", "tokens"], cost: int, mode: Mode
    ) -> Decision | None:
        buckets = self.buckets(identity, kind)
        if not buckets:
            return None
        decision = decide(await self.store.update(buckets, cost, mode), buckets, cost, mode)
        if not decision.allowed:
            events.emit("rate_limited", limit=kind)
            raise _refusal(decision, kind, cost)
        return decision

    async def aclose(self) -> None:
        await self.store.aclose()


def _refusal(decision: Decision, kind: str, cost: int) -> RateLimitedError:
    bucket = decision.bucket
    limit = f"{bucket.limit} {kind} per minute for {bucket.label}"
    if cost > bucket.limit:
        # Never fits: waiting does not help, so no Retry-After.
        message = f"this call's {cost} {kind} are over the rate limit of {limit}; send fewer"
        retry_after = None
    else:
        message = f"rate limit of {limit} reached; retry in {math.ceil(decision.retry_after)} s"
        retry_after = decision.retry_after
    return RateLimitedError(
        message,
        retry_after=retry_after,
        limit=bucket.limit,
        remaining=decision.remaining,
        reset_at=time.time() + decision.reset_after,
    )


def _path(scope: Scope) -> str:
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


class RateLimit:
    """ASGI middleware: requests per minute on every route but ``exempt``. An admitted
    response carries the ``X-RateLimit-*`` headers; a refusal raises ``RateLimitedError``,
    which the app answers in the route family's shape (api/app.py's ``CatchAll``)."""

    def __init__(
        self, app: ASGIApp, *, limiter: RateLimiter, exempt: frozenset[str] = EXEMPT_PATHS
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _path(scope) in self.exempt:
            await self.app(scope, receive, send)
            return
        decision = await self.limiter.check_request(identity_of(scope))
        if decision is None:
            await self.app(scope, receive, send)
            return
        extra = [(k.lower().encode(), v.encode()) for k, v in decision.headers().items()]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


__all__ = [
    "EXEMPT_PATHS",
    "Bucket",
    "Decision",
    "Identity",
    "LimitStore",
    "MemoryStore",
    "RateLimit",
    "RateLimiter",
    "RedisStore",
    "decide",
    "identity_of",
]
