"""Ask the research team a question with langgraph-sdk, watching each agent work.

    .venv/bin/dockyard serve -c examples/research/dockyard.yaml          # terminal 1
    .venv/bin/python examples/research/client.py [URL] ["a question"]    # terminal 2

Streams the run with ``stream_subgraphs=True``: every update is tagged with the agent
(subgraph) it comes from, so the supervisor's handoffs, the researcher's searches and
the writer's report show as they happen. Prints the report and the documents it cites.
Exits 1 if the run fails or the report cites nothing.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from langgraph_sdk import get_client

DEFAULT_URL = "http://127.0.0.1:8123"
ASSISTANT = "research"
QUESTION = "How should a multi-agent system keep its cost per run under control?"


def _agent(namespace: str) -> str:
    # "researcher:<task id>" -> "researcher"; the parent graph's own updates have none.
    return namespace.split("|")[-1].split(":")[0] if namespace else "team"


def _show(agent: str, update: dict[str, Any]) -> None:
    for node, value in update.items():
        if agent == "team":  # the parent graph: which agent finished (its work was shown)
            print(f"[team] {node} done")
            continue
        messages = value.get("messages", []) if isinstance(value, dict) else []
        for m in messages if isinstance(messages, list) else []:
            for call in m.get("tool_calls") or []:
                print(f"  [{agent}] calls {call['name']}({call['args']})")
            if m.get("type") == "tool":
                first = str(m.get("content", "")).splitlines()[0][:100]
                print(f"  [{agent}] {m.get('name')} -> {first}")


async def main(url: str = DEFAULT_URL, question: str = QUESTION) -> int:
    client = get_client(url=url)
    try:
        thread_id = (await client.threads.create())["thread_id"]
        print(f"question: {question}")
        async for part in client.runs.stream(
            thread_id,
            ASSISTANT,
            input={"messages": [{"role": "user", "content": question}]},
            stream_mode="updates",
            stream_subgraphs=True,
        ):
            # Events from a subgraph are named "updates|<namespace>".
            event, _, namespace = part.event.partition("|")
            if event == "updates" and isinstance(part.data, dict):
                _show(_agent(namespace), part.data)
            elif event == "error":
                print(f"run failed: {part.data}")
                return 1
        state = await client.threads.get_state(thread_id)
        report = state["values"].get("report")
        if not report:
            print("the run ended without a report")
            return 1
        print()
        print(report["text"])
        print()
        print(f"cited: {[c['ref'] for c in report['citations']]}")
        return 0 if report["citations"] else 1
    finally:
        await client.aclose()


if __name__ == "__main__":
    args = sys.argv[1:]
    sys.exit(asyncio.run(main(*(args[:2] if args else []))))
