"""What writing each gateway call to the usage ledger costs the gateway.

One dockyard server (uvicorn, embedded SQLite, in this process's background thread) in
front of the mock OpenAI server (no added latency); ``/v1/chat/completions`` with
``model: "default"`` (no policies), called by the official ``openai`` client (async).
Two set-ups, alternating ``--rounds`` rounds: ``ledger`` as shipped (each call's usage
handed to the process's ledger writer, which writes in batches) and ``no ledger`` (the
hand-over replaced by nothing). Per set-up: p50 / p95 latency of ``--calls`` sequential
calls, and requests per second of ``--calls`` calls made ``--concurrency`` at a time.

    .venv/bin/python bench/gateway_ledger_bench.py --calls 400 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import openai
import uvicorn
from machine import machine_summary

from dockyard.api import create_app
from dockyard.api.gateway import _Ledger
from dockyard.settings import load_settings
from dockyard.testing import MockOpenAIServer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, root: Path, mock_url: str) -> None:
        (root / "key").write_text("k")
        port = free_port()
        settings = load_settings(
            None,
            project_dir=root,
            data_dir=root / ".dockyard",
            port=port,
            models={
                "default": {
                    "model": "openai:gpt-4o-mini",
                    "base_url": mock_url,
                    "api_key_file": "key",
                }
            },
        )
        config = uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=port, log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.url = f"http://127.0.0.1:{port}/v1"
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(10)


async def one(client: openai.AsyncOpenAI) -> float:
    t = time.perf_counter()
    await client.chat.completions.create(
        model="default", messages=[{"role": "user", "content": "hello"}], temperature=0
    )
    return (time.perf_counter() - t) * 1000


async def sequential(client: openai.AsyncOpenAI, calls: int) -> list[float]:
    return [await one(client) for _ in range(calls)]


async def saturated(client: openai.AsyncOpenAI, calls: int, concurrency: int) -> float:
    gate = asyncio.Semaphore(concurrency)

    async def limited() -> None:
        async with gate:
            await one(client)

    t = time.perf_counter()
    await asyncio.gather(*(limited() for _ in range(calls)))
    return calls / (time.perf_counter() - t)


async def main(calls: int, rounds: int, concurrency: int) -> None:
    shipped = _Ledger.record

    def nothing(self: _Ledger) -> None:
        return None

    latency: dict[str, list[float]] = {"ledger": [], "no ledger": []}
    rps: dict[str, list[float]] = {"ledger": [], "no ledger": []}
    with (
        tempfile.TemporaryDirectory() as tmp,
        MockOpenAIServer() as mock,
        Server(Path(tmp), mock.base_url) as server,
    ):
        client = openai.AsyncOpenAI(base_url=server.url, api_key="x", max_retries=0)
        await sequential(client, 100)  # warm up
        for _ in range(rounds):
            for name in ("ledger", "no ledger"):
                _Ledger.record = shipped if name == "ledger" else nothing  # type: ignore[method-assign]
                latency[name] += await sequential(client, calls)
                rps[name].append(await saturated(client, calls, concurrency))
        _Ledger.record = shipped  # type: ignore[method-assign]
        await client.close()
    print(f"{machine_summary()}; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print("| set-up | p50 ms | p95 ms | req/s (each round) |")
    print("|---|---:|---:|---|")
    for name in latency:
        q = statistics.quantiles(latency[name], n=100)
        each = " / ".join(f"{r:.0f}" for r in rps[name])
        print(f"| {name} | {q[49]:.2f} | {q[94]:.2f} | {each} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    asyncio.run(main(args.calls, args.rounds, args.concurrency))
