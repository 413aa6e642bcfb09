"""``dockyard top`` against a live server: one frame with --once, the live view until
interrupted, an API key for a protected /metrics, and clear messages when the server
cannot be read."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from rich.console import Console
from typer.testing import CliRunner

from dockyard.cli import top
from dockyard.cli.main import app
from tests.conftest import LiveServer, free_port, guarded, make_key

runner = CliRunner()


def run_trivial(server: LiveServer) -> None:
    r = httpx.post(
        f"{server.url}/runs/wait", json={"assistant_id": "trivial", "input": {"x": 1}}, timeout=30
    )
    assert r.status_code == 200, r.text


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    s = LiveServer(tmp_path_factory.mktemp("top")).start()
    yield s
    s.stop()


def row(output: str, first: str) -> list[str]:
    (line,) = [line for line in output.splitlines() if line.split()[:1] == [first]]
    return line.split()


def test_once_prints_one_frame_with_the_runs_between_its_two_scrapes(server: LiveServer) -> None:
    for _ in range(3):
        run_trivial(server)
    busy = threading.Event()
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            run_trivial(server)
            busy.set()

    worker = threading.Thread(target=load)
    worker.start()
    try:
        busy.wait(30)
        result = runner.invoke(
            app, ["top", "--once", "--interval", "1", "--url", f"{server.url}/metrics"]
        )
    finally:
        stop.set()
        worker.join(30)
    assert result.exit_code == 0, result.output
    out = result.output
    for figure in ("requests/s", "runs/s", "p95 run", "errors", "tokens/s", "cache hits"):
        assert figure in out
    assert "waiting approval" in out and "cost since start" in out
    # assistant, runs/s, errors/s, p95 run (value, "s"), runs since start
    _, runs_per_s, errors_per_s, p95, unit, runs = row(out, "trivial")
    assert float(runs_per_s) > 0 and float(errors_per_s) == 0
    assert float(p95) > 0 and unit == "s"
    assert int(runs.replace(",", "")) >= 4


def test_the_live_view_keeps_the_last_numbers_when_the_server_goes_away(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = LiveServer(tmp_path).start()
    url = f"{server.url}/metrics"
    run_trivial(server)
    # The pauses between scrapes: 1 before the first frame, then the loop's; the third
    # stops the server, the fourth is the operator's Ctrl-C.
    pauses = iter([None, lambda: run_trivial(server), server.stop, KeyboardInterrupt])

    def sleep(seconds: float) -> None:
        step = next(pauses)
        if step is KeyboardInterrupt:
            raise KeyboardInterrupt
        if callable(step):
            step()

    monkeypatch.setattr(top.time, "sleep", sleep)
    out, err = io.StringIO(), io.StringIO()
    console = Console(file=out, width=120)
    status = top.watch(url, None, 1.0, False, console, Console(file=err, width=120))
    assert status == 0 and not err.getvalue()
    screen = out.getvalue()
    assert "trivial" in screen and "runs/s" in screen
    assert f"cannot reach {url}" in screen  # under the last frame's numbers


def test_an_unreachable_server_is_a_message_not_a_traceback() -> None:
    url = f"http://127.0.0.1:{free_port()}/metrics"
    result = runner.invoke(app, ["top", "--once", "--url", url])
    assert result.exit_code == 1
    assert f"cannot reach {url}" in result.output
    assert "Traceback" not in result.output


def test_a_page_that_is_not_dockyard_metrics_is_a_message(server: LiveServer) -> None:
    for path in ("/ok", "/nowhere"):
        result = runner.invoke(app, ["top", "--once", "--url", f"{server.url}{path}"])
        assert result.exit_code == 1, result.output
        assert result.output.startswith("dockyard top: "), result.output
        assert "Traceback" not in result.output


def test_a_protected_metrics_page_takes_the_key_from_the_environment(tmp_path: Path) -> None:
    server = LiveServer(
        tmp_path, auth={"required": True}, observability={"metrics": {"require_key": True}}
    ).start()
    try:
        key = make_key(server, scopes=["admin"])
        url = f"{server.url}/metrics"
        refused = runner.invoke(app, ["top", "--once", "--url", url])
        assert refused.exit_code == 1
        assert "needs an API key: pass --key or set DOCKYARD_API_KEY" in refused.output
        # The installed command, as an operator runs it.
        env = guarded({**os.environ, "DOCKYARD_API_KEY": key})
        done = subprocess.run(
            [sys.executable, "-m", "dockyard", "top", "--once", "--interval", "0.2", "--url", url],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert "runs/s" in done.stdout and not done.stderr
    finally:
        server.stop()
