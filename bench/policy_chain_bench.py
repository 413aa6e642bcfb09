"""What the model-layer policies cost per model call (issue 15's "policy chain" target).

Two registries of the same fake model (`fake:bench`, an echo: no I/O, no sleep), built as a dockyard process
builds them: ``bare`` with no policies; ``full`` with every model-layer policy dockyard has
on — PII masking of the input and the answer, retries (tenacity), the circuit breaker, a
fallback chain and the per-call timeout — and the usage tally (observation) on the call.
Every call succeeds, so no retry or fallback is taken: the cost measured is the chain's
own, on the path every call takes. ``ainvoke`` with a 6-message prompt holding an e-mail
address and a phone number; p50 / p95 / p99 per call over ``--calls`` calls, alternating
``--rounds`` rounds. ``cache hit`` is ``full`` with ``policies.cache`` (in-process,
``force: true``, as the fake model has no temperature) on and the answer already stored:
every measured call is a hit, answered before PII, retries and the model.
``chat_model`` is ``full`` reached as graphs reach it, through the module-level
``chat_model("default")`` and the run's registry; ``chat_model + routing`` adds
``policies.routing`` with a rule of each kind (characters, priority, tools, estimated
tokens: the dearest), none of which holds, so the call goes to the default tier,
``default`` itself.

    .venv/bin/python bench/policy_chain_bench.py --calls 2000 --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from machine import machine_summary

from dockyard import chat_model
from dockyard.providers.registry import ModelRegistry
from dockyard.runtime.graphs import load_registry
from dockyard.runtime.usage import Usage, UsageTally
from dockyard.settings import Settings, load_settings

PROMPT: list[BaseMessage] = [
    SystemMessage("You are a support agent."),
    HumanMessage("Hi, my order A1001 has not arrived."),
    AIMessage("Sorry to hear that. Can you give me your e-mail?"),
    HumanMessage("Sure: hong@example.co.kr"),
    AIMessage("Thanks. And a phone number?"),
    HumanMessage("010-1234-5678, after 6 pm please."),
]


ROUTING = {
    "tiers": {"fast": "backup", "quality": "default"},
    "rules": [
        {"tier": "fast", "min_chars": 20000},
        {"tier": "fast", "priority": ["urgent", "high"]},
        {"tier": "fast", "min_tools": 8},
        {"tier": "fast", "min_tokens": 5000},
    ],
    "default": "quality",
}


def settings(root: Path, full: bool, cache: bool = False, routing: bool = False) -> Settings:
    models: dict[str, Any] = {"default": {"model": "fake:bench"}, "backup": "fake:bench"}
    policies: dict[str, Any] = {}
    if full:
        models["default"] |= {
            "fallbacks": ["backup"],
            "retry": {"max_attempts": 3, "timeout_seconds": 30, "deadline_seconds": 60},
            "breaker": {"failures": 5, "cooldown_seconds": 60, "failure_rate": 0.5},
        }
        policies = {"pii": {"action": "mask"}}
    if cache:
        policies["cache"] = {"ttl_seconds": 3600, "force": True}
    if routing:
        policies["routing"] = ROUTING
    return load_settings(None, project_dir=root, models=models, policies=policies)


async def measure(
    model: Any, calls: int, observe: bool, registry: ModelRegistry | None = None
) -> list[float]:
    out = []
    for _ in range(calls):
        config: dict[str, Any] = {"callbacks": [UsageTally(Usage())]} if observe else {}
        if registry is not None:  # as in a run: the registry in the config
            config = dict(registry.run_config(config))
        t = time.perf_counter()
        await model.ainvoke(PROMPT, config)
        out.append((time.perf_counter() - t) * 1e6)
    return out


def pct(samples: list[float], p: float) -> float:
    return statistics.quantiles(samples, n=100)[int(p) - 1]


async def main(calls: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        bare = load_registry(settings(Path(tmp), full=False)).models.get("default")
        full = load_registry(settings(Path(tmp), full=True)).models.get("default")
        hit = load_registry(settings(Path(tmp), full=True, cache=True)).models.get("default")
        plain = load_registry(settings(Path(tmp), full=True)).models
        routed = load_registry(settings(Path(tmp), full=True, routing=True)).models
        stand_in = chat_model("default")
        for model in (bare, full, hit):  # warm up (and store the answer the hits get)
            await measure(model, 200, True)
        for registry in (plain, routed):
            await measure(stand_in, 200, True, registry)
        samples: dict[str, list[float]] = {
            "bare": [],
            "full": [],
            "cache hit": [],
            "chat_model": [],
            "chat_model + routing": [],
        }
        for _ in range(rounds):
            samples["bare"] += await measure(bare, calls, False)
            samples["full"] += await measure(full, calls, True)
            samples["cache hit"] += await measure(hit, calls, True)
            samples["chat_model"] += await measure(stand_in, calls, True, plain)
            samples["chat_model + routing"] += await measure(stand_in, calls, True, routed)
    print(f"{machine_summary()}; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print("| set-up | p50 µs | p95 µs | p99 µs |")
    print("|---|---:|---:|---:|")
    for name, s in samples.items():
        print(f"| {name} | {pct(s, 50):.0f} | {pct(s, 95):.0f} | {pct(s, 99):.0f} |")
    b, f = samples["bare"], samples["full"]
    print(
        f"| chain's own cost | {pct(f, 50) - pct(b, 50):.0f} | {pct(f, 95) - pct(b, 95):.0f} "
        f"| {pct(f, 99) - pct(b, 99):.0f} |"
    )
    c, r = samples["chat_model"], samples["chat_model + routing"]
    print(
        f"| routing's own cost | {pct(r, 50) - pct(c, 50):.0f} | {pct(r, 95) - pct(c, 95):.0f} "
        f"| {pct(r, 99) - pct(c, 99):.0f} |"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.calls, args.rounds))
