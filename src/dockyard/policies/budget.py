"""Budgets (``policies.budget``): daily and monthly spending limits per API key and per
tenant, reserved at admission so that concurrent requests cannot overspend.

When a run is created (``RunService.start``, through ``Admission.hold``) or a gateway
call starts (``api/gateway.py``), ``Budgets.hold`` holds an estimate of its cost on each
budget line of its caller, atomically against what the ledger says was spent in the
period plus what the runs and calls still going hold (storage/budgets.py; in the
database, or in Redis with ``redis_url``). A line without room refuses the request with
402 ``budget_exceeded`` naming the budget, its limit, what was spent and when it resets.
When the run ends (``on_ended``: a run observer) or the call ends, its real cost is in
the ledger and the hold is settled; a hold nobody settles (its process died) expires
after ``hold_seconds``.

The estimate (``estimate``): ``reserve_usd`` when set; else the request's text as tokens
(``policies/input_limits.estimate_tokens``) at the input price plus the call's
``max_tokens`` (else ``max_tokens_per_request``, else ``estimate_output_tokens``) at the
output price, priced as the model named (a gateway call) or ``estimate_model`` (a run,
whose graph may call any model). A run that calls its model several times costs more
than it held: the hold keeps concurrent requests from all passing on the same room, the
ledger makes the next request pay for what was really spent.

Thresholds: when a settle makes a period's spend reach a share of a limit
(``thresholds``, default 0.8 and 0.95) for the first time, a ``budget.threshold`` event
goes out once per line, period and share, across every process that shares the store:
logged as a structured line and handed to every hook in ``THRESHOLD_HOOKS``
(``on_threshold``), where the alerting policy subscribes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from langchain_core.callbacks import AsyncCallbackHandler
from pydantic import ValidationError

from dockyard import caller, events
from dockyard.errors import BudgetExceededError, ConfigError, InvalidRequestError
from dockyard.policies.input_limits import estimate_tokens, request_texts
from dockyard.policies.prices import Price, PriceTable
from dockyard.run_spec import RunSpec
from dockyard.sampling import MODEL_PARAMS_KEY
from dockyard.settings import BudgetConfig, BudgetOverride, Settings
from dockyard.storage.budgets import (
    NANOS,
    BudgetLine,
    BudgetStore,
    Crossing,
    Shortfall,
    period_end,
    period_start,
    to_nanos,
)

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from dockyard.storage.common import Storage

log = logging.getLogger("dockyard.budget")

REPORT_SECONDS = 5.0
"""How often a budget line's spend is read again for the "budget" event (the metrics' gauges)."""
_MAX_REMEMBERED = 10_000


@dataclass(frozen=True, slots=True)
class ThresholdEvent:
    """``budget.threshold``: spend reached ``threshold`` of a budget in its period."""

    budget: str  # daily | monthly
    scope: str  # key:<id> | tenant:<name> | anonymous
    holder: str  # in words: "API key 'k1'"
    limit_usd: float
    spent_usd: float
    threshold: float
    period_start: datetime
    resets_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "event": "budget.threshold",
            "budget": self.budget,
            "scope": self.scope,
            "limit_usd": self.limit_usd,
            "spent_usd": self.spent_usd,
            "threshold": self.threshold,
            "period_start": _iso(self.period_start),
            "resets_at": _iso(self.resets_at),
        }


ThresholdHook = Callable[[ThresholdEvent], None]
THRESHOLD_HOOKS: list[ThresholdHook] = []
"""Called in the event loop for each ``budget.threshold`` event of this process, in order;
a hook must not block (schedule I/O) and one that raises is logged and skipped."""


def on_threshold(hook: ThresholdHook) -> Callable[[], None]:
    """Subscribe ``hook`` to ``budget.threshold`` events; returns the unsubscriber."""
    THRESHOLD_HOOKS.append(hook)
    return lambda: THRESHOLD_HOOKS.remove(hook)


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _usd(nanos: int) -> float:
    return round(nanos / NANOS, 9)


def own_limits(policies: Mapping[str, Any] | None) -> BudgetOverride | None:
    """A key's own budget (``Caller.policies["budget"]``), validated; None without one."""
    raw = (policies or {}).get("budget")
    if raw is None:
        return None
    if isinstance(raw, BudgetOverride):
        return raw
    try:
        return BudgetOverride.model_validate(raw)
    except ValidationError as e:
        # The key's stored settings are the operator's, not the client's: a server error
        # that says what to fix.
        raise ConfigError(f"the API key's budget settings are not valid: {e}") from None


class Budgets:
    """The budget policy of one process: what to hold, the store it holds in, and the
    settling (as a run observer: ``on_ended``)."""

    def __init__(
        self,
        config: BudgetConfig,
        store: BudgetStore,
        *,
        prices: PriceTable | None = None,
        model_names: Mapping[str, str] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.config = config
        self.store = store
        self.prices = prices or PriceTable.from_config()
        # `models:` name -> "provider:model", for prices.
        self.model_names = dict(model_names or {})
        self.clock = clock
        self._tasks: set[asyncio.Task[None]] = set()
        # For the "budget" events (the metrics' gauges), only while someone watches: the
        # lines of the holds made here (a settle here then needs no read of them), and
        # when each line was last reported (a gauge is scraped every few seconds: reading
        # every line's spend again on every settle cost a gateway call 8% of its CPU).
        self._held_lines: dict[str, Sequence[BudgetLine]] = {}
        self._reported: dict[str, float] = {}

    @classmethod
    def from_settings(
        cls, settings: Settings, storage: Storage, redis: Redis | None = None
    ) -> Budgets | None:
        config = settings.policies.budget
        if config is None:
            return None
        from dockyard.storage.sql.budgets import SqlBudgets

        sql = SqlBudgets(storage.engine)
        store: BudgetStore = sql
        if redis is not None:
            from dockyard.policies.budget_redis import RedisBudgets

            store = RedisBudgets(redis, settings.redis_prefix, sql.ledger)
        names = {name: spec.model for name, spec in settings.models.items()}
        budgets = cls(
            config,
            store,
            prices=PriceTable.from_config(settings.policies.prices),
            model_names=names,
        )
        if config.reserve_usd is None and budgets.price(config.estimate_model) is None:
            log.warning(
                "policies.budget: model %r has no price, so runs hold nothing while they "
                "run (set policies.budget.reserve_usd, or a price under policies.prices): "
                "concurrent runs can then overspend by what they cost",
                config.estimate_model,
            )
        return budgets

    # -- what to hold ------------------------------------------------------------------

    def lines(
        self, tenant: str | None, key_id: str | None, own: BudgetOverride | None = None
    ) -> list[BudgetLine]:
        """The budgets a caller's requests count against: its key's (its own limits over
        the defaults; callers without a key share the ``anonymous`` one) and its tenant's."""
        cfg = self.config
        out = []
        scope = f"key:{key_id}" if key_id is not None else "anonymous"
        for period, default in (("daily", cfg.daily_usd), ("monthly", cfg.monthly_usd)):
            limit = getattr(own, f"{period}_usd", None) if own is not None else None
            limit = limit if limit is not None else default
            if limit is not None:
                out.append(BudgetLine(scope, period, to_nanos(limit)))  # type: ignore[arg-type]
        if tenant is not None and cfg.tenant is not None:
            for period in ("daily", "monthly"):
                limit = getattr(cfg.tenant, f"{period}_usd")
                if limit is not None:
                    out.append(BudgetLine(f"tenant:{tenant}", period, to_nanos(limit)))  # type: ignore[arg-type]
        return out

    def price(self, model: str) -> Price | None:
        name = self.model_names.get(model, model)
        found = self.prices.lookup(name)
        return found[1] if found is not None else None

    def estimate(self, input_tokens: int, max_tokens: int | None, model: str) -> int:
        """Nano-dollars to hold for a call (or run) of ``input_tokens`` text."""
        cfg = self.config
        if cfg.reserve_usd is not None:
            return to_nanos(cfg.reserve_usd)
        price = self.price(model)
        if price is None:
            return 0
        output = max_tokens or cfg.max_tokens_per_request or cfg.estimate_output_tokens
        return to_nanos(price.cost(input_tokens, output))

    def check_max_tokens(self, asked: int | None, where: str) -> int | None:
        """The max_tokens a request gets: its own, refused over ``max_tokens_per_request``;
        the cap when it names none."""
        cap = self.config.max_tokens_per_request
        if cap is None:
            return asked
        if asked is not None and asked > cap:
            raise InvalidRequestError(
                f"{where} = {asked} is over this server's limit of {cap} tokens per request "
                "(policies.budget.max_tokens_per_request); ask for fewer",
                code="max_tokens_exceeded",
                param=where,
            )
        return cap if asked is None else asked

    def admit_spec(self, spec: RunSpec) -> RunSpec:
        """The run's spec with ``max_tokens_per_request`` applied to its model params."""
        if self.config.max_tokens_per_request is None:
            return spec
        config = dict(spec.config or {})
        configurable = dict(config.get("configurable") or {})
        params = dict(configurable.get(MODEL_PARAMS_KEY) or {})
        asked = params.get("max_tokens")
        allowed = self.check_max_tokens(
            asked if isinstance(asked, int) else None,
            "config.configurable.model_params.max_tokens",
        )
        if allowed == asked:
            return spec
        params["max_tokens"] = allowed
        configurable[MODEL_PARAMS_KEY] = params
        config["configurable"] = configurable
        return spec.replace(config=config)

    def run_estimate(self, spec: RunSpec) -> int:
        tokens = sum(estimate_tokens(t.text) for t in request_texts(spec))
        configurable = (spec.config or {}).get("configurable") or {}
        params = configurable.get(MODEL_PARAMS_KEY) or {}
        asked = params.get("max_tokens") if isinstance(params, Mapping) else None
        return self.estimate(
            tokens, asked if isinstance(asked, int) else None, self.config.estimate_model
        )

    # -- holding and settling ----------------------------------------------------------

    async def hold(
        self,
        hold_id: str,
        amount: int,
        *,
        tenant: str | None,
        key_id: str | None,
        own: BudgetOverride | None = None,
    ) -> bool:
        """Hold ``amount`` for ``hold_id``; ``BudgetExceededError`` when a budget has no
        room. False when the caller has no budget (nothing held)."""
        lines = self.lines(tenant, key_id, own)
        if not lines:
            return False
        now = self.clock()
        try:
            # At least a nano-dollar: a spent-up budget refuses even a request with no price.
            short = await self.store.hold(
                hold_id, lines, max(amount, 1), now=now, ttl=self.config.hold_seconds
            )
        except ValueError:
            # The id holds already: the same run created twice (a retried request, a
            # cron firing in two processes), which its creation then refuses as a conflict.
            return False
        if short is not None:
            raise refusal(short, max(amount, 1), now)
        if events.watched():
            if len(self._held_lines) >= _MAX_REMEMBERED:  # holds settled elsewhere
                self._held_lines.clear()
            self._held_lines[hold_id] = lines
        return True

    async def hold_for_run(self, run_id: str, spec: RunSpec) -> bool:
        """Hold a run's estimate for its caller (the ids stamped in its metadata, else
        the request's caller)."""
        return await self.hold_for_caller(run_id, self.run_estimate(spec), spec.metadata)

    async def hold_for_caller(
        self, hold_id: str, amount: int, metadata: Mapping[str, Any] | None = None
    ) -> bool:
        """Hold ``amount`` for the ids stamped in ``metadata``, else the request's caller
        (with its key's own budget when the key is the caller's)."""
        tenant, key_id = caller.ids(metadata)
        who = caller.current()
        if tenant is None and key_id is None and who is not None:
            tenant, key_id = who.tenant, who.key_id
        own = own_limits(who.policies) if who is not None and who.key_id == key_id else None
        return await self.hold(hold_id, amount, tenant=tenant, key_id=key_id, own=own)

    async def settle(self, hold_id: str, cost_usd: float | None) -> None:
        # The hold's budgets (read before the settle ends it), only when someone watches.
        lines = self._held_lines.pop(hold_id, None)
        if lines is None:
            lines = await self.store.lines(hold_id) if events.watched() else []
        crossings = await self.store.settle(
            hold_id,
            to_nanos(cost_usd or 0.0),
            now=self.clock(),
            thresholds=self.config.thresholds,
        )
        emit(crossings)
        if lines:
            await self._report(lines)

    async def _report(self, lines: Sequence[BudgetLine]) -> None:
        """A "budget" event per budget settled against: its spend and limit now, at most
        once per ``REPORT_SECONDS`` per budget line."""
        now = self.clock()
        tick = time.monotonic()
        due = [
            line
            for line in lines
            if tick - self._reported.get(line.name(now), -1e9) >= REPORT_SECONDS
        ]
        if not due:
            return
        if len(self._reported) >= _MAX_REMEMBERED:
            self._reported.clear()
        for line in due:
            self._reported[line.name(now)] = tick
        try:
            for line in due:
                spent = await self.store.spent(line, now)
                scope, _, owner = line.scope.partition(":")
                events.emit(
                    "budget",
                    scope=scope,
                    owner=owner,
                    period=line.period,
                    spent=_usd(spent),
                    limit=_usd(line.limit),
                )
        except Exception as e:  # the settle is done; only the gauges wait for the next one
            log.warning("budget: spend not reported: %s: %s", type(e).__name__, e)

    async def release(self, hold_id: str) -> None:
        self._held_lines.pop(hold_id, None)
        await self.store.release(hold_id)

    def _later(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("budget settle failed: %s: %s", type(exc).__name__, exc)

    async def check_running(self, lines: Sequence[BudgetLine], running_usd: float) -> None:
        """Before a model call of a running run: ``BudgetExceededError`` when a budget it
        counts against is used up, by the ledger's spend and this attempt's own cost so
        far (``running_usd``, not in the ledger until the run ends)."""
        now = self.clock()
        running = to_nanos(running_usd)
        for line in lines:
            spent = await self.store.spent(line, now)
            if spent + running >= line.limit:
                raise used_up(line, spent, running, now)

    # -- run observer (runtime/observers.py) -------------------------------------------

    def run_callbacks(self, run: Mapping[str, Any], usage: Any) -> list[Any]:
        """The handlers an attempt of ``run`` adds to its config: the guard that stops
        its model calls once its budget is used up (``usage``: the attempt's tally)."""
        return [BudgetGuard(self, run["run_id"], lambda: float(usage.cost_usd))]

    def on_created(self, run: Any) -> None:
        return None

    def on_started(self, run: Any) -> None:
        return None

    def on_ended(self, run: Mapping[str, Any], outcome: Any, usage: Any) -> None:
        self._later(self.settle(run["run_id"], getattr(usage, "cost_usd", 0.0)))

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        """Settles under way finish; then the store closes."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.store.aclose()


def _body(line: BudgetLine, now: datetime, **amounts: float) -> dict[str, Any]:
    """What a budget refusal's body says about the budget (``budget`` of the error)."""
    kind, _, ident = line.scope.partition(":")
    return {
        "period": line.period,
        "scope": kind,
        "holder": ident or None,
        "limit_usd": _usd(line.limit),
        **amounts,
        "period_start": _iso(period_start(line.period, now)),
        "resets_at": _iso(period_end(line.period, now)),
    }


def refusal(short: Shortfall, amount: int, now: datetime) -> BudgetExceededError:
    line = short.line
    resets = period_end(line.period, now)
    limit, spent, held = _usd(line.limit), _usd(short.spent), _usd(short.held)
    in_flight = f" and ${held:.6g} held by requests in progress" if short.held else ""
    message = (
        f"the {line.period} budget of {line.holder} is used up: ${spent:.6g} spent{in_flight} "
        f"of its ${limit:.6g} limit, and this request needs about ${_usd(amount):.6g}; "
        f"it resets at {_iso(resets)}"
    )
    body = _body(line, now, spent_usd=spent, held_usd=held, requested_usd=_usd(amount))
    return BudgetExceededError(message, budget=body)


def used_up(line: BudgetLine, spent: int, running: int, now: datetime) -> BudgetExceededError:
    resets = period_end(line.period, now)
    total = spent + running
    message = (
        f"the {line.period} budget of {line.holder} is used up: ${_usd(total):.6g} spent "
        f"(${_usd(running):.6g} of it by this run) of its ${_usd(line.limit):.6g} limit; "
        f"the run stops before its next model call; the budget resets at {_iso(resets)}"
    )
    body = _body(line, now, spent_usd=_usd(total), run_usd=_usd(running))
    return BudgetExceededError(message, budget=body)


class BudgetGuard(AsyncCallbackHandler):
    """A run's model calls stop once a budget the run counts against is used up: before
    each call (``on_chat_model_start``) the run's budget lines (its hold's) are checked
    against the ledger's spend plus the attempt's own cost so far. Raises (LangChain
    passes a handler's error on when ``raise_error``), so the call fails with 402 and
    the run ends with ``budget_exceeded`` recorded."""

    raise_error = True
    ignore_chain = True
    ignore_agent = True
    ignore_retriever = True
    ignore_retry = True
    ignore_custom_event = True

    def __init__(self, budgets: Budgets, hold_id: str, running: Callable[[], float]) -> None:
        self.budgets = budgets
        self.hold_id = hold_id
        self.running = running
        self._loop = asyncio.get_running_loop()
        self._lines: list[BudgetLine] | None = None

    async def on_chat_model_start(self, serialized: Any, messages: Any, **kwargs: Any) -> None:
        await self._check()

    async def on_llm_start(self, serialized: Any, prompts: Any, **kwargs: Any) -> None:
        await self._check()

    async def _check(self) -> None:
        if asyncio.get_running_loop() is not self._loop:
            # A synchronous model call: LangChain runs this handler on a loop of its own,
            # where the stores' connections (bound to the run's loop) cannot be used.
            return
        if self._lines is None:
            self._lines = await self.budgets.store.lines(self.hold_id)
        if self._lines:
            await self.budgets.check_running(self._lines, self.running())


def emit(crossings: Iterable[Crossing], hooks: Sequence[ThresholdHook] | None = None) -> None:
    """Log each crossing as ``budget.threshold`` and hand it to every hook."""
    for c in crossings:
        event = ThresholdEvent(
            budget=c.line.period,
            scope=c.line.scope,
            holder=c.line.holder,
            limit_usd=_usd(c.line.limit),
            spent_usd=_usd(c.spent),
            threshold=c.threshold,
            period_start=c.start,
            resets_at=period_end(c.line.period, c.start),
        )
        log.warning("budget.threshold %s", json.dumps(event.as_dict()))
        for hook in list(THRESHOLD_HOOKS if hooks is None else hooks):
            try:
                hook(event)
            except Exception:
                log.exception("budget.threshold hook %r failed", hook)


__all__ = [
    "THRESHOLD_HOOKS",
    "BudgetGuard",
    "Budgets",
    "ThresholdEvent",
    "ThresholdHook",
    "emit",
    "on_threshold",
    "own_limits",
    "refusal",
    "used_up",
]
