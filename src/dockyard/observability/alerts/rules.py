"""What each kind of alert rule checks, read from storage so that every process agrees.

A rule is evaluated to the alerts that are true now (``NewAlert``, none when all is
well); the evaluator compares them with those firing (``evaluator.py``). Budget rules
are not evaluated: the budget policy's ``budget.threshold`` events open them
(``budget_alert``) and they clear when the budget's period ends.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Protocol

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


class OpenBreakers(Protocol):
    async def aopen(self) -> dict[str, float]: ...


def p95(values: Sequence[float]) -> float:
    """The nearest-rank 95th percentile (the value 95% of the values are at or below)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def _scope(rule: AlertRule) -> str:
    return f" of {rule.assistant}" if rule.assistant else ""


def _pct(x: float) -> str:
    return f"{x * 100:.1f}%"


async def evaluate(
    name: str,
    rule: AlertRule,
    store: AlertStore,
    now: datetime,
    breakers: OpenBreakers | None = None,
) -> list[NewAlert] | None:
    """The alerts of ``rule`` true at ``now``; None for a rule that is not evaluated
    (budget: opened by events)."""
    if isinstance(rule, BudgetRule):
        return None
    if isinstance(rule, BreakerRule):
        return await _breakers(name, rule, breakers, now)
    ids = await store.assistant_ids(rule.assistant) if rule.assistant else None

    def alert(summary: str, **details: object) -> list[NewAlert]:
        return [NewAlert(name, name, rule.kind, rule.severity, summary, dict(details))]

    if isinstance(rule, InterruptedRule):
        waiting = await store.waiting_runs(now - timedelta(minutes=rule.minutes), ids)
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
        scores = await store.quality_scores(since, ids)
        if len(scores) < rule.min_runs:
            return []
        mean = sum(scores) / len(scores)
        if mean >= rule.threshold:
            return []
        return alert(
            f"Quality score{_scope(rule)} {mean:.2f} < {rule.threshold:g} "
            f"over {window} ({len(scores)} scored runs)",
            value=round(mean, 4),
            threshold=rule.threshold,
            runs=len(scores),
            window_minutes=rule.window_minutes,
        )
    ended = await store.ended_runs(since, ids)
    if len(ended) < rule.min_runs:
        return []
    errors = sum(1 for r in ended if r.status != "success")
    common = {"runs": len(ended), "window_minutes": rule.window_minutes}
    if isinstance(rule, ErrorRateRule):
        rate = errors / len(ended)
        if rate <= rule.threshold:
            return []
        return alert(
            f"Error rate{_scope(rule)} {_pct(rate)} > {_pct(rule.threshold)} over {window} "
            f"({errors} of {len(ended)} runs)",
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
        ok = (len(ended) - errors) / len(ended)
        if ok >= rule.threshold:
            return []
        return alert(
            f"Availability{_scope(rule)} {_pct(ok)} < {_pct(rule.threshold)} over {window} "
            f"({errors} of {len(ended)} runs failed)",
            value=round(ok, 4),
            threshold=rule.threshold,
            errors=errors,
            **common,
        )
    assert isinstance(rule, LatencyRule)
    latency = p95([r.seconds for r in ended])
    if latency <= rule.threshold_seconds:
        return []
    return alert(
        f"p95 run latency{_scope(rule)} {latency:.1f}s > {rule.threshold_seconds:g}s "
        f"over {window} ({len(ended)} runs)",
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
