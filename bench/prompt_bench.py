"""The prompt registry's costs: ``dockyard.prompt()`` from the process's cache, rendering,
and how long a label move takes to reach every server process. Results: docs/perf.md,
"Prompt registry".

Fetch and render (in process, SQLite): ``--prompts`` prompts of ``--versions`` versions
each are pushed and labelled, the cache loads them, then each sample is one call timed
alone with ``perf_counter_ns``: ``prompt(name, label="production")`` outside a run, the
same inside a run (a LangChain callback manager in the context, as a graph node has, with
the run's prompt recorder among its handlers), and ``render`` of a text and a chat prompt.

Propagation (``--postgres-url`` and ``--redis-url``): two ``dockyard serve`` processes on a
fresh database; this process moves the ``production`` label back and forth ``--moves``
times straight in the database (as ``dockyard prompts label|rollback`` does: the servers
see it by polling), then ``--moves`` times through server A's API (A reloads at once and
publishes a Redis notice to B). After each move it polls both servers' ``GET
/prompts/{name}?cached=true`` every 5 ms until each serves the new version: the time to
the first answer showing it, per process.

    .venv/bin/python bench/prompt_bench.py --samples 200000 \\
        --postgres-url postgresql://postgres@127.0.0.1:5432/postgres \\
        --redis-url redis://127.0.0.1:6379/0
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from machine import machine_summary
from stats import percentile

from dockyard.prompt_source import prompt, use_source
from dockyard.prompts import Draft, PromptCache, PromptRegistry
from dockyard.settings import load_settings
from dockyard.storage.database import open_storage

FILE = """\
name: ticket-summary
type: text
template: "Summarize this ticket: {{ ticket }}"
sample: {ticket: "x"}
labels: [production]
"""


def row(label: str, ns: list[int]) -> str:
    us = [n / 1000 for n in ns]
    p50, p99 = percentile(us, 50), percentile(us, 99)
    assert p50 is not None and p99 is not None
    return f"| {label} | {len(us)} | {p50:.2f} | {p99:.2f} | {max(us):.1f} |"


def timed(fn: Callable[[int], object], samples: int) -> list[int]:
    out = []
    clock = time.perf_counter_ns
    for i in range(samples):
        t0 = clock()
        fn(i)
        out.append(clock() - t0)
    return out


async def fetch_and_render(prompts: int, versions: int, samples: int) -> list[str]:
    from langchain_core.callbacks import BaseCallbackHandler, CallbackManager
    from langchain_core.runnables.config import var_child_runnable_config

    from dockyard.runtime.prompt_uses import PromptRecorder
    from dockyard.runtime.usage import Usage

    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "dockyard.yaml"
        config.write_text("graphs: {}\n")
        async with open_storage(load_settings(config, data_dir=Path(tmp) / "data")) as storage:
            registry = PromptRegistry(storage.prompts)
            for p in range(prompts):
                for v in range(versions):
                    draft = Draft(
                        name=f"prompt-{p}",
                        kind="text",
                        template=f"v{v}: summarize {{{{ ticket }}}} for {{{{ team }}}}",
                        sample={"ticket": "t", "team": "ops"},
                        labels=("production",) if v == versions - 2 else (),
                    )
                    await registry.push(draft, author="bench")
            chat = Draft(
                name="chat",
                kind="chat",
                messages=[
                    {"role": "system", "content": "You summarize tickets for {{ team }}."},
                    {"role": "user", "content": "{{ ticket }}"},
                ],
                sample={"ticket": "t", "team": "ops"},
            )
            await registry.push(chat, author="bench")
            cache = PromptCache(storage.prompts)
            await cache.start()
            await cache.stop()  # loaded: the timings below read memory only
    names = [f"prompt-{p}" for p in range(prompts)]
    n = len(names)
    previous = use_source(cache)
    try:
        outside = timed(lambda i: prompt(names[i % n], label="production"), samples)
        manager = CallbackManager(
            handlers=[BaseCallbackHandler(), PromptRecorder(Usage(), cache)],
            inheritable_handlers=[],
        )
        token = var_child_runnable_config.set({"callbacks": manager})
        try:
            inside = timed(lambda i: prompt(names[i % n], label="production"), samples)
        finally:
            var_child_runnable_config.reset(token)
        by_version = timed(lambda i: prompt(names[i % n], version=1), samples)
        text = prompt("prompt-0", label="production")
        text_render = timed(lambda i: text.render(ticket="printer on fire", team="ops"), samples)
        chat_prompt = prompt("chat")
        chat_render = timed(
            lambda i: chat_prompt.render(ticket="printer on fire", team="ops"), samples // 4
        )
    finally:
        use_source(previous)
    return [
        f"{prompts} prompts x {versions} versions in the cache; times in µs",
        "",
        "| call | samples | p50 µs | p99 µs | max µs |",
        "|---|---|---|---|---|",
        row('prompt(name, label="production"), outside a run', outside),
        row('prompt(name, label="production"), inside a run (recorded)', inside),
        row("prompt(name, version=1), outside a run", by_version),
        row(".render(...) text prompt, 2 variables", text_render),
        row(".render(...) chat prompt, 2 messages -> LangChain messages", chat_render),
    ]


# -- propagation --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fresh_database(admin_url: str) -> tuple[str, str]:
    import psycopg

    name = f"prompt_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin_url.rsplit("/", 1)[0] + f"/{name}", name


def drop_database(admin_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def propagation(
    pg_url: str, redis_url: str, moves: int, refresh: float
) -> tuple[list[str], list[float]]:
    db_url, db_name = fresh_database(pg_url)
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        (project / "prompts").mkdir()
        (project / "prompts" / "ticket-summary.yaml").write_text(FILE)
        config = project / "dockyard.yaml"
        config.write_text(f"graphs: {{}}\nprompts:\n  refresh_seconds: {refresh}\n")
        env = {
            **os.environ,
            "DOCKYARD_DATABASE_URL": db_url,
            "DOCKYARD_REDIS_URL": redis_url,
            "DOCKYARD_REDIS_PREFIX": f"promptbench{uuid.uuid4().hex[:6]}",
            "DOCKYARD_AUTH__REQUIRED": "false",
        }
        ports = [free_port(), free_port()]
        try:
            for port in ports:
                cmd = [sys.executable, "-m", "dockyard", "serve", "-c", str(config)]
                cmd += ["--port", str(port), "--log-level", "warning"]
                log = (project / f"serve-{port}.log").open("wb")
                procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=log))
            async with httpx.AsyncClient(timeout=10) as http:
                for port in ports:
                    await _ready(http, port)
                settings = load_settings(config, database_url=db_url, database_pool_size=2)
                async with open_storage(settings) as storage:
                    registry = PromptRegistry(storage.prompts)
                    await registry.push(
                        Draft(
                            name="ticket-summary",
                            kind="text",
                            template="TL;DR: {{ ticket }}",
                            sample={"ticket": "x"},
                        ),
                        author="bench",
                    )
                    from dockyard.policies.auth import key_record, new_key

                    key = new_key()
                    await storage.keys.create(key_record(key, tenant="bench", scopes=["admin"]))
                    headers = {"x-api-key": key}
                    results: dict[str, list[float]] = {"database": [], "api": []}
                    for i in range(2 * moves):
                        target = 2 if i % 2 == 0 else 1
                        how = "database" if i < moves else "api"
                        if how == "database":  # as `dockyard prompts label` does
                            await registry.set_label(
                                "ticket-summary", "production", target, author="b"
                            )
                        else:  # through server A: it publishes a notice on Redis
                            r = await http.put(
                                f"http://127.0.0.1:{ports[0]}/prompts/ticket-summary/labels/"
                                "production",
                                json={"version": target},
                                headers=headers,
                            )
                            r.raise_for_status()
                        t0 = time.perf_counter()
                        seen = await asyncio.gather(
                            *(_until(http, port, target, t0) for port in ports)
                        )
                        results[how].extend(seen)
                        # Moves land at any point of the servers' refresh cycles.
                        await asyncio.sleep(refresh * (0.37 + (i % 5) * 0.11))
        finally:
            for p in procs:
                p.send_signal(signal.SIGTERM)
            for p in procs:
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    p.kill()
            drop_database(pg_url, db_name)
    lines = [
        f"2 `dockyard serve` processes (PostgreSQL + Redis), prompts.refresh_seconds = {refresh}",
        "",
        "| label moved | moves | observations | p50 ms | p99 ms | max ms |",
        "|---|---|---|---|---|---|",
    ]
    every: list[float] = []
    for how, what in (
        ("database", "in the database (as the CLI does): seen by polling"),
        ("api", "through server A's API: A reloads, B hears a Redis notice"),
    ):
        ms = [d * 1000 for d in results[how]]
        every += ms
        p50, p99 = percentile(ms, 50), percentile(ms, 99)
        assert p50 is not None and p99 is not None
        lines.append(f"| {what} | {moves} | {len(ms)} | {p50:.0f} | {p99:.0f} | {max(ms):.0f} |")
    return lines, every


async def _ready(http: httpx.AsyncClient, port: int) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if (await http.get(f"http://127.0.0.1:{port}/ready")).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError(f"server on {port} not ready")


async def _until(http: httpx.AsyncClient, port: int, version: int, t0: float) -> float:
    url = f"http://127.0.0.1:{port}/prompts/ticket-summary"
    params: dict[str, Any] = {"label": "production", "cached": "true"}
    while True:
        r = await http.get(url, params=params)
        if r.json()["version"] == version:
            return time.perf_counter() - t0
        if time.perf_counter() - t0 > 60:
            raise RuntimeError(f"port {port} still serves {r.json()['version']} after 60 s")
        await asyncio.sleep(0.005)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--prompts", type=int, default=100)
    ap.add_argument("--versions", type=int, default=5)
    ap.add_argument("--samples", type=int, default=200_000)
    ap.add_argument("--postgres-url", help="admin URL; with --redis-url: measure propagation")
    ap.add_argument("--redis-url")
    ap.add_argument("--moves", type=int, default=20)
    ap.add_argument("--refresh-seconds", type=float, default=1.0)
    args = ap.parse_args()
    print(machine_summary())
    print()
    for line in asyncio.run(fetch_and_render(args.prompts, args.versions, args.samples)):
        print(line)
    if args.postgres_url and args.redis_url:
        print()
        lines, _ = asyncio.run(
            propagation(args.postgres_url, args.redis_url, args.moves, args.refresh_seconds)
        )
        for line in lines:
            print(line)


if __name__ == "__main__":
    main()
