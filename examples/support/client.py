"""Talk to the support agent with langgraph-sdk, as you would to LangGraph Platform.

    .venv/bin/dockyard serve -c examples/support/dockyard.yaml        # terminal 1
    .venv/bin/python examples/support/client.py [http://127.0.0.1:8123] # terminal 2

Creates a thread, streams a run that asks for a refund, shows the approval request the
refund tool raised, approves it, prints the agent's answer, then saves and searches a
note in the long-term store. Exits 1 if anything is not as expected.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from langgraph_sdk import get_client

DEFAULT_URL = "http://127.0.0.1:8123"
ASSISTANT = "support"
REQUEST = "Please refund order A1001 for 20 because the jacket arrived damaged."


def _text(message: dict[str, Any]) -> str:
    content = message.get("content", "")
    if isinstance(content, str):
        return content
    return "".join(b.get("text", "") for b in content if isinstance(b, dict))


async def main(url: str = DEFAULT_URL) -> int:
    client = get_client(url=url)
    try:
        thread = await client.threads.create(metadata={"customer_id": "c-42"})
        thread_id = thread["thread_id"]
        print(f"thread {thread_id}")
        print(f"user:  {REQUEST}")

        # 1. Stream a run: tokens as they come ("messages-tuple"), node updates ("updates").
        interrupts: list[dict[str, Any]] = []
        async for part in client.runs.stream(
            thread_id,
            ASSISTANT,
            input={"messages": [{"role": "user", "content": REQUEST}]},
            stream_mode=["updates", "messages-tuple"],
        ):
            if part.event == "messages":
                chunk, _metadata = part.data
                if chunk.get("type") in ("AIMessageChunk", "ai") and _text(chunk):
                    print(_text(chunk), end="", flush=True)
                for call in chunk.get("tool_call_chunks") or []:
                    if call.get("name"):
                        print(f"[agent calls {call['name']}]")
            elif part.event == "updates" and "__interrupt__" in part.data:
                interrupts = part.data["__interrupt__"]
            elif part.event == "error":
                print(f"run failed: {part.data}")
                return 1

        # 2. The refund tool is guarded: the run stopped and waits for a human.
        if not interrupts:
            print("expected the refund to wait for approval, but the run did not stop")
            return 1
        for action in interrupts[0]["value"]["action_requests"]:
            print(f"approval needed: {action['name']}({action['args']})")
            print(f"  {action.get('description', '')}")
        state = await client.threads.get_state(thread_id)
        print(f"thread is waiting on {[task['name'] for task in state['tasks']]}")

        # 3. Approve (or {"type": "reject", "message": "..."}, or {"type": "edit", ...}).
        result = await client.runs.wait(
            thread_id,
            ASSISTANT,
            command={"resume": {"decisions": [{"type": "approve"}]}},
        )
        if not isinstance(result, dict) or "messages" not in result:
            print(f"unexpected result: {result}")
            return 1
        answer = _text(result["messages"][-1])
        print(f"agent: {answer}")

        # 4. Long-term memory: remember something about the customer, find it again.
        namespace = ["support", "customers", "c-42"]
        await client.store.put_item(
            namespace, key="preferences", value={"channel": "email", "refunds": 1}
        )
        found = await client.store.search_items(["support", "customers"], filter={"refunds": 1})
        for item in found["items"]:
            print(f"store: {'/'.join(item['namespace'])}/{item['key']} = {item['value']}")
        if not found["items"]:
            print("the store item just written was not found")
            return 1
        return 0
    finally:
        await client.aclose()


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_URL)))
