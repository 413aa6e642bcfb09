"""Retries of a model's failed calls: tenacity, with the waits a provider asks for.

Which failures are worth another attempt, read off the provider SDKs' errors without
importing them (both SDKs put ``status_code`` and the HTTP ``response`` on their errors):
429, 408, 409, any 5xx (Anthropic's 529 "overloaded" included), timeouts, and
connection errors (refused, reset, a stream cut short). The wait before the next attempt
is what the error's ``Retry-After`` (or OpenAI's ``retry-after-ms``) says, else
exponential backoff with jitter; a provider asking for more than
``max_retry_after_seconds`` is not waited for, and no attempt starts that could not
end before the call's deadline.
"""

from __future__ import annotations

import email.utils
import functools
import math
import time
from dataclasses import dataclass
from typing import Any

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from dockyard.errors import DockyardError
from dockyard.settings import RetryConfig

# What the SDKs call a failure to reach the provider (openai's and anthropic's alike).
_CONNECTION_ERRORS = frozenset({"APIConnectionError", "APITimeoutError"})


def status_of(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    return status if isinstance(status, int) else None


def is_retryable(exc: BaseException) -> bool:
    """A failure another attempt may not meet: the provider's, not the request's."""
    if isinstance(exc, DockyardError):
        return False  # dockyard's own refusals and errors say what to change
    status = status_of(exc)
    if status is not None:
        return status in (408, 409, 429) or status >= 500
    if isinstance(exc, TimeoutError | ConnectionError | httpx.TransportError):
        return True
    return any(cls.__name__ in _CONNECTION_ERRORS for cls in type(exc).__mro__)


def retry_after(exc: BaseException | None) -> float | None:
    """Seconds the provider asked to wait (``retry-after-ms``, ``retry-after`` in seconds
    or as an HTTP date), if it did."""
    headers = getattr(getattr(exc, "response", None), "headers", None)
    if headers is None:
        return None
    try:
        if (ms := headers.get("retry-after-ms")) is not None:
            return max(float(ms) / 1000, 0.0)
        value = headers.get("retry-after")
        if value is None:
            return None
        try:
            seconds = float(value)
        except ValueError:
            when = email.utils.parsedate_to_datetime(value)
            seconds = when.timestamp() - time.time()
    except (TypeError, ValueError, AttributeError):
        return None
    return max(seconds, 0.0) if math.isfinite(seconds) else None


def describe(exc: BaseException) -> str:
    """A short account of a failure, for the refusal's message (never a provider's body)."""
    status = status_of(exc)
    if status is not None:
        return f"HTTP {status}"
    if isinstance(exc, TimeoutError):
        return "timed out"
    return type(exc).__name__


class _AskedTooLong(stop_base):
    """The provider asks (Retry-After) for a longer wait than we would make."""

    def __init__(self, longest: float) -> None:
        self.longest = longest

    def __call__(self, state: RetryCallState) -> bool:
        asked = retry_after(state.outcome.exception() if state.outcome else None)
        return asked is not None and asked > self.longest


class _PastDeadline(stop_base):
    """The next attempt would start after the call's deadline."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline

    def __call__(self, state: RetryCallState) -> bool:
        return time.monotonic() + state.upcoming_sleep >= self.deadline


class _Backoff(wait_base):
    """Retry-After when the provider sent one, else exponential backoff with jitter."""

    def __init__(self, config: RetryConfig) -> None:
        self.longest = config.backoff_max_seconds
        self.backoff = wait_exponential(
            multiplier=config.backoff_min_seconds, max=self.longest
        ) + wait_random(0, config.jitter_seconds)

    def __call__(self, state: RetryCallState) -> float:
        asked = retry_after(state.outcome.exception() if state.outcome else None)
        return min(self.backoff(state), self.longest) if asked is None else asked


_RETRYABLE = retry_if_exception(is_retryable)


@dataclass(frozen=True)
class RetryPolicy:
    """The attempts of one model's calls; ``RetryConfig`` None means a single attempt."""

    config: RetryConfig | None

    @functools.cached_property
    def _options(self) -> dict[str, Any]:
        # Built once per model: only the deadline differs between calls.
        config = self.config
        if config is None:
            return {"stop": stop_after_attempt(1), "reraise": True}
        stop = stop_after_attempt(config.max_attempts) | _AskedTooLong(
            config.max_retry_after_seconds
        )
        return {"stop": stop, "wait": _Backoff(config), "retry": _RETRYABLE, "reraise": True}

    def _with_deadline(self, deadline: float | None) -> dict[str, Any]:
        options = self._options
        if deadline is None or self.config is None:
            return options
        return {**options, "stop": options["stop"] | _PastDeadline(deadline)}

    def attempts(self, deadline: float | None) -> Retrying:
        """``for attempt in policy.attempts(deadline): with attempt: ...``"""
        return Retrying(**self._with_deadline(deadline))

    def async_attempts(self, deadline: float | None) -> AsyncRetrying:
        """``async for attempt in policy.async_attempts(deadline): with attempt: ...``"""
        return AsyncRetrying(**self._with_deadline(deadline))
