"""The benchmark's lean client against a live server: it must see what langgraph-sdk sees for
the calls the benchmark makes, or its numbers would measure something else."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from langgraph_sdk import get_client

from tests.bench.loader import BENCH_DIR, load_bench
from tests.conftest import LiveServer

lean = load_bench("lean_client")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    live = LiveServer(tmp_path_factory.mktemp("lean-client")).start()
    yield live
    live.stop()


def _without_run_ids(event: str, data: Any) -> tuple[str, Any]:
    if isinstance(data, dict):
        data = {k: v for k, v in data.items() if k != "run_id"}
    return event, data


async def test_stream_yields_the_events_the_sdk_gets(server: LiveServer) -> None:
    sdk, client = get_client(url=server.url), lean.LeanClient(server.url)
    try:
        want = [
            _without_run_ids(p.event, p.data)
            async for p in sdk.runs.stream(None, "trivial", input={"x": 7}, stream_mode="values")
        ]
        got = [
            _without_run_ids(p.event, orjson.loads(p.data))
            async for p in client.runs.stream(None, "trivial", input={"x": 7}, stream_mode="values")
        ]
    finally:
        await client.aclose()
        await sdk.aclose()
    assert [e for e, _ in want] == ["metadata", "values", "values", "end"]
    assert got == want


async def test_wait_threads_and_errors_over_one_connection(
    server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened = []
    open_connection = asyncio.open_connection

    async def counted(*args: Any, **kwargs: Any) -> Any:
        opened.append(args)
        return await open_connection(*args, **kwargs)

    monkeypatch.setattr(lean.asyncio, "open_connection", counted)
    sdk, client = get_client(url=server.url), lean.LeanClient(server.url)
    try:
        thread = await client.threads.create()
        for x in range(5):
            assert await client.runs.wait(thread["thread_id"], "trivial", input={"x": x}) == {
                "x": x
            }
            async for _ in client.runs.stream(None, "trivial", input={}, stream_mode="values"):
                pass
        assert len(opened) == 1  # keep-alive: one connection carried all 11 requests
        got = await sdk.threads.get_state(thread["thread_id"])
        assert got["values"] == {"x": 4}

        with pytest.raises(lean.LeanHTTPError) as err:
            await client.runs.wait(None, "no-such-assistant", input={})
        assert err.value.status == 404
        with pytest.raises(RuntimeError, match="the tool exploded"):
            await client.runs.wait(None, "failing", input={})
        events = [
            p.event
            async for p in client.runs.stream(None, "failing", input={}, stream_mode="values")
        ]
        assert events[0] == "metadata" and events[-1] == "error"

        await client.threads.delete(thread["thread_id"])
        assert not await sdk.threads.search(ids=[thread["thread_id"]])
    finally:
        await client.aclose()
        await sdk.aclose()


def test_the_benchmark_runs_on_the_lean_client(server: LiveServer, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    cmd = [sys.executable, str(BENCH_DIR / "agent_server_bench.py"), "--url", server.url]
    cmd += ["--warmup", "0.3", "--duration", "1", "--clients", "4", "--graph", "trivial"]
    cmd += ["--client", "lean", "--stateful", "--json", str(out), "--markdown"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "lean HTTP/1.1 clients" in done.stdout and "langgraph-sdk" not in done.stdout
    report = json.loads(out.read_text())
    assert report["meta"]["spec"]["client"] == "lean"
    assert len(report["scenarios"]) == 4  # wait / stream, stateless / stateful
    for scenario in report["scenarios"]:
        summary = scenario["summary"]
        assert summary["runs"] > 0 and summary["errors"] == 0, scenario["name"]
    streams = [s for s in report["scenarios"] if "stream" in s["name"]]
    assert all(s["summary"]["first_event"]["p50"] is not None for s in streams)
