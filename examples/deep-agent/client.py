"""Drive the deep agent with langgraph-sdk, approving its file writes as a reviewer would.

    .venv/bin/dockyard serve -c examples/deep-agent/dockyard.yaml          # terminal 1
    .venv/bin/python examples/deep-agent/client.py [http://127.0.0.1:8123]  # terminal 2

Asks for a report, prints the plan (``todos``) and each approval request, approves each
one, prints the answer and the report (a scratch file in the thread's state), then asks
a new thread what the agent remembers: the note it saved under ``/memories/`` is in
dockyard's store, so the second thread finds it. Exits 1 if anything is not as expected.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient

DEFAULT_URL = "http://127.0.0.1:8123"
ASSISTANT = "deep"
REQUEST = "Write a short report on checkpointing and human approval."
RECALL = "What do you remember about checkpointing?"


def _text(message: dict[str, Any]) -> str:
    content = message.get("content", "")
    if isinstance(content, str):
        return content
    return "".join(b.get("text", "") for b in content if isinstance(b, dict))


async def _run(client: LangGraphClient, thread_id: str, **kwargs: Any) -> list[dict[str, Any]]:
    """Stream one run (a new request or a resume); print the tool calls; return the
    approval requests it stopped at (none when it finished)."""
    interrupts: list[dict[str, Any]] = []
    seen: set[str] = set()  # the approval step repeats the model's message
    async for part in client.runs.stream(
        thread_id, ASSISTANT, stream_mode="updates", stream_subgraphs=True, **kwargs
    ):
        if part.event.startswith("updates") and isinstance(part.data, dict):
            for node, update in part.data.items():
                if node == "__interrupt__":
                    interrupts = update
                    continue
                for message in (update or {}).get("messages", []) if update else []:
                    if message.get("id") in seen:
                        continue
                    seen.add(message.get("id", ""))
                    for call in message.get("tool_calls") or []:
                        where = "  (sub-agent)" if "|" in part.event else ""
                        print(f"[calls {call['name']}]{where}")
        elif part.event == "error":
            raise RuntimeError(f"run failed: {part.data}")
    return interrupts


async def main(url: str = DEFAULT_URL) -> int:
    client = get_client(url=url)
    try:
        thread_id = (await client.threads.create())["thread_id"]
        print(f"thread {thread_id}\nuser:  {REQUEST}")
        interrupts = await _run(
            client, thread_id, input={"messages": [{"role": "user", "content": REQUEST}]}
        )
        approvals = 0
        while interrupts:
            for action in interrupts[0]["value"]["action_requests"]:
                print(f"approval asked: {action['name']} {action['args'].get('file_path', '')}")
            approvals += 1
            decision = {"decisions": [{"type": "approve"}]}
            interrupts = await _run(client, thread_id, command={"resume": decision})

        state = await client.threads.get_state(thread_id)
        values = state["values"]
        print("plan:")
        for todo in values.get("todos", []):
            print(f"  [{todo['status']}] {todo['content']}")
        print(f"agent: {_text(values['messages'][-1])}")
        report = values.get("files", {}).get("/report.md")
        if report is None:
            print(f"no /report.md after {approvals} approvals")
            return 1
        content = report["content"]
        text = content if isinstance(content, str) else "\n".join(content)
        print(f"--- /report.md ---\n{text}")

        # A new thread: the scratch files are gone, the memory is not.
        other = (await client.threads.create())["thread_id"]
        print(f"\nthread {other}\nuser:  {RECALL}")
        result = await client.runs.wait(
            other, ASSISTANT, input={"messages": [{"role": "user", "content": RECALL}]}
        )
        assert isinstance(result, dict)
        answer = _text(result["messages"][-1])
        print(f"agent: {answer}")
        return 0
    finally:
        await client.aclose()


if __name__ == "__main__":
    sys.exit(asyncio.run(main(*sys.argv[1:2])))
