"""A server process killed mid-run loses nothing: the run resumes when it comes back."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from langgraph_sdk import get_client

from tests.conftest import FIXTURE_PROJECT, LiveServer, eventually, free_port, guarded


def start_server(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = guarded({**os.environ, "DOCKYARD_DATA_DIR": str(data_dir), "DOCKYARD_PORT": str(port)})
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dockyard",
            "serve",
            "-c",
            str(FIXTURE_PROJECT / "dockyard.yaml"),
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        time.sleep(0.1)  # the poll interval
    proc.kill()
    raise RuntimeError("server did not start")


async def test_sigkill_mid_run_then_restart_finishes_the_run(tmp_path: Path) -> None:
    port = free_port()
    proc = start_server(tmp_path, port)
    url = f"http://127.0.0.1:{port}"
    try:
        client = get_client(url=url)
        tid = (await client.threads.create())["thread_id"]
        go = tmp_path / "go"  # step two waits for this file: the kill lands mid-run
        run = await client.runs.create(
            tid, "slow", input={"delay": 0.1}, config={"configurable": {"hold": str(go)}}
        )

        async def node_one_done() -> bool:
            state = await client.threads.get_state(tid)
            return state["values"].get("steps") == ["one"]

        await eventually(node_one_done, timeout=15)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        await client.aclose()

        proc = start_server(tmp_path, port)
        go.touch()
        client = get_client(url=url)
        result = await client.runs.join(tid, run["run_id"])
        assert result["steps"] == ["one", "two"]  # node one did not run twice
        got = await client.runs.get(tid, run["run_id"])
        assert got["status"] == "success"
        assert got["attempts"] == 2
        assert (await client.threads.get(tid))["status"] == "idle"
        await client.aclose()
    finally:
        proc.kill()
        proc.wait(10)


async def test_ready_reports_unreachable_storage(tmp_path: Path) -> None:
    server = LiveServer(tmp_path).start()
    try:
        async with httpx.AsyncClient(base_url=server.url) as http:
            assert (await http.get("/ready")).status_code == 200
            runtime = server.app.state.runtime
            runtime.storage.checkpoint_admin.conn.close()
            r = await http.get("/ready")
            assert r.status_code == 503
            assert "checkpoints" in r.json()["problems"]
            assert (await http.get("/health")).status_code == 200
    finally:
        server.stop()
