"""What a run's model calls used and cost, observed for any graph.

``UsageTally`` is a LangChain callback handler the run attempt adds to each run's
config, so it sees every model call of the graph (``chat_model(...)``, a bare
``ChatOpenAI(...)``, a subgraph's) and never changes one. Per call it records a
``ModelCall`` (tokens, cost from the price table, latency, time to first token) into the
attempt's ``Usage``; the attempt stores its summary with the run (``runs.get`` shows it as
``usage``) and one ledger row per model for the aggregates (``dockyard usage``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from time import perf_counter
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, LLMResult

from dockyard.policies.cache import META_KEY as CACHE_META
from dockyard.policies.prices import DEFAULT_PRICES, PriceTable
from dockyard.policies.quality_gate import META_KEY as QUALITY_META
from dockyard.providers.registry import MODEL_NAME_KEY, TIER_KEY
from dockyard.storage.base import UsageRecord

# A run's stored usage lists its first calls one by one, then only counts them.
MAX_STORED_CALLS = 100
_TOKEN_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "total_tokens",
)


@dataclass(frozen=True, slots=True)
class ModelCall:
    """One finished model call, as a budget or an observer reads it. Input counts
    include the cached ones; ``cost_usd`` is None when the model has no price;
    ``first_token_ms`` is None when the call did not stream."""

    model: str
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float | None = None
    latency_ms: float = 0.0
    first_token_ms: float | None = None
    cache_hit: bool = False
    """Answered by the response cache (policies/cache.py): no tokens, no cost."""
    tier: str | None = None
    """The routing tier the call was sent to (policies/routing.py); None: not routed."""
    name: str | None = None
    """The ``models:`` name the call was made through (``default``); None: a model that
    dockyard's registry did not hand out. ``model`` is what the provider was asked for."""

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cached_input_tokens": self.cached_input_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "cost_usd": _usd(self.cost_usd),
            "latency_ms": round(self.latency_ms, 1),
            "first_token_ms": _ms(self.first_token_ms),
            "cache_hit": self.cache_hit,
            "tier": self.tier,
        }


@dataclass(slots=True)
class Usage:
    """Every model call of one run attempt, with totals. ``cost_usd`` sums the priced
    calls; ``unpriced`` names the models whose calls have no price."""

    model_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float = 0.0
    cache_hits: int = 0
    # Routed calls per tier.
    tiers: dict[str, int] = field(default_factory=dict)
    unpriced: set[str] = field(default_factory=set)
    calls: list[ModelCall] = field(default_factory=list)
    # The registry prompts the run's graph used (runtime/prompt_uses.py), each
    # (name, version, label) once.
    prompts: dict[tuple[str, int, str | None], None] = field(default_factory=dict)
    # The quality gate's verdict on the last answer it scored (policies/quality_gate.py),
    # with ``answers``: how many of the run's answers it scored.
    quality: dict[str, Any] | None = None

    @property
    def used(self) -> bool:
        """Whether there is anything to store with the run."""
        return bool(self.model_calls or self.prompts or self.quality)

    def scored(self, mark: Mapping[str, Any], *, cached: bool) -> None:
        answers = (self.quality or {}).get("answers", 0) + 1
        self.quality = {**mark, "cached": cached, "answers": answers}

    def prompt_list(self) -> list[dict[str, Any]]:
        return [{"name": n, "version": v, "label": lb} for n, v, lb in self.prompts]

    def add(self, call: ModelCall) -> None:
        self.model_calls += 1
        self.input_tokens += call.input_tokens
        self.output_tokens += call.output_tokens
        self.total_tokens += call.total_tokens
        self.cached_input_tokens += call.cached_input_tokens
        self.cache_write_tokens += call.cache_write_tokens
        self.cache_hits += call.cache_hit
        if call.tier is not None:
            self.tiers[call.tier] = self.tiers.get(call.tier, 0) + 1
        if call.cost_usd is None:
            self.unpriced.add(call.model)
        else:
            self.cost_usd += call.cost_usd
        self.calls.append(call)

    def per_model(self) -> dict[str, dict[str, Any]]:
        """Sums per model: calls, the token counts, cost (None: unpriced), latency."""
        models: dict[str, dict[str, Any]] = {}
        for call in self.calls:
            m = models.get(call.model)
            if m is None:
                m = models[call.model] = {"calls": 0, **dict.fromkeys(_TOKEN_FIELDS, 0)}
                m["cost_usd"] = None if call.cost_usd is None else 0.0
                m["latency_ms"] = 0.0
            m["calls"] += 1
            m["input_tokens"] += call.input_tokens
            m["output_tokens"] += call.output_tokens
            m["cached_input_tokens"] += call.cached_input_tokens
            m["cache_write_tokens"] += call.cache_write_tokens
            m["total_tokens"] += call.total_tokens
            if call.cost_usd is not None:
                m["cost_usd"] = (m["cost_usd"] or 0.0) + call.cost_usd
            m["latency_ms"] += call.latency_ms
        return models

    def as_dict(self) -> dict[str, Any]:
        """The run's ``usage`` as stored and shown by ``runs.get``."""
        models = self.per_model()
        for m in models.values():
            m["cost_usd"] = _usd(m["cost_usd"])
            m["latency_ms"] = round(m["latency_ms"], 1)
        return {
            "model_calls": self.model_calls,
            **{name: getattr(self, name) for name in _TOKEN_FIELDS},
            "cost_usd": _usd(self.cost_usd),
            "cache_hits": self.cache_hits,
            "tiers": dict(self.tiers),
            "unpriced_models": sorted(self.unpriced),
            "models": models,
            "calls": [c.as_dict() for c in self.calls[:MAX_STORED_CALLS]],
            "prompts": self.prompt_list(),
            **({"quality": self.quality} if self.quality is not None else {}),
        }

    def ledger(
        self,
        run_id: str,
        assistant_id: str,
        *,
        tenant_id: str | None = None,
        key_id: str | None = None,
        variant: str | None = None,
        at: datetime | None = None,
    ) -> list[UsageRecord]:
        """One row per model for the usage ledger (the aggregates' source); ``variant``:
        ``<rollout>:<stable|candidate>`` of a run a rollout assigned."""
        at = at or datetime.now(UTC)
        return [
            UsageRecord(
                run_id=run_id,
                assistant_id=assistant_id,
                tenant_id=tenant_id,
                key_id=key_id,
                model=model,
                day=at.date(),
                created_at=at,
                calls=m["calls"],
                input_tokens=m["input_tokens"],
                output_tokens=m["output_tokens"],
                cached_input_tokens=m["cached_input_tokens"],
                cache_write_tokens=m["cache_write_tokens"],
                cost_usd=m["cost_usd"],
                variant=variant,
            )
            for model, m in self.per_model().items()
        ]


def add_usage(prior: Mapping[str, Any] | None, usage: Usage) -> dict[str, Any] | None:
    """A run's stored usage after one more attempt: an attempt resumed after a hand-back
    adds to what the earlier ones used. None when no attempt called a model or used a
    registry prompt."""
    if not usage.used:
        return dict(prior) if prior else None
    now = usage.as_dict()
    if not prior:
        return now
    out: dict[str, Any] = {"model_calls": prior["model_calls"] + now["model_calls"]}
    for name in _TOKEN_FIELDS:
        out[name] = prior[name] + now[name]
    out["cost_usd"] = _usd(prior["cost_usd"] + now["cost_usd"])
    out["cache_hits"] = prior.get("cache_hits", 0) + now["cache_hits"]
    tiers = dict(prior.get("tiers") or {})
    for tier, calls in now["tiers"].items():
        tiers[tier] = tiers.get(tier, 0) + calls
    out["tiers"] = tiers
    out["unpriced_models"] = sorted({*prior["unpriced_models"], *now["unpriced_models"]})
    models = {name: dict(m) for name, m in prior["models"].items()}
    for name, m in now["models"].items():
        before = models.get(name)
        if before is None:
            models[name] = m
            continue
        for key in ("calls", *_TOKEN_FIELDS, "latency_ms"):
            before[key] += m[key]
        before["latency_ms"] = round(before["latency_ms"], 1)
        if m["cost_usd"] is not None:
            before["cost_usd"] = _usd((before["cost_usd"] or 0.0) + m["cost_usd"])
    out["models"] = models
    out["calls"] = [*prior["calls"], *now["calls"]][:MAX_STORED_CALLS]
    prompts = [*prior.get("prompts", []), *now["prompts"]]
    out["prompts"] = list({(p["name"], p["version"], p["label"]): p for p in prompts}.values())
    quality = now.get("quality") or prior.get("quality")
    if quality is not None:
        if now.get("quality") and prior.get("quality"):
            answers = prior["quality"].get("answers", 0) + now["quality"].get("answers", 0)
            quality = {**quality, "answers": answers}
        out["quality"] = quality
    return out


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _usd(value: float | None) -> float | None:
    # Enough digits for a one-token call of the cheapest model, without float noise.
    return None if value is None else round(value, 10)


@dataclass(slots=True)
class _Open:
    """A model call between its start and its end."""

    started: float
    model: str | None
    provider: str | None
    tier: str | None = None
    first_token: float | None = None
    name: str | None = None  # the models: name


class UsageTally(BaseCallbackHandler):
    """Records each finished model call into ``usage``, priced by ``prices``."""

    # In the loop, without a thread hop; only model events reach it.
    run_inline = True
    ignore_chain = True
    ignore_agent = True
    ignore_retriever = True
    ignore_retry = True
    ignore_custom_event = True

    def __init__(self, usage: Usage, prices: PriceTable = DEFAULT_PRICES) -> None:
        self.usage = usage
        self.prices = prices
        # Keyed by the call's id as an int: UUID.__hash__ is Python code, run per token.
        self._open: dict[int, _Open] = {}
        # The calls still waiting for their first token: once none is, a streamed
        # token costs one check.
        self._unstreamed: dict[int, _Open] = {}

    # Implemented so that LangChain does not fall back to on_llm_start, which renders
    # every message of the call to text first.
    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[Any]],
        *,
        run_id: UUID,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self._start(run_id, metadata, kwargs.get("invocation_params"))

    def on_llm_start(
        self,
        serialized: dict[str, Any],
        prompts: list[str],
        *,
        run_id: UUID,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self._start(run_id, metadata, kwargs.get("invocation_params"))

    def _start(
        self, run_id: UUID, metadata: dict[str, Any] | None, params: dict[str, Any] | None
    ) -> None:
        meta = metadata or {}
        model = meta.get("ls_model_name")
        if not model and params:
            model = params.get("model") or params.get("model_name")
        tier = meta.get(TIER_KEY)
        name = meta.get(MODEL_NAME_KEY)
        call = _Open(
            perf_counter(),
            model,
            meta.get("ls_provider"),
            tier if isinstance(tier, str) else None,
            name=name if isinstance(name, str) else None,
        )
        self._open[run_id.int] = self._unstreamed[run_id.int] = call

    def on_llm_new_token(self, token: Any, *, run_id: UUID, **kwargs: Any) -> None:
        if not self._unstreamed or not (token or _tool_chunk(kwargs)):
            return
        call = self._unstreamed.pop(run_id.int, None)
        if call is not None:
            call.first_token = perf_counter()

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._open.pop(run_id.int, None)
        self._unstreamed.pop(run_id.int, None)

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        ended = perf_counter()
        call = self._open.pop(run_id.int, None)
        self._unstreamed.pop(run_id.int, None)
        inputs = outputs = cached = written = 0
        served: str | None = None
        hit = False
        for generations in response.generations:
            for gen in generations:
                message = gen.message if isinstance(gen, ChatGeneration) else None
                if not isinstance(message, AIMessage):
                    continue
                served = (
                    served
                    or message.response_metadata.get("model_name")
                    or message.response_metadata.get("model")
                )
                hit = hit or message.response_metadata.get(CACHE_META) == "hit"
                mark = message.response_metadata.get(QUALITY_META)
                if isinstance(mark, dict):
                    self.usage.scored(mark, cached=hit)
                meta = message.usage_metadata
                if meta:
                    inputs += meta.get("input_tokens", 0)
                    outputs += meta.get("output_tokens", 0)
                    details = meta.get("input_token_details") or {}
                    cached += details.get("cache_read") or 0
                    written += details.get("cache_creation") or 0
        if not served and response.llm_output:
            served = response.llm_output.get("model_name") or response.llm_output.get("model")
        asked = call.model if call is not None else None
        provider = call.provider if call is not None else None
        name = asked or served or "unknown"
        found = self.prices.lookup(f"{provider}:{name}" if provider else None, name, served)
        self.usage.add(
            ModelCall(
                model=name,
                input_tokens=inputs,
                output_tokens=outputs,
                cached_input_tokens=cached,
                cache_write_tokens=written,
                cost_usd=(
                    0.0
                    if hit
                    else None
                    if found is None
                    else found[1].cost(inputs, outputs, cached, written)
                ),
                latency_ms=(ended - call.started) * 1000 if call is not None else 0.0,
                first_token_ms=(
                    (call.first_token - call.started) * 1000
                    if call is not None and call.first_token is not None
                    else None
                ),
                cache_hit=hit,
                tier=call.tier if call is not None else None,
                name=call.name if call is not None else None,
            )
        )


def _tool_chunk(kwargs: dict[str, Any]) -> bool:
    """A streamed chunk that starts a tool call (its text token is empty)."""
    chunk = kwargs.get("chunk")
    message = getattr(chunk, "message", None)
    return bool(getattr(message, "tool_call_chunks", None))
