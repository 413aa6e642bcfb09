"""One model's attempts at a call: its circuit breaker, its retries, its timeout.

``ModelGuard`` runs a call (or opens a stream) against one model: each attempt asks the
breaker first (``BreakerOpenError`` when it is open: no retry, the fallbacks take over),
runs under the per-attempt timeout, and reports its outcome to the breaker; failed
attempts are retried as ``RetryPolicy`` says. A stream is retried until its first chunk
arrives; after that it is the answer, and a failure is the call's.

Synchronous calls (a graph node calling ``invoke``) get the same retries and breaker;
their per-attempt timeout is the provider client's own (the model's ``timeout``),
since a blocking call cannot be interrupted from outside.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

from langchain_core.outputs import ChatGenerationChunk, ChatResult

from dockyard import events
from dockyard.policies.breaker import CircuitBreaker
from dockyard.policies.retry import RetryPolicy, is_retryable
from dockyard.providers.wrapper import (
    AsyncNext,
    AsyncStreamNext,
    ModelCall,
    SyncNext,
    SyncStreamNext,
)


@dataclass
class OpenedStream:
    """A stream whose first chunk arrived (``None``: it ended empty)."""

    first: ChatGenerationChunk | None
    rest: Any  # the provider's (async) iterator, positioned after ``first``
    probe: bool


@dataclass(frozen=True)
class ModelGuard:
    name: str
    retry: RetryPolicy
    breaker: CircuitBreaker | None = None
    timeout: float | None = None

    def _seconds(self, deadline: float | None) -> float | None:
        """How long this attempt may take: the timeout, cut to what the deadline leaves."""
        if deadline is None:
            return self.timeout
        left = max(deadline - time.monotonic(), 0.0)
        return left if self.timeout is None else min(self.timeout, left)

    def _ok(self, exc: BaseException | None) -> bool:
        # A provider that answers, even "bad request", is up.
        return exc is None or not is_retryable(exc)

    # -- async ---------------------------------------------------------------------------

    async def _acquire(self) -> bool:
        return await self.breaker.aacquire() if self.breaker else False

    async def _report(self, exc: BaseException | None, probe: bool) -> None:
        if self.breaker is not None:
            await self.breaker.areport(self._ok(exc), probe)

    async def agenerate(
        self, call: ModelCall, call_next: AsyncNext, deadline: float | None
    ) -> ChatResult:
        async for attempt in self.retry.async_attempts(deadline):
            with attempt:
                _count_retry(self.name, attempt)
                probe = await self._acquire()
                try:
                    async with asyncio.timeout(self._seconds(deadline)):
                        result = await call_next(call)
                except Exception as e:
                    await self._report(e, probe)
                    raise
                await self._report(None, probe)
                return result
        raise AssertionError("tenacity ends with a result or the last error")

    async def aopen(
        self, call: ModelCall, call_next: AsyncStreamNext, deadline: float | None
    ) -> OpenedStream:
        async for attempt in self.retry.async_attempts(deadline):
            with attempt:
                _count_retry(self.name, attempt)
                probe = await self._acquire()
                stream = call_next(call)
                try:
                    async with asyncio.timeout(self._seconds(deadline)):
                        first = await anext(stream, None)
                except Exception as e:
                    await self._report(e, probe)
                    await _aclose(stream)
                    raise
                return OpenedStream(first, stream, probe)
        raise AssertionError("tenacity ends with a result or the last error")

    async def arest(self, opened: OpenedStream) -> AsyncIterator[ChatGenerationChunk]:
        try:
            if opened.first is not None:
                yield opened.first
            async for chunk in opened.rest:
                yield chunk
        except Exception as e:
            await self._report(e, opened.probe)
            raise
        finally:
            await _aclose(opened.rest)
        await self._report(None, opened.probe)

    # -- sync ----------------------------------------------------------------------------

    def _sync_acquire(self) -> bool:
        return self.breaker.acquire() if self.breaker else False

    def _sync_report(self, exc: BaseException | None, probe: bool) -> None:
        if self.breaker is not None:
            self.breaker.report(self._ok(exc), probe)

    def generate(self, call: ModelCall, call_next: SyncNext, deadline: float | None) -> ChatResult:
        for attempt in self.retry.attempts(deadline):
            with attempt:
                _count_retry(self.name, attempt)
                probe = self._sync_acquire()
                try:
                    result = call_next(call)
                except Exception as e:
                    self._sync_report(e, probe)
                    raise
                self._sync_report(None, probe)
                return result
        raise AssertionError("tenacity ends with a result or the last error")

    def open(
        self, call: ModelCall, call_next: SyncStreamNext, deadline: float | None
    ) -> OpenedStream:
        for attempt in self.retry.attempts(deadline):
            with attempt:
                _count_retry(self.name, attempt)
                probe = self._sync_acquire()
                stream = call_next(call)
                try:
                    first = next(stream, None)
                except Exception as e:
                    self._sync_report(e, probe)
                    _close(stream)
                    raise
                return OpenedStream(first, stream, probe)
        raise AssertionError("tenacity ends with a result or the last error")

    def rest(self, opened: OpenedStream) -> Iterator[ChatGenerationChunk]:
        try:
            if opened.first is not None:
                yield opened.first
            yield from opened.rest
        except Exception as e:
            self._sync_report(e, opened.probe)
            raise
        finally:
            _close(opened.rest)
        self._sync_report(None, opened.probe)


async def _aclose(stream: Any) -> None:
    close = getattr(stream, "aclose", None)
    if close is not None:
        await close()


def _close(stream: Any) -> None:
    close = getattr(stream, "close", None)
    if close is not None:
        close()


def _count_retry(name: str, attempt: Any) -> None:
    """Every attempt after a model call's first is a retry (``events``: "retry")."""
    if attempt.retry_state.attempt_number > 1:
        events.emit("retry", model=name)
