"""What observing a model call costs: the usage tally on LangChain's real callback path.

A fake chat model (no I/O) answers ``--calls`` calls with a ``--messages``-message prompt,
``ainvoke`` and ``astream``, in three set-ups: no handler; ``TokensOnly``, the tally as
it was before per-call records (tokens summed in ``on_llm_end`` only, so LangChain
renders every prompt to text for its ``on_llm_start`` fallback); and ``UsageTally``
(per-call model, tokens, cost, latency, time to first token). Reports the median
microseconds per call over ``--repeat`` rounds, each set-up's cost over no handler, and
the tally's own methods per call without LangChain's dispatch around them.

    .venv/bin/python bench/usage_bench.py --calls 2000 --repeat 7
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.outputs import LLMResult
from machine import machine_summary

from dockyard.runtime.usage import Usage, UsageTally
from dockyard.testing import ScriptedChatModel


class TokensOnly(BaseCallbackHandler):
    """The tally before per-call records: sums usage_metadata in on_llm_end."""

    run_inline = True
    ignore_chain = True
    ignore_agent = True
    ignore_retriever = True
    ignore_retry = True
    ignore_custom_event = True

    def __init__(self) -> None:
        self.calls = self.tokens = 0

    def on_llm_end(self, response: LLMResult, **kwargs: Any) -> None:
        self.calls += 1
        for generations in response.generations:
            for gen in generations:
                meta = getattr(getattr(gen, "message", None), "usage_metadata", None)
                if meta:
                    self.tokens += meta.get("total_tokens", 0)


def handlers(kind: str) -> list[Any]:
    if kind == "none":
        return []
    if kind == "tokens-only":
        return [TokensOnly()]
    return [UsageTally(Usage())]


async def round_us(kind: str, stream: bool, calls: int, prompt: list[BaseMessage]) -> float:
    reply = AIMessage("one two three four five six seven eight")
    model = ScriptedChatModel(responses=[reply], cycle=True, model_name="gpt-4o-mini")
    config: Any = {"callbacks": handlers(kind)}
    started = time.perf_counter()
    for _ in range(calls):
        if stream:
            async for _chunk in model.astream(prompt, config):
                pass
        else:
            await model.ainvoke(prompt, config)
    return (time.perf_counter() - started) / calls * 1e6


def own_methods_us(calls: int) -> float:
    """The tally's own work per call (start, 8 streamed tokens, end), without LangChain's
    callback dispatch around it."""
    from uuid import uuid4

    from langchain_core.messages.ai import UsageMetadata
    from langchain_core.outputs import ChatGeneration

    usage = UsageMetadata(input_tokens=1000, output_tokens=8, total_tokens=1008)
    message = AIMessage("one two three four five six seven eight", usage_metadata=usage)
    message.response_metadata = {"model_name": "gpt-4o-mini-2024-07-18"}
    result = LLMResult(generations=[[ChatGeneration(message=message)]])
    meta = {"ls_model_name": "gpt-4o-mini", "ls_provider": "openai"}
    tally = UsageTally(Usage())
    started = time.perf_counter()
    for _ in range(calls):
        run_id = uuid4()
        tally.on_chat_model_start({}, [], run_id=run_id, metadata=meta)
        for token in ("", "one", " two", " three", " four", " five", " six", " seven"):
            tally.on_llm_new_token(token, run_id=run_id)
        tally.on_llm_end(result, run_id=run_id)
    return (time.perf_counter() - started) / calls * 1e6


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--messages", type=int, default=10)
    args = parser.parse_args()
    prompt: list[BaseMessage] = [
        HumanMessage(f"message {i}: " + "words of a conversation " * 20)
        for i in range(args.messages)
    ]
    print(f"machine: {machine_summary()}")
    print(f"{args.calls} calls x {args.repeat} rounds, prompt of {args.messages} messages")
    print("| path | no handler µs | tokens-only µs (+) | UsageTally µs (+) |")
    print("|---|---|---|---|")
    for stream in (False, True):
        medians: dict[str, float] = {}
        samples: dict[str, list[float]] = {k: [] for k in ("none", "tokens-only", "tally")}
        for _ in range(args.repeat):  # interleaved, so drift hits every set-up alike
            for kind in samples:
                samples[kind].append(await round_us(kind, stream, args.calls, prompt))
        medians = {k: statistics.median(v) for k, v in samples.items()}
        base = medians["none"]
        print(
            f"| {'astream' if stream else 'ainvoke'} | {base:.1f} "
            f"| {medians['tokens-only']:.1f} ({medians['tokens-only'] - base:+.1f}) "
            f"| {medians['tally']:.1f} ({medians['tally'] - base:+.1f}) |"
        )
    own = statistics.median(own_methods_us(args.calls * 10) for _ in range(args.repeat))
    print(f"UsageTally's own methods per call (start, 8 tokens, end): {own:.1f} µs")


if __name__ == "__main__":
    asyncio.run(main())
