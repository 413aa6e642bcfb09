"""Policy events, for whoever watches: the one seam between the policies and observability.

The policies (cache, rate limits, retries, fallbacks, breakers, budgets, refusals) call
``emit`` where something worth counting happens; ``dockyard.observability`` subscribes.
The policies cannot import observability (it sits above them), and should not know it
exists: with no subscriber an ``emit`` is one truth test.

Event names and their fields (all strings, except the budget's numbers):

=================  ====================================================================
``cache``          result: "hit" | "miss"
``rate_limited``   limit: "requests" | "tokens"
``retry``          model
``fallback``       model (asked), fallback (the model that answered)
``breaker``        model, state: "closed" | "half_open" | "open"
``refused``        code (a ``PolicyError``'s code)
``budget``         scope: "key" | "tenant", owner, period: "daily" | "monthly",
                   spent, limit (USD floats)
=================  ====================================================================
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from dockyard.errors import PolicyError

Subscriber = Callable[..., None]
"""Called as ``fn(name, **fields)``; must not block nor raise (a raise is logged)."""

_subscribers: list[Subscriber] = []
log = logging.getLogger("dockyard.events")


def subscribe(fn: Subscriber) -> None:
    """Have ``fn`` called for every event from now on (once, however often subscribed)."""
    if fn not in _subscribers:
        _subscribers.append(fn)


def unsubscribe(fn: Subscriber) -> None:
    if fn in _subscribers:
        _subscribers.remove(fn)


def watched() -> bool:
    """Someone subscribes: an event that costs work to make is worth making."""
    return bool(_subscribers)


def emit(name: str, **fields: Any) -> None:
    """Tell the subscribers; nothing to do without one."""
    if not _subscribers:
        return
    for fn in _subscribers:
        try:
            fn(name, **fields)
        except Exception:
            log.exception("event subscriber %r failed on %s", fn, name)


def refused(error: BaseException) -> None:
    """A policy's refusal (``PolicyError``) reaches whoever asked: "refused" with its code,
    once per error however many layers map it. One that ended a run and comes back to
    the API as the run's error (it has a ``run_id``) was counted when the run ended."""
    if not _subscribers or not isinstance(error, PolicyError):
        return
    if error.run_id is not None or error.__dict__.get("_counted"):
        return
    error.__dict__["_counted"] = True
    emit("refused", code=error.code)
