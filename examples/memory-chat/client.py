"""Talk to the memory chat through POST /chat, as the guide's client does.

    .venv/bin/dockyard serve -c examples/memory-chat/dockyard.yaml          # terminal 1
    .venv/bin/python examples/memory-chat/client.py [http://127.0.0.1:8123]  # terminal 2

Mina tells the agent about herself in one session, then asks in a new session; Joe, another
user, asks the same and gets nothing of hers. Then it lists what the store holds for Mina
(langgraph-sdk). Exits 1 if a new session does not recall what Mina said.
"""

from __future__ import annotations

import asyncio
import sys
import uuid

import httpx
from langgraph_sdk import get_client

DEFAULT_URL = "http://127.0.0.1:8123"


async def main(url: str = DEFAULT_URL) -> int:
    run = uuid.uuid4().hex[:6]  # fresh users on every run of the script
    mina, joe = f"mina-{run}", f"joe-{run}"
    turns = [
        (mina, "monday", "Hi! My name is Mina Park, I live in Busan and I prefer email."),
        (mina, "monday", "Where is my order A1001?"),
        (mina, "friday", "What is my name?"),
        (mina, "friday", "Where do I live?"),
        (joe, "friday", "What is my name?"),
    ]
    replies = []
    async with httpx.AsyncClient(base_url=url, timeout=120) as http:
        for user_id, session_id, message in turns:
            body = {"user_id": user_id, "session_id": session_id, "message": message}
            r = await http.post("/chat", json=body)
            r.raise_for_status()
            reply = r.json()["reply"]
            replies.append(reply)
            print(f"[{user_id} / {session_id}] {message}\n  -> {reply}")

    client = get_client(url=url)
    try:
        found = await client.store.search_items(["memories", mina], query="where do I live")
        print(f"\nmemories of {mina}, best match for 'where do I live' first:")
        for item in found["items"]:
            print(f"  {item['key']:<10} {item['value']['text']}  (score {item['score']})")
    finally:
        await client.aclose()
    recalled = "Mina" in replies[2] and "Busan" in replies[3]
    return 0 if recalled and "Mina" not in replies[4] else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main(*sys.argv[1:2])))
