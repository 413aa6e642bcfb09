"""What the input guardrail costs a run request: ``InputGuard.check`` on typed run specs,
in-process, p50 / p99 in microseconds per request (docs/policies.md, "Input guardrails").

    .venv/bin/python bench/input_guard_bench.py [--repeat 2000]

Cases: a short chat turn, a 20-message conversation, a 20,000-character message (English
and Korean), each with every check on (limits, schema, injection rules under ``flag``).
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from dockyard.policies.input_guard import InputGuard
from dockyard.run_spec import RunSpec
from dockyard.settings import InputGuardConfig

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"messages": {"type": "array", "items": {"$ref": "#/$defs/HumanMessage"}}},
    "$defs": {"HumanMessage": {"type": "object"}},
}
TURN = "Hi, my order 1234 has not arrived yet. Can you check where it is and when it comes?"
KO_TURN = "안녕하세요, 주문한 상품이 아직 도착하지 않았어요. 배송 상태를 확인해 주실 수 있나요?"


def _spec(messages: list[dict[str, str]]) -> RunSpec:
    return RunSpec(assistant_id="bench", input={"messages": messages})


CASES: dict[str, RunSpec] = {
    "one turn (83 chars)": _spec([{"role": "user", "content": TURN}]),
    "20 messages (~1,700 chars)": _spec(
        [{"role": "user" if i % 2 == 0 else "assistant", "content": TURN} for i in range(20)]
    ),
    "one message, 20,000 chars EN": _spec([{"role": "user", "content": (TURN + " ") * 238}]),
    "one message, 20,000 chars KO": _spec([{"role": "user", "content": (KO_TURN + " ") * 400}]),
}


def _measure(guard: InputGuard, spec: RunSpec, repeat: int) -> tuple[float, float]:
    samples: list[float] = []
    for _ in range(repeat):
        start = time.perf_counter_ns()
        guard.check(spec, SCHEMA)
        samples.append((time.perf_counter_ns() - start) / 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2000)
    args = parser.parse_args()
    guard = InputGuard(InputGuardConfig(max_chars=100_000, max_tokens=50_000, injection="flag"))
    print(f"{'case':32} {'p50 µs':>9} {'p99 µs':>9}")
    for name, spec in CASES.items():
        repeat = args.repeat if "20,000" not in name else max(args.repeat // 10, 50)
        p50, p99 = _measure(guard, spec, repeat)
        print(f"{name:32} {p50:9.1f} {p99:9.1f}")


if __name__ == "__main__":
    main()
