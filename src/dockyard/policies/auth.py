"""API keys (``auth``): who a request is, checked before any other policy.

A key is ``dk_`` + 43 URL-safe characters (256 random bits), shown once when it is made;
the database keeps its sha256 and its first characters. A request names its key in
``x-api-key`` (langgraph-sdk's ``api_key=``) or ``Authorization: Bearer`` (the OpenAI
SDKs). ``Authenticate`` (ASGI middleware) looks the key up, refuses an unknown, revoked or
expired one (401 ``unauthorized``), and sets the request's ``dockyard.caller``; without a
key it refuses too unless ``auth.required`` is false, when the request goes on as an
anonymous caller that sees everything (``dockyard dev``).

Lookups are kept ``auth.cache_seconds`` in each process, so a busy server does not read
the database per request; a revoked key is refused everywhere within that time.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.types import ASGIApp, Receive, Scope, Send

from dockyard import caller
from dockyard.caller import ADMIN_SCOPE, Caller
from dockyard.errors import InvalidRequestError, UnauthorizedError
from dockyard.settings import AuthConfig, BudgetOverride, RateLimits
from dockyard.storage.base import ApiKey, KeyStore

KEY_PREFIX = "dk_"
_SHOWN = 7  # characters of a key kept to tell keys apart: "dk_" and four more

# Open whatever the setting: probes and the API's own documentation.
OPEN_PATHS = frozenset(
    {"/ok", "/health", "/ready", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"}
)
_CACHE_MAX = 10_000
_TENANT = re.compile(r"[A-Za-z0-9_:@+-]{1,255}")


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def key_record(
    key: str,
    *,
    tenant: str,
    name: str | None = None,
    scopes: list[str] | None = None,
    policies: dict[str, Any] | None = None,
    expires_at: datetime | None = None,
) -> ApiKey:
    """The row that stores ``key`` (never the key itself); scopes and policies checked."""
    if not _TENANT.fullmatch(tenant):
        raise InvalidRequestError(
            f"tenant {tenant!r}: use letters, digits and _ - : @ + (no dots or spaces; it "
            "names the tenant's store namespace)",
            code="invalid_key",
            param="tenant",
        )
    policies = check_key_fields(scopes or [], policies or {})
    return ApiKey(
        key_id="key_" + secrets.token_hex(8),
        key_hash=hash_key(key),
        prefix=key[:_SHOWN],
        tenant=tenant,
        name=name,
        scopes=sorted(set(scopes or [])),
        policies=policies,
        created_at=datetime.now(UTC),
        expires_at=expires_at,
        revoked_at=None,
    )


SCOPES = frozenset({ADMIN_SCOPE})
# What a key may override of the defaults, and the model each part is validated with.
KEY_POLICIES: dict[str, type[BaseModel]] = {"rate_limit": RateLimits, "budget": BudgetOverride}


def check_key_fields(scopes: list[str], policies: dict[str, Any]) -> dict[str, Any]:
    """``policies`` validated (the stored form); InvalidRequestError naming what is wrong."""
    for scope in scopes:
        if scope not in SCOPES:
            raise InvalidRequestError(
                f"unknown scope {scope!r}: the scopes are {', '.join(sorted(SCOPES))}",
                code="invalid_key",
                param="scopes",
            )
    out: dict[str, Any] = {}
    for name, value in policies.items():
        model = KEY_POLICIES.get(name)
        if model is None:
            raise InvalidRequestError(
                f"a key cannot override policy {name!r}: it may set "
                f"{', '.join(sorted(KEY_POLICIES))}",
                code="invalid_key",
                param=f"policies.{name}",
            )
        try:
            out[name] = model.model_validate(value).model_dump(exclude_none=True)
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(p) for p in (name, *first["loc"]))
            raise InvalidRequestError(
                f"policies.{where}: {first['msg']}", code="invalid_key", param=f"policies.{where}"
            ) from None
    return out


def public_key(key: ApiKey) -> dict[str, Any]:
    """A key as shown to people: never its hash; ``id`` for its id."""
    out: dict[str, Any] = {"id": key["key_id"]}
    out.update((k, v) for k, v in key.items() if k not in ("key_id", "key_hash"))
    return out


def caller_of(key: ApiKey) -> Caller:
    return Caller(
        key_id=key["key_id"],
        tenant=key["tenant"],
        scopes=frozenset(key["scopes"]),
        name=key["name"],
        policies=key["policies"],
    )


def presented_key(scope: Scope) -> str | None:
    """The key a request sends: ``x-api-key``, else ``Authorization: Bearer``."""
    bearer = None
    for name, value in scope["headers"]:
        if name == b"x-api-key":
            return value.decode("latin-1").strip() or None
        if name == b"authorization" and value[:7].lower() == b"bearer ":
            bearer = value[7:].decode("latin-1").strip() or None
    return bearer


V = TypeVar("V")


class KeyMemo(Generic[V]):
    """Lookups of keys kept ``ttl`` seconds in this process, found or not (``ttl`` 0: not
    kept), so that a busy server does not read the key table per request."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._memo: dict[str, tuple[float, V]] = {}

    async def get(self, key: str, load: Callable[[], Awaitable[V]]) -> V:
        now = time.monotonic()
        hit = self._memo.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        value = await load()
        if self.ttl > 0:
            if len(self._memo) >= _CACHE_MAX:
                self._memo.clear()
            self._memo[key] = (now + self.ttl, value)
        return value


class KeyAuth:
    """Keys to callers, with a per-process cache of lookups (found or not)."""

    def __init__(self, config: AuthConfig, keys: Callable[[], KeyStore]) -> None:
        self.config = config
        self._keys = keys  # the storage opens after the app is built
        self._memo: KeyMemo[ApiKey | None] = KeyMemo(config.cache_seconds)

    async def lookup(self, key: str) -> ApiKey | None:
        digest = hash_key(key)
        return await self._memo.get(digest, lambda: self._keys().by_hash(digest))

    async def authenticate(self, key: str | None) -> Caller | None:
        """The caller ``key`` stands for; None: anonymous (allowed only when not required).

        When keys are not required, a value that is not a dockyard key (the OpenAI SDKs
        insist on sending one: "unused", "sk-...") is no key at all; a dockyard key is
        still checked, so a wrong one never passes as anonymous."""
        if key is not None and not self.config.required and not key.startswith(KEY_PREFIX):
            key = None
        if key is None:
            if self.config.required:
                raise UnauthorizedError(
                    "an API key is required: send it as `x-api-key: <key>` or "
                    "`Authorization: Bearer <key>` (create one with `dockyard keys create`)"
                )
            return None
        row = await self.lookup(key)
        if row is None:
            raise UnauthorizedError("the API key is not valid")
        if row["revoked_at"] is not None:
            raise UnauthorizedError(f"the API key {row['key_id']} was revoked")
        expires = row["expires_at"]
        if expires is not None and expires <= datetime.now(UTC):
            raise UnauthorizedError(f"the API key {row['key_id']} expired at {expires.isoformat()}")
        return caller_of(row)


Authenticator = Callable[[Scope], Awaitable[Caller | None]]


class Authenticate:
    """Sets the caller of every request (``dockyard.caller``) or refuses it with 401.

    Installed inside ``CatchAll``, so a refusal is answered in the route family's error
    shape; the rate limit, inside this, counts the caller it sets."""

    def __init__(self, app: ASGIApp, authenticate: Authenticator) -> None:
        self.app = app
        self.authenticate = authenticate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _path(scope) in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        who = await self.authenticate(scope)
        with caller.use(who):
            await self.app(scope, receive, send)


def _path(scope: Scope) -> str:
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path
