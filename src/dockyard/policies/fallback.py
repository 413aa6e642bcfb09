"""The fallback chain of a named model: ``models.<name>.fallbacks``, tried in order.

``FallbackLayer`` is the innermost layer of a model's policy chain (pydantic-ai's
``FallbackModel`` as a ``ModelLayer``). The call goes to the model itself through its
``ModelGuard`` (breaker, retries, timeout); when that fails in a way another model may
not (its retries spent on 429 / 5xx / 529 / timeouts / connection errors, its breaker
open, or the provider refusing the key or not knowing the model: 401, 403, 404), the
same call goes to each fallback in turn, through the fallback's own guard, with tools
re-bound in the fallback provider's format. An open breaker costs no time, so a
fallback answers at once. One deadline (``retry.deadline_seconds`` of the model called)
covers them all. A fallback's own ``fallbacks`` are not followed: list every model to
try on the one graphs call.

When every model failed, the call is refused with ``ProviderUnavailableError`` (503),
whose message names each model and how it failed and whose ``retry_after`` is the
soonest of an open breaker's next probe and a provider's ``Retry-After``. A failure the
request itself caused (400, a bad parameter) is raised as it is: another model would
refuse it too. A stream switches to a fallback only before its first chunk; cut off
after it, the call fails with ``ProviderUnavailableError``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.outputs import ChatGenerationChunk, ChatResult

from dockyard import events
from dockyard.errors import ProviderUnavailableError
from dockyard.policies.breaker import BreakerOpenError
from dockyard.policies.guard import ModelGuard
from dockyard.policies.retry import describe, is_retryable, retry_after, status_of
from dockyard.providers.wrapper import (
    AsyncNext,
    AsyncStreamNext,
    ModelCall,
    ModelLayer,
    SyncNext,
    SyncStreamNext,
    provider_agenerate,
    provider_astream,
    provider_generate,
    provider_stream,
)

log = logging.getLogger("dockyard.policies.fallback")

# The provider turned away this model or key, not the request: another model may answer.
_OTHER_MODEL_MAY_ANSWER = (401, 403, 404)


def falls_back(exc: BaseException) -> bool:
    return (
        isinstance(exc, BreakerOpenError)
        or is_retryable(exc)
        or status_of(exc) in _OTHER_MODEL_MAY_ANSWER
    )


def unavailable(
    name: str, failures: Sequence[tuple[str, BaseException]]
) -> ProviderUnavailableError:
    parts = [
        f"{model}: {'circuit breaker open' if isinstance(e, BreakerOpenError) else describe(e)}"
        for model, e in failures
    ]
    # When to try again: the first open breaker's probe, or what a provider asked for.
    asked = [e.retry_in if isinstance(e, BreakerOpenError) else retry_after(e) for _, e in failures]
    waits = [wait for wait in asked if wait is not None]
    return ProviderUnavailableError(
        f"chat model {name!r} is unavailable ({'; '.join(parts)}); try again later",
        retry_after=round(min(waits), 3) if waits else None,
    )


def cut_off(name: str, exc: Exception) -> Exception:
    """What a stream failing after its first chunk raises: no other model can take over
    an answer half given."""
    if not is_retryable(exc):
        raise exc
    return ProviderUnavailableError(
        f"chat model {name!r} stopped answering mid-stream ({describe(exc)}); try again later"
    )


class FallbackLayer(ModelLayer):
    def __init__(
        self,
        name: str,
        fallbacks: Sequence[str],
        guard_of: Callable[[str], ModelGuard],
        raw_of: Callable[[str], BaseChatModel],
        deadline_seconds: float | None,
    ) -> None:
        self.name = name
        self.fallbacks = tuple(fallbacks)
        self._guard_of = guard_of
        self._raw_of = raw_of
        self._deadline_seconds = deadline_seconds

    def _deadline(self) -> float | None:
        if self._deadline_seconds is None:
            return None
        return time.monotonic() + self._deadline_seconds

    def _tries(
        self, call: ModelCall, call_next: Any, end: Any, deadline: float | None
    ) -> Iterator[tuple[ModelGuard, ModelCall, Any]]:
        """(guard, call, next step) for the model itself, then each fallback while the
        deadline allows."""
        yield self._guard_of(call.name), call, call_next
        for name in self.fallbacks:
            if deadline is not None and time.monotonic() >= deadline:
                return
            yield self._guard_of(name), call.for_model(name, self._raw_of(name)), end

    async def agenerate(self, call: ModelCall, call_next: AsyncNext) -> ChatResult:
        deadline, failures = self._deadline(), list[tuple[str, BaseException]]()
        for guard, attempt, step in self._tries(call, call_next, provider_agenerate, deadline):
            try:
                result = await guard.agenerate(attempt, step, deadline)
            except Exception as e:
                _failed(guard.name, e, failures)
                continue
            _answered(call.name, guard.name)
            return result
        raise unavailable(call.name, failures) from failures[-1][1]

    def generate(self, call: ModelCall, call_next: SyncNext) -> ChatResult:
        deadline, failures = self._deadline(), list[tuple[str, BaseException]]()
        for guard, attempt, step in self._tries(call, call_next, provider_generate, deadline):
            try:
                result = guard.generate(attempt, step, deadline)
            except Exception as e:
                _failed(guard.name, e, failures)
                continue
            _answered(call.name, guard.name)
            return result
        raise unavailable(call.name, failures) from failures[-1][1]

    async def astream(
        self, call: ModelCall, call_next: AsyncStreamNext
    ) -> AsyncIterator[ChatGenerationChunk]:
        deadline, failures = self._deadline(), list[tuple[str, BaseException]]()
        for guard, attempt, step in self._tries(call, call_next, provider_astream, deadline):
            try:
                opened = await guard.aopen(attempt, step, deadline)
            except Exception as e:
                _failed(guard.name, e, failures)
                continue
            _answered(call.name, guard.name)
            try:
                async for chunk in guard.arest(opened):
                    yield chunk
            except Exception as e:
                raise cut_off(guard.name, e) from e
            return
        raise unavailable(call.name, failures) from failures[-1][1]

    def stream(self, call: ModelCall, call_next: SyncStreamNext) -> Iterator[ChatGenerationChunk]:
        deadline, failures = self._deadline(), list[tuple[str, BaseException]]()
        for guard, attempt, step in self._tries(call, call_next, provider_stream, deadline):
            try:
                opened = guard.open(attempt, step, deadline)
            except Exception as e:
                _failed(guard.name, e, failures)
                continue
            _answered(call.name, guard.name)
            try:
                yield from guard.rest(opened)
            except Exception as e:
                raise cut_off(guard.name, e) from e
            return
        raise unavailable(call.name, failures) from failures[-1][1]


def _answered(asked: str, answered: str) -> None:
    if answered != asked:
        events.emit("fallback", model=asked, fallback=answered)


def _failed(name: str, exc: Exception, failures: list[tuple[str, BaseException]]) -> None:
    """Note a model's failure, or raise it when no other model can help."""
    if not falls_back(exc):
        raise exc
    log.info("chat model %r failed (%s); trying the next model", name, describe(exc))
    failures.append((name, exc))
