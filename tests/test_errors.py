"""The error tree as units: each refusal's one HTTP answer, the run's record of it and
back, finding it under a wrapper, and its OpenAI names."""

from __future__ import annotations

import math

import orjson
import pytest

from dockyard import errors
from dockyard.api.openai_errors import error_response, openai_names
from dockyard.errors import (
    AgentRunError,
    AgentTimeoutError,
    BudgetExceededError,
    DockyardError,
    ForbiddenError,
    GuardrailBlockedError,
    InputTooLongError,
    NotFoundError,
    PolicyError,
    ProviderUnavailableError,
    QuotaExceededError,
    RateLimitedError,
    UnauthorizedError,
    dockyard_cause,
)
from dockyard.runtime.attempt import error_body

POLICIES: list[tuple[type[PolicyError], int, str]] = [
    (PolicyError, 403, "policy_refused"),
    (RateLimitedError, 429, "rate_limited"),
    (QuotaExceededError, 429, "quota_exceeded"),
    (BudgetExceededError, 402, "budget_exceeded"),
    (GuardrailBlockedError, 400, "guardrail_blocked"),
    (InputTooLongError, 400, "input_too_long"),
    (ProviderUnavailableError, 503, "provider_unavailable"),
    (ForbiddenError, 403, "forbidden"),
]


def test_unauthorized_asks_for_a_bearer_key() -> None:
    e = UnauthorizedError("an API key is required")
    assert (e.status_code, e.code) == (401, "unauthorized")
    assert e.headers() == {"WWW-Authenticate": 'Bearer realm="dockyard"'}


def test_one_tree() -> None:
    for cls, _, _ in POLICIES:
        assert issubclass(cls, PolicyError) and issubclass(cls, DockyardError)
    assert issubclass(AgentTimeoutError, AgentRunError)
    assert issubclass(AgentRunError, DockyardError)
    exported = {n for n in dir(errors) if isinstance(getattr(errors, n), type)}
    exported = {n for n in exported if issubclass(getattr(errors, n), DockyardError)}
    assert exported <= set(errors.__all__)
    for name in exported:  # every class is drawn in the module's tree
        assert name in (errors.__doc__ or ""), name


@pytest.mark.parametrize(("cls", "status", "code"), POLICIES)
def test_each_refusal_has_one_answer(cls: type[PolicyError], status: int, code: str) -> None:
    e = cls("stop it")
    assert (e.status_code, e.code) == (status, code)
    assert e.to_body() == {"detail": "stop it", "code": code}
    assert e.headers() == {}
    assert e.to_run_error() == {
        "error": cls.__name__,
        "message": "stop it",
        "code": code,
        "status": status,
    }


@pytest.mark.parametrize(("seconds", "header"), [(0, "0"), (1, "1"), (1.2, "2"), (3600, "3600")])
def test_retry_after(seconds: float, header: str) -> None:
    e = RateLimitedError("slow down", retry_after=seconds)
    assert e.headers() == {"Retry-After": header}  # whole seconds, never early
    assert int(header) == math.ceil(seconds)
    assert e.to_body()["retry_after"] == seconds
    assert e.to_run_error()["retry_after"] == seconds
    for bad in (-1, float("nan")):
        with pytest.raises(ValueError, match="retry_after"):
            RateLimitedError("x", retry_after=bad)


def test_rate_limit_headers() -> None:
    e = QuotaExceededError("x", retry_after=0.5, limit=60, remaining=-1, reset_at=1700000000.2)
    assert e.headers() == {
        "Retry-After": "1",
        "X-RateLimit-Limit": "60",
        "X-RateLimit-Remaining": "0",  # never negative
        "X-RateLimit-Reset": "1700000001",  # whole epoch seconds, never early
    }
    assert RateLimitedError("x", limit=5).headers() == {"X-RateLimit-Limit": "5"}


def test_run_record_round_trip() -> None:
    e = QuotaExceededError("daily quota used up", retry_after=60)
    record = orjson.loads(orjson.dumps(e.to_run_error()))  # as storage and Redis carry it
    back = PolicyError.from_run_error(record, run_id="r1", thread_id="t1")
    assert back is not None
    assert (back.status_code, back.code, back.message, back.retry_after) == (
        429,
        "quota_exceeded",
        "daily quota used up",
        60,
    )
    assert back.headers() == {"Retry-After": "60"}
    assert back.to_body() == {
        "detail": "daily quota used up",
        "code": "quota_exceeded",
        "retry_after": 60,
        "run_id": "r1",
        "thread_id": "t1",
    }


def test_a_projects_own_refusal_survives_the_trip() -> None:
    """The process answering may never have imported the class the worker raised."""

    class TenantSuspended(PolicyError):
        status_code = 423
        default_code = "tenant_suspended"

    back = PolicyError.from_run_error(
        TenantSuspended("tenant suspended").to_run_error(), run_id="r", thread_id="t"
    )
    assert back is not None and (back.status_code, back.code) == (423, "tenant_suspended")
    assert PolicyError.status_code == 403  # the class itself is untouched


@pytest.mark.parametrize(
    "record",
    [
        None,
        "boom",
        {"error": "ValueError", "message": "the tool exploded"},  # rows from before codes
        {"error": "E"},
        {"error": "UnavailableError", "message": "m", "code": "unavailable"},
        {"error": "X", "message": "m", "code": "x", "status": 200},
        {"error": "X", "message": "m", "code": "x", "status": "429"},
        {"error": "X", "message": "m", "status": 429},
    ],
)
def test_other_records_are_not_refusals(record: object) -> None:
    assert PolicyError.from_run_error(record, run_id="r", thread_id="t") is None


def test_a_bad_retry_after_in_a_record_is_dropped() -> None:
    record = {"error": "X", "message": "m", "code": "x", "status": 429, "retry_after": True}
    back = PolicyError.from_run_error(record, run_id="r", thread_id="t")
    assert back is not None and back.retry_after is None and back.headers() == {}


def test_the_cause_under_wrappers() -> None:
    refusal = RateLimitedError("slow down")
    assert dockyard_cause(refusal) is refusal
    assert dockyard_cause(ValueError("x")) is None
    try:
        try:
            raise refusal
        except RateLimitedError as e:
            raise RuntimeError("wrapped") from e
    except RuntimeError as wrapped:
        assert dockyard_cause(wrapped) is refusal
    group = ExceptionGroup("tasks", [ValueError("a"), RuntimeError("b")])
    group.exceptions[1].__cause__ = refusal
    assert dockyard_cause(group) is refusal
    # Implicit context is not a cause: the handler's own failure is the outcome.
    try:
        try:
            raise refusal
        except RateLimitedError:
            raise ValueError("the handler failed")  # noqa: B904 - the point of the test
    except ValueError as handler:
        assert dockyard_cause(handler) is None
    loop = ValueError("a")
    loop.__cause__ = KeyError("b")
    loop.__cause__.__cause__ = loop
    assert dockyard_cause(loop) is None


def test_the_runs_error_record() -> None:
    assert error_body(ValueError("boom")) == {"error": "ValueError", "message": "boom"}
    assert error_body(NotFoundError("gone", code="thing_not_found")) == {
        "error": "NotFoundError",
        "message": "gone",
        "code": "thing_not_found",
    }
    refusal = BudgetExceededError("monthly budget used up")
    wrapped = RuntimeError("wrapped")
    wrapped.__cause__ = refusal
    assert error_body(wrapped) == refusal.to_run_error()
    other = RuntimeError("wrapped")
    other.__cause__ = NotFoundError("gone")
    assert error_body(other) == {"error": "RuntimeError", "message": "wrapped"}


def test_openai_names() -> None:
    assert openai_names(RateLimitedError("x")) == ("requests", "rate_limit_exceeded")
    assert openai_names(BudgetExceededError("x")) == ("insufficient_quota", "budget_exceeded")
    assert openai_names(QuotaExceededError("x")) == ("insufficient_quota", "quota_exceeded")
    assert openai_names(GuardrailBlockedError("x")) == (None, "guardrail_blocked")
    assert openai_names(AgentRunError("x", run_id="r", thread_id="t")) == (
        "agent_error",
        "agent_failed",
    )
    assert openai_names(NotFoundError("x", code="assistant_not_found")) == (
        "invalid_request_error",
        "model_not_found",
    )


def test_openai_retry_header() -> None:
    """The OpenAI SDKs retry 429 and 5xx unless told not to: a refusal before any run may
    be retried, one that ended a run may not (its tools may have acted)."""
    before = error_response(RateLimitedError("x", retry_after=1))
    assert before.status_code == 429 and "x-should-retry" not in before.headers
    assert before.headers["retry-after"] == "1"
    record = ProviderUnavailableError("down").to_run_error()
    ended = PolicyError.from_run_error(record, run_id="r", thread_id="t")
    assert ended is not None
    after = error_response(ended)
    assert after.status_code == 503 and after.headers["x-should-retry"] == "false"
    assert after.headers["x-run-id"] == "r" and after.headers["x-thread-id"] == "t"
    assert error_response(BudgetExceededError("x")).headers["x-should-retry"] == "false"
    body = orjson.loads(bytes(error_response(GuardrailBlockedError("no")).body))
    assert body == {
        "error": {
            "message": "no",
            "type": "invalid_request_error",
            "param": None,
            "code": "guardrail_blocked",
        }
    }
