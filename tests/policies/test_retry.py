"""Which failures are retried, and how long the wait before the next attempt is."""

from __future__ import annotations

import time
from email.utils import formatdate
from typing import Any

import anthropic
import httpx
import openai
import pytest

from dockyard.errors import ProviderUnavailableError
from dockyard.policies.retry import RetryPolicy, is_retryable, retry_after
from dockyard.settings import RetryConfig

REQUEST = httpx.Request("POST", "http://127.0.0.1/v1/chat/completions")


def status_error(sdk: Any, status: int, **headers: str) -> Exception:
    response = httpx.Response(status, headers=headers, request=REQUEST)
    error: Exception = sdk.APIStatusError("failed", response=response, body=None)
    return error


@pytest.mark.parametrize("sdk", [openai, anthropic])
@pytest.mark.parametrize(
    ("status", "retried"),
    [
        (429, True),
        (500, True),
        (503, True),
        (529, True),
        (408, True),
        (400, False),
        (401, False),
        (404, False),
        (422, False),
    ],
)
def test_statuses(sdk: Any, status: int, retried: bool) -> None:
    assert is_retryable(status_error(sdk, status)) is retried


@pytest.mark.parametrize(
    "error",
    [
        openai.APITimeoutError(request=REQUEST),
        openai.APIConnectionError(request=REQUEST),
        anthropic.APITimeoutError(request=REQUEST),
        anthropic.APIConnectionError(request=REQUEST),
        httpx.RemoteProtocolError("peer closed connection", request=REQUEST),
        httpx.ConnectError("refused"),
        TimeoutError(),
        ConnectionResetError(),
    ],
)
def test_timeouts_and_connection_errors_are_retried(error: Exception) -> None:
    assert is_retryable(error)


@pytest.mark.parametrize(
    "error", [ValueError("bad"), ProviderUnavailableError("down"), KeyError("tools")]
)
def test_other_errors_are_not(error: Exception) -> None:
    assert not is_retryable(error)


def test_retry_after_headers() -> None:
    assert retry_after(status_error(openai, 429, **{"retry-after": "2"})) == 2.0
    assert retry_after(status_error(openai, 429, **{"retry-after": "0.25"})) == 0.25
    assert retry_after(status_error(openai, 429, **{"retry-after-ms": "150"})) == 0.15
    later = formatdate(time.time() + 30, usegmt=True)
    assert 25 < retry_after(status_error(anthropic, 529, **{"retry-after": later})) <= 30  # type: ignore[operator]
    assert retry_after(status_error(openai, 429, **{"retry-after": "soon"})) is None
    assert retry_after(status_error(openai, 429)) is None
    assert retry_after(ValueError()) is None


def run(policy: RetryPolicy, errors: list[Exception], deadline: float | None = None) -> int:
    """Attempts made until one succeeded (errors first) or the last error was raised."""
    calls = 0
    for attempt in policy.attempts(deadline):
        with attempt:
            calls += 1
            if errors:
                raise errors.pop(0)
    return calls


FAST = RetryConfig(max_attempts=4, backoff_min_seconds=0, backoff_max_seconds=0, jitter_seconds=0)


def test_retries_until_it_succeeds_or_attempts_run_out() -> None:
    assert run(RetryPolicy(FAST), [status_error(openai, 429)] * 3) == 4
    with pytest.raises(openai.APIStatusError):
        run(RetryPolicy(FAST), [status_error(openai, 503)] * 4)
    with pytest.raises(openai.APIStatusError):
        run(RetryPolicy(None), [status_error(openai, 503)])  # no retry block: one attempt


def test_a_request_error_is_not_retried() -> None:
    errors = [status_error(openai, 400), status_error(openai, 429)]
    with pytest.raises(openai.APIStatusError) as raised:
        run(RetryPolicy(FAST), errors)
    assert raised.value.status_code == 400 and len(errors) == 1


def test_waits_what_retry_after_asks() -> None:
    waits: list[float] = []
    retrying = RetryPolicy(FAST).attempts(None)
    retrying.sleep = waits.append  # type: ignore[method-assign]
    errors = [status_error(openai, 429, **{"retry-after": "0.3"}), status_error(openai, 500)]
    for attempt in retrying:
        with attempt:
            if errors:
                raise errors.pop(0)
    assert waits == [0.3, 0.0]


def test_exponential_backoff_with_jitter() -> None:
    config = RetryConfig(
        max_attempts=5, backoff_min_seconds=1, backoff_max_seconds=3, jitter_seconds=0.5
    )
    waits: list[float] = []
    retrying = RetryPolicy(config).attempts(None)
    retrying.sleep = waits.append  # type: ignore[method-assign]
    errors = [status_error(openai, 500) for _ in range(4)]
    for attempt in retrying:
        with attempt:
            if errors:
                raise errors.pop(0)
    assert len(waits) == 4
    for wait, base in zip(waits, [1, 2, 3, 3], strict=True):
        assert base <= wait <= min(base + 0.5, 3)


def test_a_longer_retry_after_than_allowed_is_not_waited_for() -> None:
    config = FAST.model_copy(update={"max_retry_after_seconds": 5})
    errors = [status_error(openai, 429, **{"retry-after": "30"}), status_error(openai, 429)]
    with pytest.raises(openai.APIStatusError):
        run(RetryPolicy(config), errors)
    assert len(errors) == 1


def test_no_attempt_starts_past_the_deadline() -> None:
    errors = [status_error(openai, 429, **{"retry-after": "10"})] * 3
    with pytest.raises(openai.APIStatusError):
        run(RetryPolicy(FAST), errors, deadline=time.monotonic() + 5)
    assert len(errors) == 2
