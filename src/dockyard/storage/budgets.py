"""Budgets' bookkeeping: what a budget is, and the protocol of the stores that hold estimates
against it (policies/budget.py decides what to hold; docs/policies.md, "Budgets").

Money is counted in whole nano-dollars (``NANOS`` per USD): five holds of 0.01 make
exactly 0.05, where floats make 0.05000000000000001 and refuse the fifth.

A budget line is one holder and one period (``key:k1`` daily, ``tenant:acme`` monthly).
What counts against it in a period: the ledger's spend since the period began (runs and
gateway calls write the ledger as they settle), plus the holds of runs and calls still
going. A hold is taken atomically against both, so concurrent requests cannot overspend;
it is settled when its run or call ends (by then the ledger has the real cost) and
expires after its ``ttl`` if nobody settles it (the process died).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol

NANOS = 1_000_000_000

Period = Literal["daily", "monthly"]
PERIODS: tuple[Period, ...] = ("daily", "monthly")


def to_nanos(usd: float) -> int:
    return round(usd * NANOS)


def period_start(period: Period, now: datetime) -> datetime:
    """When the period holding ``now`` began: 00:00 UTC, of the day or of the month's 1st."""
    now = now.astimezone(UTC)
    day = datetime(now.year, now.month, now.day, tzinfo=UTC)
    return day if period == "daily" else day.replace(day=1)


def period_end(period: Period, now: datetime) -> datetime:
    """When the period holding ``now`` ends and the budget starts afresh."""
    start = period_start(period, now)
    if period == "daily":
        return start + timedelta(days=1)
    return (start + timedelta(days=32)).replace(day=1)


@dataclass(frozen=True, slots=True)
class BudgetLine:
    """One budget: ``scope`` is ``key:<key id>``, ``tenant:<tenant>`` or ``anonymous``
    (callers without a key), ``period`` daily or monthly, ``limit`` in nano-dollars."""

    scope: str
    period: Period
    limit: int

    def name(self, now: datetime) -> str:
        """The line in the period holding ``now``: ``key:k1|daily|2026-12-07``."""
        return f"{self.scope}|{self.period}|{period_start(self.period, now):%Y-%m-%d}"

    @property
    def holder(self) -> str:
        """Who, in words (never a secret): ``API key 'k1'``, ``tenant 'acme'``."""
        kind, _, ident = self.scope.partition(":")
        if kind == "key":
            return f"API key {ident!r}"
        if kind == "tenant":
            return f"tenant {ident!r}"
        return "callers without an API key"


def parse_name(name: str) -> tuple[str, Period, datetime]:
    """(scope, period, period start) of a line's ``name``."""
    scope, period, day = name.rsplit("|", 2)
    assert period in PERIODS, name
    start = datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC)
    return scope, period, start  # type: ignore[return-value]


@dataclass(frozen=True, slots=True)
class Shortfall:
    """Why a hold was refused: the first ``line`` without room for it, what the ledger
    says was ``spent`` in its period and what other runs and calls ``held``."""

    line: BudgetLine
    spent: int
    held: int


@dataclass(frozen=True, slots=True)
class Crossing:
    """A threshold (a share of ``line``'s limit) that spend reached for the first time in
    the period beginning ``start``; ``spent``: the period's spend then."""

    line: BudgetLine
    threshold: float
    spent: int
    start: datetime


class BudgetStore(Protocol):
    """Holds against budget lines; atomic across every process that shares the store."""

    async def hold(
        self,
        hold_id: str,
        lines: Sequence[BudgetLine],
        amount: int,
        *,
        now: datetime,
        ttl: float,
    ) -> Shortfall | None:
        """Hold ``amount`` on every line if each has room for it (spent + held + amount
        <= limit), else on none and say which line had none. A second hold with the
        same id replaces nothing: it is refused with ValueError."""
        ...

    async def settle(
        self, hold_id: str, cost: int, *, now: datetime, thresholds: Sequence[float]
    ) -> list[Crossing]:
        """The hold's run or call ended and its ``cost`` is in the ledger: the hold goes
        and the cost counts as spent on the hold's lines, in the period holding ``now``.
        Returns the ``thresholds`` that this made spend reach first in their period,
        each once across every process. An unknown hold: nothing to do, []."""
        ...

    async def release(self, hold_id: str) -> None:
        """The run or call never started: the hold goes, nothing was spent."""
        ...

    async def spent(self, line: BudgetLine, now: datetime) -> int:
        """The line's spend in the period holding ``now``."""
        ...

    async def lines(self, hold_id: str) -> list[BudgetLine]:
        """The lines a hold is on (until it is settled or released); [] for none."""
        ...

    async def aclose(self) -> None: ...


class Ledger(Protocol):
    """The usage ledger's spend of one scope since a time (nano-dollars)."""

    async def __call__(self, scope: str, since: datetime) -> int: ...


__all__ = [
    "NANOS",
    "PERIODS",
    "BudgetLine",
    "BudgetStore",
    "Crossing",
    "Ledger",
    "Period",
    "Shortfall",
    "parse_name",
    "period_end",
    "period_start",
    "to_nanos",
]
