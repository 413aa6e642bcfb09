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


def emit(name: str, **fields: Any) -> None:
    """Tell the subscribers; nothing to do without one."""
    if not _subscribers:
        return
    for fn in _subscribers:
        try:
            fn(name, **fields)
        except Exception:
            log.exception("event subscriber %r failed on %s", fn, name)
