"""Who is calling: the API key and tenant a request authenticated as.

The auth layer (``policies/auth.py``) builds one ``Caller`` per request and sets it as the
current caller for the request's task (``use``/``current``), so that every policy the
request passes (rate limits, budgets, admission) sees the same one without an argument
threaded through the run path. What the request stores carries the ids in its metadata
(``TENANT_KEY``, ``KEY_ID_KEY``): a run, a thread or a cron stays the tenant's wherever it
is read or executed later (a worker process, a cron firing), and a run's graph config gets
them with the rest of the run's metadata.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

# The metadata keys that name a record's tenant and the key that made it. Reserved: a
# client cannot set or change them (the auth layer stamps them on create).
TENANT_KEY = "dockyard_tenant"
KEY_ID_KEY = "dockyard_key_id"
RESERVED_METADATA = frozenset({TENANT_KEY, KEY_ID_KEY})

ADMIN_SCOPE = "admin"


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated caller. ``tenant`` None: a caller of no tenant (the open
    ``dockyard dev`` server, or ``auth.required: false`` without a key)."""

    key_id: str | None
    tenant: str | None
    scopes: frozenset[str] = frozenset()
    name: str | None = None
    # The key's own policy overrides, as stored with it: {"rate_limit": {...},
    # "budget": {...}}; each policy validates its own part.
    policies: Mapping[str, Any] = field(default_factory=dict)
    # A project's LangGraph auth (policies/project_auth.py): the user its authenticate
    # handler returned, its permissions, and the handlers every action passes.
    user: Any = None
    permissions: tuple[str, ...] = ()
    project_auth: Any = None

    @property
    def is_admin(self) -> bool:
        return ADMIN_SCOPE in self.scopes

    @property
    def scoped(self) -> bool:
        """Whether what this caller sees is limited to its tenant."""
        return self.tenant is not None and not self.is_admin

    def stamp(self, metadata: Mapping[str, Any] | None) -> dict[str, Any]:
        """``metadata`` with this caller's ids in the reserved keys (a copy)."""
        out = {k: v for k, v in (metadata or {}).items() if k not in RESERVED_METADATA}
        if self.tenant is not None:
            out[TENANT_KEY] = self.tenant
        if self.key_id is not None:
            out[KEY_ID_KEY] = self.key_id
        return out


def ids(metadata: Mapping[str, Any] | None) -> tuple[str | None, str | None]:
    """(tenant, key id) a record's metadata was stamped with."""
    if not metadata:
        return None, None
    tenant, key_id = metadata.get(TENANT_KEY), metadata.get(KEY_ID_KEY)
    return (
        tenant if isinstance(tenant, str) else None,
        key_id if isinstance(key_id, str) else None,
    )


_CURRENT: ContextVar[Caller | None] = ContextVar("dockyard_caller", default=None)


def current() -> Caller | None:
    """The caller of the request this task serves; None outside a request."""
    return _CURRENT.get()


@contextlib.contextmanager
def use(caller: Caller | None) -> Iterator[None]:
    token = _CURRENT.set(caller)
    try:
        yield
    finally:
        _CURRENT.reset(token)
