"""A project's LangGraph auth (``auth.path``, langgraph.json's ``auth: {path}``): a
``langgraph_sdk.Auth`` whose ``@auth.authenticate`` says who a request is and whose
``@auth.on...`` handlers allow, deny or filter each action, enforced the way LangGraph
Platform enforces them.

Authentication: a dockyard API key (``dk_...``) authenticates first; any other request
goes to the project's ``authenticate`` handler, given by name what it asks for
(``request``, ``path``, ``method``, ``path_params``, ``query_params``, ``headers``,
``authorization``). It returns a user id, ``{"identity", "permissions", ...}`` or a user
object; ``Auth.exceptions.HTTPException`` refuses with its status (401 by default).

Authorization: for an action on a resource, the most specific handler runs —
``(resource, action)``, else ``(resource, "*")``, else the global ``@auth.on``. It gets
``ctx`` (user, permissions, resource, action) and the request's ``value`` (which it may
change: the metadata a create stores, the namespace a store operation uses). It returns
None or True (allowed), False (403 ``forbidden``) or a filter on metadata
(``{"owner": "u1"}``, ``{"owner": {"$eq": "u1"}}``, ``{"tags": {"$contains": "x"}}``)
that the records read, changed or listed must match; another's answers 404 as a missing
one. A dockyard key's user is its key id, its permissions its scopes.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.types import Scope

from dockyard.caller import Caller
from dockyard.errors import ConfigError, ForbiddenError, PolicyError, UnauthorizedError

Filter = dict[str, Any]


@dataclass(frozen=True)
class AuthUser:
    """What an ``authenticate`` handler returned, as LangGraph's ``BaseUser``."""

    identity: str
    permissions: Sequence[str] = ()
    display_name: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)
    is_authenticated: bool = True

    def __getitem__(self, key: str) -> Any:
        if key in ("identity", "permissions", "display_name", "is_authenticated"):
            return getattr(self, key)
        return self.extra[key]

    def __contains__(self, key: object) -> bool:
        return key in ("identity", "permissions", "display_name") or key in self.extra

    def __iter__(self) -> Any:
        return iter(["identity", "permissions", "display_name", *self.extra])


def _user(result: Any) -> AuthUser | Any:
    if isinstance(result, str):
        return AuthUser(identity=result, display_name=result)
    if isinstance(result, Mapping):
        if not isinstance(result.get("identity"), str):
            raise TypeError("the authenticate handler returned a dict without 'identity'")
        extra = {
            k: v for k, v in result.items() if k not in ("identity", "permissions", "display_name")
        }
        return AuthUser(
            identity=result["identity"],
            permissions=tuple(result.get("permissions") or ()),
            display_name=str(result.get("display_name") or result["identity"]),
            extra=extra,
        )
    if hasattr(result, "identity"):
        return result
    raise TypeError(f"the authenticate handler returned {type(result).__name__}")


def refusal(exc: Exception) -> PolicyError:
    """``Auth.exceptions.HTTPException`` as dockyard's refusal of that status."""
    status = int(getattr(exc, "status_code", 401))
    detail = str(getattr(exc, "detail", "") or "refused by the project's auth handler")
    if status == 401:
        return UnauthorizedError(detail)
    if status == 403:
        return ForbiddenError(detail)
    err = PolicyError(detail, code="auth_refused")
    err.status_code = status
    return err


class ProjectAuth:
    def __init__(self, auth: Any, spec: str) -> None:
        from langgraph_sdk import Auth

        if not isinstance(auth, Auth):
            raise ConfigError(f"auth.path = {spec!r}: expected a langgraph_sdk.Auth object")
        self.auth = auth
        self.spec = spec
        handler = auth._authenticate_handler
        self._params = set(inspect.signature(handler).parameters) if handler else set()

    @property
    def authenticates(self) -> bool:
        return self.auth._authenticate_handler is not None

    async def authenticate(self, scope: Scope) -> Caller:
        from langgraph_sdk.auth.exceptions import HTTPException

        request = Request(scope)
        headers = {k: v for k, v in scope["headers"]}
        given: dict[str, Any] = {
            "request": request,
            "path": request.url.path,
            "method": request.method,
            "path_params": dict(request.path_params),
            "query_params": dict(request.query_params),
            "headers": headers,
            "authorization": request.headers.get("authorization"),
        }
        handler = self.auth._authenticate_handler
        assert handler is not None
        try:
            result: Any = handler(**{k: v for k, v in given.items() if k in self._params})
            if inspect.isawaitable(result):
                result = await result
        except HTTPException as e:
            raise refusal(e) from None
        user = _user(result)
        permissions = tuple(getattr(user, "permissions", ()) or ())
        return Caller(
            key_id=None,
            tenant=None,
            scopes=frozenset(),
            name=str(getattr(user, "identity", "")),
            user=user,
            permissions=permissions,
            project_auth=self,
        )

    def _handler(self, resource: str, action: str) -> Any:
        handlers = self.auth._handlers
        for key in ((resource, action), (resource, "*")):
            if key in handlers:
                return handlers[key][-1]
        return self.auth._global_handlers[-1] if self.auth._global_handlers else None

    def names(self, resource: str, action: str) -> bool:
        return self._handler(resource, action) is not None

    async def authorize(
        self, who: Caller, resource: str, action: str, value: dict[str, Any]
    ) -> Filter | None:
        from langgraph_sdk.auth.exceptions import HTTPException
        from langgraph_sdk.auth.types import AuthContext

        handler = self._handler(resource, action)
        if handler is None:
            return None
        user = who.user if who.user is not None else _key_user(who)
        ctx = AuthContext(
            permissions=list(who.permissions or getattr(user, "permissions", ()) or ()),
            user=user,
            resource=resource,  # type: ignore[arg-type]
            action=action,  # type: ignore[arg-type]
        )
        try:
            result = await handler(ctx=ctx, value=value)
        except HTTPException as e:
            raise refusal(e) from None
        if result is None or result is True:
            return None
        if result is False:
            raise ForbiddenError(f"the project's auth handler does not allow {resource}.{action}")
        if isinstance(result, dict):
            return result or None
        raise TypeError(
            f"auth handler for {resource}.{action} returned {type(result).__name__}; "
            "expected None, a bool or a filter dict"
        )


def _key_user(who: Caller) -> AuthUser:
    return AuthUser(
        identity=who.key_id or "anonymous",
        permissions=tuple(sorted(who.scopes)),
        display_name=who.name or who.key_id or "anonymous",
        extra={"tenant": who.tenant} if who.tenant else {},
        is_authenticated=who.key_id is not None,
    )


def matches(metadata: Mapping[str, Any] | None, flt: Filter | None) -> bool:
    """Whether a record's metadata passes a handler's filter."""
    if not flt:
        return True
    metadata = metadata or {}
    for key, want in flt.items():
        have = metadata.get(key)
        if isinstance(want, dict) and len(want) == 1 and next(iter(want)).startswith("$"):
            op, operand = next(iter(want.items()))
            if op == "$eq":
                if key not in metadata or have != operand:
                    return False
            elif op == "$contains":
                if not isinstance(have, list) or operand not in have:
                    return False
            else:
                raise TypeError(f"auth filter operator {op!r} is not supported ($eq, $contains)")
        elif key not in metadata or have != want:
            return False
    return True


def as_containment(flt: Filter | None) -> Filter:
    """A handler's filter as a metadata containment filter (what searches take)."""
    out: Filter = {}
    for key, want in (flt or {}).items():
        if isinstance(want, dict) and len(want) == 1 and next(iter(want)).startswith("$"):
            op, operand = next(iter(want.items()))
            if op == "$eq":
                out[key] = operand
            elif op == "$contains":
                out[key] = [operand]
            else:
                raise TypeError(f"auth filter operator {op!r} is not supported ($eq, $contains)")
        else:
            out[key] = want
    return out
