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
    └── UnavailableError          503 unavailable
"""

from __future__ import annotations

from typing import Any, ClassVar


class DockyardError(Exception):
    status_code: ClassVar[int] = 500
    default_code: ClassVar[str] = "internal_error"

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


__all__ = [
    "ConfigError",
    "ConflictError",
    "DockyardError",
    "InvalidRequestError",
    "NotFoundError",
    "PayloadTooLargeError",
    "ProviderSetupError",
    "UnavailableError",
    "UnsupportedFieldError",
]
