"""What each kind of alert rule checks, read from storage so that every process agrees.

A rule is evaluated to the alerts that are true now (``NewAlert``, none when all is
well); the evaluator compares them with those firing (``evaluator.py``). Budget rules
are not evaluated: the budget policy's ``budget.threshold`` events open them
(``budget_alert``) and they clear when the budget's period ends.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar, cast

from dockyard.policies.budget import ThresholdEvent
from dockyard.settings import (
    AlertRule,
    AvailabilityRule,
    BreakerRule,
    BudgetRule,
    ErrorCountRule,
    ErrorRateRule,
    InterruptedRule,
    LatencyRule,
    QualityRule,
)
from dockyard.storage.alerts import AlertStore, NewAlert

T = TypeVar("T")


class OpenBreakers(Protocol):
    async def aopen(self) -> dict[str, float]: ...


class Reads:
    """What one evaluation reads from the store, each thing once: the shipped rules ask
    for two windows' counts seven times."""

    def __init__(self, store: AlertStore) -> None:
        self.store = store
        self._memo: dict[tuple[Any, ...], Any] = {}

    async def _once(self, key: tuple[Any, ...], read: Callable[[], Awaitable[T]]) -> T:
        if key not in self._memo:
            self._memo[key] = await read()
        return cast(T, self._memo[key])

    async def assistant_ids(self, name: str | None) -> list[str] | None:
        if name is None:
            return None
        return await self._once(("ids", name), lambda: self.store.assistant_ids(name))

    async def counts(self, since: datetime, ids: list[str] | None) -> dict[str, int]:
        key = ("counts", since, _key(ids))
        return await self._once(key, lambda: self.store.outcome_counts(since, ids))

    async def p95(self, since: datetime, ids: list[str] | None) -> float | None:
        return await self._once(
            ("p95", since, _key(ids)), lambda: self.store.latency_p95(since, ids)
        )

    async def quality(self, since: datetime, ids: list[str] | None) -> tuple[int, float | None]:
        key = ("quality", since, _key(ids))
        return await self._once(key, lambda: self.store.quality(since, ids))


def _key(ids: list[str] | None) -> tuple[str, ...] | None:
    return None if ids is None else tuple(sorted(ids))


def _scope(rule: AlertRule) -> str:
    return f" of {rule.assistant}" if rule.assistant else ""


def _pct(x: float) -> str:
    # Two decimals when one would hide the difference (5.04% is above 5%).
    return f"{x * 100:.2f}".rstrip("0").rstrip(".") + "%"


async def evaluate(
    name: str,
    rule: AlertRule,
    reads: Reads,
    now: datetime,
    breakers: OpenBreakers | None = None,
) -> list[NewAlert] | None:
    """The alerts of ``rule`` true at ``now``; None for a rule that is not evaluated
    (budget: opened by events)."""
    if isinstance(rule, BudgetRule):
        return None
    if isinstance(rule, BreakerRule):
        return await _breakers(name, rule, breakers, now)
    ids = await reads.assistant_ids(rule.assistant)

    def alert(summary: str, **details: object) -> list[NewAlert]:
        return [NewAlert(name, name, rule.kind, rule.severity, summary, dict(details))]

    if isinstance(rule, InterruptedRule):
        waiting = await reads.store.waiting_runs(now - timedelta(minutes=rule.minutes), ids)
        if not waiting:
            return []
        oldest = (now - waiting[0].since).total_seconds() / 60
        return alert(
            f"{len(waiting)}{'+' if len(waiting) >= 100 else ''} run(s){_scope(rule)} waiting "
            f"for approval over {rule.minutes:g} min (oldest {oldest:.0f} min)",
            value=len(waiting),
            threshold_minutes=rule.minutes,
            waiting=[{"run_id": w.run_id, "thread_id": w.thread_id} for w in waiting[:5]],
        )
    since = now - timedelta(minutes=rule.window_minutes)
    window = f"the last {rule.window_minutes:g} min"
    if isinstance(rule, QualityRule):
        scored, mean = await reads.quality(since, ids)
        if scored < rule.min_runs or mean is None or mean >= rule.threshold:
            return []
        return alert(
            f"Quality score{_scope(rule)} {mean:.2f} < {rule.threshold:g} "
            f"over {window} ({scored} scored runs)",
            value=round(mean, 4),
            threshold=rule.threshold,
            runs=scored,
            window_minutes=rule.window_minutes,
        )
    counts = await reads.counts(since, ids)
    errors = counts.get("error", 0) + counts.get("timeout", 0)
    ended = errors + counts.get("success", 0)
    if ended < rule.min_runs:
        return []
    common = {"runs": ended, "window_minutes": rule.window_minutes}
    if isinstance(rule, ErrorRateRule):
        rate = errors / ended
        if rate <= rule.threshold:
            return []
        return alert(
            f"Error rate{_scope(rule)} {_pct(rate)} > {_pct(rule.threshold)} over {window} "
            f"({errors} of {ended} runs)",
            value=round(rate, 4),
            threshold=rule.threshold,
            errors=errors,
            **common,
        )
    if isinstance(rule, ErrorCountRule):
        if errors <= rule.threshold:
            return []
        return alert(
            f"{errors} failed runs{_scope(rule)} over {window} (more than {rule.threshold})",
            value=errors,
            threshold=rule.threshold,
            **common,
        )
    if isinstance(rule, AvailabilityRule):
        ok = (ended - errors) / ended
        if ok >= rule.threshold:
            return []
        return alert(
            f"Availability{_scope(rule)} {_pct(ok)} < {_pct(rule.threshold)} over {window} "
            f"({errors} of {ended} runs failed)",
            value=round(ok, 4),
            threshold=rule.threshold,
            errors=errors,
            **common,
        )
    assert isinstance(rule, LatencyRule)
    latency = await reads.p95(since, ids)
    if latency is None or latency <= rule.threshold_seconds:
        return []
    return alert(
        f"p95 run latency{_scope(rule)} {latency:.1f}s > {rule.threshold_seconds:g}s "
        f"over {window} ({ended} runs)",
        value=round(latency, 3),
        threshold=rule.threshold_seconds,
        **common,
    )


async def _breakers(
    name: str, rule: BreakerRule, breakers: OpenBreakers | None, now: datetime
) -> list[NewAlert]:
    if breakers is None:  # no model has a breaker
        return []
    return [
        NewAlert(
            f"{name}:{model}",
            name,
            rule.kind,
            rule.severity,
            f"Circuit breaker open for {model}: its calls go to fallbacks",
            {"model": model, "open_until": until},
        )
        for model, until in sorted((await breakers.aopen()).items())
    ]


def budget_alert(rules: dict[str, AlertRule], event: ThresholdEvent) -> NewAlert | None:
    """The alert of a ``budget.threshold`` event: that of the budget rule with the highest
    threshold the event reached; None when it reached none."""
    reached = [
        (rule.threshold, name, rule)
        for name, rule in rules.items()
        if isinstance(rule, BudgetRule) and event.threshold + 1e-9 >= rule.threshold
    ]
    if not reached:
        return None
    _, name, rule = max(reached)
    line = f"{event.scope}|{event.budget}|{event.period_start:%Y-%m-%d}"
    return NewAlert(
        f"{name}:{line}",
        name,
        rule.kind,
        rule.severity,
        f"{event.holder} has spent ${event.spent_usd:.2f} of its {event.budget} budget of "
        f"${event.limit_usd:.2f} ({_pct(event.spent_usd / event.limit_usd)}, "
        f"alert at {_pct(rule.threshold)})",
        {
            "scope": event.scope,
            "budget": event.budget,
            "value": event.spent_usd,
            "limit_usd": event.limit_usd,
            "threshold": rule.threshold,
            "resets_at": event.resets_at.isoformat(),
        },
        ends_at=event.resets_at,
    )
