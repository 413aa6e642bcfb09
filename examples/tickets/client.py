"""Summarize one ticket through langgraph-sdk and show what the platform did with it.

    .venv/bin/dockyard serve -c examples/tickets/dockyard.yaml          # terminal 1
    .venv/bin/python examples/tickets/client.py [http://127.0.0.1:8123]  # terminal 2

Sends the first ticket of tickets.jsonl, prints the Markdown summary, the tier the run was
routed to, the quality gate's verdict and the tokens; then sends it again, which the
response cache answers (a good answer is kept). Exits 1 if there is no valid summary.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from langgraph_sdk import get_client

DEFAULT_URL = "http://127.0.0.1:8123"
TICKETS = Path(__file__).with_name("tickets.jsonl")


async def summarize(client: Any, ticket: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    thread = await client.threads.create()
    body = {"ticket": ticket, "priority": ticket.get("priority", "normal")}
    run = await client.runs.create(thread["thread_id"], "tickets", input=body)
    values = await client.runs.join(thread["thread_id"], run["run_id"])
    return values, await client.runs.get(thread["thread_id"], run["run_id"])


async def main(url: str = DEFAULT_URL) -> int:
    ticket = json.loads(TICKETS.read_text(encoding="utf-8").splitlines()[0])
    client = get_client(url=url, timeout=120)
    try:
        for attempt in ("first", "again"):
            values, run = await summarize(client, ticket)
            usage, verdict = run.get("usage") or {}, run.get("quality") or {}
            if attempt == "first":
                print(values.get("markdown") or f"no summary: {values.get('error')}")
            print(
                f"[{attempt}] tier {usage.get('tiers')}, models {sorted(usage.get('models') or {})}, "
                f"quality {verdict.get('score')} ({verdict.get('decision')}), "
                f"cached {verdict.get('cached')}, tokens {usage.get('total_tokens')}"
            )
    finally:
        await client.aclose()
    return 0 if values.get("summary") else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main(*sys.argv[1:2])))
