"""dockyard's one error hierarchy.

Every error a client can cause maps to exactly one HTTP status and a stable,
machine-readable ``code``; the message says what to change.

    DockyardError                 500 internal_error
    ├── ConfigError               (start-up only: a bad dockyard.yaml / env var)
    ├── ProviderSetupError        500 provider_setup (missing SDK or API key; fix in the text)
    ├── InvalidRequestError       422 invalid_request
    │   └── UnsupportedFieldError 422 unsupported_field
    ├── NotFoundError             404 not_found
    ├── ConflictError             409 conflict
    ├── PayloadTooLargeError      413 payload_too_large
    ├── UnavailableError          503 unavailable
    ├── AgentRunError             502 agent_failed (the graph failed; OpenAI routes and /chat)
    │   └── AgentTimeoutError     504 agent_timeout
    └── PolicyError               403 policy_refused
        ├── UnauthorizedError     401 unauthorized (no valid API key; WWW-Authenticate)
        ├── ForbiddenError        403 forbidden (a scope or an auth handler says no)
        ├── RateLimitedError      429 rate_limited (Retry-After, X-RateLimit-*)
        │   └── QuotaExceededError 429 quota_exceeded (Retry-After)
        ├── BudgetExceededError   402 budget_exceeded
        ├── GuardrailBlockedError 400 guardrail_blocked
        │   ├── InputRejectedError 422 input_rejected (names the rule, never the text)
        │   └── PiiBlockedError   400 pii_detected
        ├── InputTooLongError     400 input_too_long
        │   └── InputTooLargeError 413 input_too_large (names the limit)
        └── ProviderUnavailableError 503 provider_unavailable

A ``PolicyError`` is a production policy's refusal. Raised anywhere (a route, a graph
node, a model or tool call inside a graph, in a worker process), it ends its run with
its code recorded on the run and reaches the client with its own status and code.
"""

from __future__ import annotations

import math
from typing import Any


class DockyardError(Exception):
    # Not ClassVars: a policy refusal read back from a run's record carries the status
    # it was raised with, whatever class defined it (PolicyError.from_run_error).
    status_code: int = 500
    default_code: str = "internal_error"

    def __init__(self, message: str, *, code: str | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.param = param

    def to_body(self) -> dict[str, Any]:
        # "detail" is what FastAPI clients print; "code"/"param" are what
        # langgraph-sdk's APIError picks up as attributes.
        body: dict[str, Any] = {"detail": self.message, "code": self.code}
        if self.param is not None:
            body["param"] = self.param
        return body

    def headers(self) -> dict[str, str]:
        """HTTP headers of the answer besides the body (Retry-After for a rate limit)."""
        return {}


class ConfigError(DockyardError):
    """The configuration cannot be used; raised before the server starts."""

    default_code = "config_error"


class ProviderSetupError(DockyardError):
    """A model provider cannot be used: its SDK is not installed or its key is missing."""

    default_code = "provider_setup"


class InvalidRequestError(DockyardError):
    status_code = 422
    default_code = "invalid_request"


class UnsupportedFieldError(InvalidRequestError):
    default_code = "unsupported_field"


class NotFoundError(DockyardError):
    status_code = 404
    default_code = "not_found"


class ConflictError(DockyardError):
    status_code = 409
    default_code = "conflict"


class PayloadTooLargeError(DockyardError):
    """A request body over ``server.max_body_bytes`` (api/body_limit.py refuses it unread)."""

    status_code = 413
    default_code = "payload_too_large"


class UnavailableError(DockyardError):
    status_code = 503
    default_code = "unavailable"


class AgentRunError(DockyardError):
    """The graph itself failed: the request was fine, the agent was not."""

    status_code = 502
    default_code = "agent_failed"

    def __init__(self, message: str, *, run_id: str, thread_id: str) -> None:
        super().__init__(message)
        self.run_id = run_id
        self.thread_id = thread_id

    def to_body(self) -> dict[str, Any]:
        return {**super().to_body(), "run_id": self.run_id, "thread_id": self.thread_id}


class AgentTimeoutError(AgentRunError):
    """The graph ran past ``runs.timeout_seconds``."""

    status_code = 504
    default_code = "agent_timeout"


# -- policy refusals -------------------------------------------------------------------------


class PolicyError(DockyardError):
    """A production policy refused the work. Subclass it for a policy's own refusal (a
    ``status_code`` and a ``default_code``); raise it with the message saying what to do.

    ``retry_after``: seconds until the same request may succeed (the ``Retry-After``
    header). ``run_id``/``thread_id``: set when the refusal ended a run."""

    status_code = 403
    default_code = "policy_refused"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, code=code)
        if retry_after is not None and not retry_after >= 0:  # NaN too
            raise ValueError(f"retry_after must be a number of seconds >= 0, got {retry_after}")
        self.retry_after = retry_after
        self.run_id: str | None = None
        self.thread_id: str | None = None

    def to_body(self) -> dict[str, Any]:
        body = super().to_body()
        if self.retry_after is not None:
            body["retry_after"] = self.retry_after
        if self.run_id is not None:
            body["run_id"] = self.run_id
            body["thread_id"] = self.thread_id
        return body

    def headers(self) -> dict[str, str]:
        if self.retry_after is None:
            return {}
        return {"Retry-After": str(math.ceil(self.retry_after))}  # HTTP wants whole seconds

    def to_run_error(self) -> dict[str, Any]:
        """What the run records as its error and sends in its ``error`` event: the usual
        ``{"error", "message"}`` with the code, and the status its callers are answered."""
        out: dict[str, Any] = {
            "error": type(self).__name__,
            "message": self.message,
            "code": self.code,
            "status": self.status_code,
        }
        if self.retry_after is not None:
            out["retry_after"] = self.retry_after
        return out

    @staticmethod
    def from_run_error(error: Any, *, run_id: str, thread_id: str) -> PolicyError | None:
        """The refusal a run's recorded error holds; None when the run failed otherwise.

        The run may have ended in another process, whose project defines policy errors
        this one never imported: the status and code come from the record, not a class."""
        if not isinstance(error, dict) or "status" not in error:
            return None
        status, code = error.get("status"), error.get("code")
        if not isinstance(status, int) or not 400 <= status <= 599 or not isinstance(code, str):
            return None
        retry_after = error.get("retry_after")
        if not isinstance(retry_after, int | float) or isinstance(retry_after, bool):
            retry_after = None
        exc = PolicyError(str(error.get("message") or code), code=code, retry_after=retry_after)
        exc.status_code = status
        exc.run_id, exc.thread_id = run_id, thread_id
        return exc


class UnauthorizedError(PolicyError):
    """No API key, or one that is unknown, revoked or expired."""

    status_code = 401
    default_code = "unauthorized"

    def headers(self) -> dict[str, str]:
        return {**super().headers(), "WWW-Authenticate": 'Bearer realm="dockyard"'}


class ForbiddenError(PolicyError):
    """A valid key without the scope (or the auth handler's permission) the action needs."""

    status_code = 403
    default_code = "forbidden"


class RateLimitedError(PolicyError):
    """Too many requests (or tokens) in a window; ``retry_after`` says when the window
    opens again.

    ``limit`` / ``remaining`` / ``reset_at`` (the limit per window, what is left of it, the
    Unix time at which all of it is back), when given, become the ``X-RateLimit-Limit`` /
    ``-Remaining`` / ``-Reset`` headers (GitHub's names; Reset in whole epoch seconds)."""

    status_code = 429
    default_code = "rate_limited"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        retry_after: float | None = None,
        limit: int | None = None,
        remaining: int | None = None,
        reset_at: float | None = None,
    ) -> None:
        super().__init__(message, code=code, retry_after=retry_after)
        self.limit = limit
        self.remaining = remaining
        self.reset_at = reset_at

    def headers(self) -> dict[str, str]:
        return {
            **super().headers(),
            **rate_limit_headers(self.limit, self.remaining, self.reset_at),
        }


def rate_limit_headers(
    limit: int | None, remaining: int | None, reset_at: float | None
) -> dict[str, str]:
    """The ``X-RateLimit-*`` headers of the values given (refusals and admitted requests)."""
    out: dict[str, str] = {}
    if limit is not None:
        out["X-RateLimit-Limit"] = str(limit)
    if remaining is not None:
        out["X-RateLimit-Remaining"] = str(max(remaining, 0))
    if reset_at is not None:
        out["X-RateLimit-Reset"] = str(math.ceil(reset_at))
    return out


class QuotaExceededError(RateLimitedError):
    """A usage quota for a period (a day, a month) is used up; it renews at ``retry_after``."""

    default_code = "quota_exceeded"


class BudgetExceededError(PolicyError):
    """A spending budget is used up. 402, not 429: retrying does not help until someone
    raises the budget, and clients (the OpenAI SDKs among them) retry a 429 by themselves."""

    status_code = 402
    default_code = "budget_exceeded"

    def __init__(
        self, message: str, *, code: str | None = None, budget: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message, code=code)
        # Which budget refused: period, scope, holder, limit_usd, spent_usd, held_usd,
        # requested_usd, period_start, resets_at (policies/budget.py).
        self.budget = budget

    def to_body(self) -> dict[str, Any]:
        body = super().to_body()
        if self.budget is not None:
            body["budget"] = self.budget
        return body


class GuardrailBlockedError(PolicyError):
    """A guardrail blocked the input or the output (as OpenAI's and LiteLLM's do: 400)."""

    status_code = 400
    default_code = "guardrail_blocked"


class PiiBlockedError(GuardrailBlockedError):
    """Personal data where ``policies.pii.action`` is ``block``. The message names the
    kinds of data found and where, never the values."""

    default_code = "pii_detected"


class InputTooLongError(PolicyError):
    """The input is longer than a policy allows (tokens, characters, messages)."""

    status_code = 400
    default_code = "input_too_long"


class InputRejectedError(GuardrailBlockedError):
    """An input guardrail refused the request (a prompt-injection rule matched). ``rule``
    names the rule; the text that matched is never echoed back."""

    status_code = 422
    default_code = "input_rejected"

    def __init__(self, message: str, *, rule: str, param: str | None = None) -> None:
        super().__init__(message)
        self.rule = rule
        self.param = param

    def to_body(self) -> dict[str, Any]:
        return {**super().to_body(), "rule": self.rule}


class InputTooLargeError(InputTooLongError):
    """The request is over a ``policies.input`` limit: body bytes, characters of message
    text or estimated tokens. ``limit`` names the setting, ``maximum`` its value."""

    status_code = 413
    default_code = "input_too_large"

    def __init__(
        self, message: str, *, limit: str, maximum: int, actual: int | None = None
    ) -> None:
        super().__init__(message)
        self.limit = limit
        self.maximum = maximum
        self.actual = actual

    def to_body(self) -> dict[str, Any]:
        body = {**super().to_body(), "limit": self.limit, "max": self.maximum}
        if self.actual is not None:
            body["actual"] = self.actual
        return body


class ProviderUnavailableError(PolicyError):
    """No model provider can take the call now (down, overloaded, circuit open)."""

    status_code = 503
    default_code = "provider_unavailable"


def dockyard_cause(exc: BaseException) -> DockyardError | None:
    """The dockyard error ``exc`` is or was raised from (``raise ... from``, an exception
    group): what a library wrapping the original lets through."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        e = todo.pop(0)
        if id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, DockyardError):
            return e
        if isinstance(e, BaseExceptionGroup):
            todo.extend(e.exceptions)
        if e.__cause__ is not None:
            todo.append(e.__cause__)
    return None


__all__ = [
    "AgentRunError",
    "AgentTimeoutError",
    "BudgetExceededError",
    "ConfigError",
    "ConflictError",
    "DockyardError",
    "ForbiddenError",
    "GuardrailBlockedError",
    "InputRejectedError",
    "InputTooLargeError",
    "InputTooLongError",
    "InvalidRequestError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PiiBlockedError",
    "PolicyError",
    "ProviderSetupError",
    "ProviderUnavailableError",
    "QuotaExceededError",
    "RateLimitedError",
    "UnauthorizedError",
    "UnavailableError",
    "UnsupportedFieldError",
    "dockyard_cause",
    "rate_limit_headers",
]
