"""A circuit breaker per provider + model, its state in this process or in Redis.

Closed, calls go through and their outcomes are counted. It opens after
``breaker.failures`` failures in a row, or, with ``breaker.failure_rate`` set, when that
share of the calls of the current window (``window_seconds``, fixed windows) failed once
``min_calls`` were made. Open, calls are refused at once (the fallbacks answer). After
``cooldown_seconds`` it is half-open: one call, the probe, goes through (a probe that
never reports, its process gone, frees its place after another cooldown); its success
closes the breaker, its failure opens it for another cooldown.

Only what another attempt might not meet counts as a failure (``retry.is_retryable``):
a provider answering "bad request" is up. The state lives in a ``BreakerStore``: in
this process (``MemoryBreakerStore``), or in Redis when ``DOCKYARD_REDIS_URL`` is set
(``breaker_redis.RedisBreakerStore``), so that every process sees a breaker open. A
store that cannot be reached lets calls through: the breaker protects the provider, it
must not become the outage.

Why not a breaker library: pybreaker's async support needs Tornado and its Redis store
is synchronous; purgatory and aiobreaker count consecutive failures only. The state
machine is the part of a breaker that is small; here it is one function per step,
mirrored by one Lua script each in Redis.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from dockyard import events
from dockyard.settings import BreakerConfig

log = logging.getLogger("dockyard.policies.breaker")


@dataclass(frozen=True)
class Verdict:
    """May a call go now? ``probe``: it is the half-open breaker's one trial call.
    ``retry_in``: when refused, seconds until a probe may go."""

    allowed: bool
    probe: bool = False
    retry_in: float = 0.0


ALLOW = Verdict(True)


class BreakerOpenError(Exception):
    """The breaker of ``key`` refused the call; ``retry_in`` seconds until it probes."""

    def __init__(self, key: str, retry_in: float) -> None:
        super().__init__(f"circuit breaker open for {key} (probes in {retry_in:.1f}s)")
        self.key = key
        self.retry_in = retry_in


class BreakerStore(Protocol):
    """Where breakers keep their state; each method is one atomic step."""

    def check(self, key: str, config: BreakerConfig, now: float) -> Verdict: ...

    def record(self, key: str, config: BreakerConfig, now: float, ok: bool, probe: bool) -> bool:
        """Count one outcome; True when it opened the breaker."""
        ...

    async def acheck(self, key: str, config: BreakerConfig, now: float) -> Verdict: ...

    async def arecord(
        self, key: str, config: BreakerConfig, now: float, ok: bool, probe: bool
    ) -> bool: ...


@dataclass
class BreakerState:
    """One breaker's state; ``open_until`` None means closed."""

    open_until: float | None = None
    probe_until: float = 0.0
    consecutive: int = 0
    window_start: float | None = None
    calls: int = 0
    failed: int = 0


def check_state(state: BreakerState, config: BreakerConfig, now: float) -> Verdict:
    if state.open_until is None:
        return ALLOW
    if now < state.open_until:
        return Verdict(False, retry_in=state.open_until - now)
    if state.probe_until > now:
        return Verdict(False, retry_in=state.probe_until - now)
    state.probe_until = now + config.cooldown_seconds
    return Verdict(True, probe=True)


def record_state(
    state: BreakerState, config: BreakerConfig, now: float, ok: bool, probe: bool
) -> bool:
    if state.open_until is not None:
        # Open: only the probe's outcome counts (others started before it opened).
        if probe:
            _reset(state, open_until=None if ok else now + config.cooldown_seconds)
        return False
    if state.window_start is None or now - state.window_start >= config.window_seconds:
        state.window_start, state.calls, state.failed = now, 0, 0
    state.calls += 1
    if ok:
        state.consecutive = 0
        return False
    state.consecutive += 1
    state.failed += 1
    rate = config.failure_rate
    tripped = state.consecutive >= config.failures or (
        rate is not None and state.calls >= config.min_calls and state.failed >= rate * state.calls
    )
    if tripped:
        _reset(state, open_until=now + config.cooldown_seconds)
    return tripped


def _reset(state: BreakerState, open_until: float | None) -> None:
    """Closed with fresh counts, or open until ``open_until`` with no probe out."""
    state.open_until, state.probe_until = open_until, 0.0
    state.consecutive = state.calls = state.failed = 0
    state.window_start = None


class MemoryBreakerStore:
    """Breakers of this process only (the embedded default)."""

    def __init__(self) -> None:
        self._states: dict[str, BreakerState] = {}
        self._lock = threading.Lock()  # sync model calls run in worker threads

    def check(self, key: str, config: BreakerConfig, now: float) -> Verdict:
        with self._lock:
            state = self._states.get(key)
            return ALLOW if state is None else check_state(state, config, now)

    def record(self, key: str, config: BreakerConfig, now: float, ok: bool, probe: bool) -> bool:
        with self._lock:
            state = self._states.setdefault(key, BreakerState())
            return record_state(state, config, now, ok, probe)

    async def acheck(self, key: str, config: BreakerConfig, now: float) -> Verdict:
        return self.check(key, config, now)

    async def arecord(
        self, key: str, config: BreakerConfig, now: float, ok: bool, probe: bool
    ) -> bool:
        return self.record(key, config, now, ok, probe)


class CircuitBreaker:
    """The breaker of one provider + model (``key``), as one model's calls use it."""

    def __init__(
        self,
        key: str,
        config: BreakerConfig,
        store: BreakerStore,
        clock: Callable[[], float] = time.time,
        name: str | None = None,
    ) -> None:
        self.key = key
        self.config = config
        self.store = store
        self._clock = clock
        # The model's name under `models:`, for the "breaker" event (the key has a URL).
        self.name = name or key
        events.emit("breaker", model=self.name, state="closed")

    def _refuse(self, verdict: Verdict) -> bool:
        if not verdict.allowed:
            events.emit("breaker", model=self.name, state="open")
            raise BreakerOpenError(self.key, verdict.retry_in)
        if verdict.probe:
            events.emit("breaker", model=self.name, state="half_open")
        return verdict.probe

    def _opened(self, opened: bool, ok: bool, probe: bool) -> None:
        if opened:
            log.warning(
                "circuit breaker for %s opened; calls go to fallbacks for %gs",
                self.key,
                self.config.cooldown_seconds,
            )
        # What a report says for sure: it tripped, or the probe closed or reopened it.
        if opened or probe:
            events.emit("breaker", model=self.name, state="closed" if ok else "open")

    def acquire(self) -> bool:
        """Raise ``BreakerOpenError`` unless a call may go; True when it is the probe."""
        try:
            verdict = self.store.check(self.key, self.config, self._clock())
        except Exception as e:  # the store is down: let the call through
            log.warning("circuit breaker store unreachable (%s): %s not checked", e, self.key)
            return False
        return self._refuse(verdict)

    async def aacquire(self) -> bool:
        try:
            verdict = await self.store.acheck(self.key, self.config, self._clock())
        except Exception as e:
            log.warning("circuit breaker store unreachable (%s): %s not checked", e, self.key)
            return False
        return self._refuse(verdict)

    def report(self, ok: bool, probe: bool) -> None:
        try:
            self._opened(
                self.store.record(self.key, self.config, self._clock(), ok, probe), ok, probe
            )
        except Exception as e:
            log.warning("circuit breaker store unreachable (%s): %s not counted", e, self.key)

    async def areport(self, ok: bool, probe: bool) -> None:
        try:
            opened = await self.store.arecord(self.key, self.config, self._clock(), ok, probe)
        except Exception as e:
            log.warning("circuit breaker store unreachable (%s): %s not counted", e, self.key)
            return
        self._opened(opened, ok, probe)
