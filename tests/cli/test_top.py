"""``dockyard top`` against a live server: one frame with --once, the live view until
interrupted, an API key for a protected /metrics, and clear messages when the server
cannot be read."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import openai
import pytest
import yaml
from rich.console import Console
from typer.testing import CliRunner

from dockyard.cli import top
from dockyard.cli.main import app
from dockyard.testing import MockAnthropicServer, MockOpenAIServer
from dockyard.testing.pytest_plugin import mock_anthropic, mock_openai
from tests.conftest import LiveServer, free_port, guarded, make_key

__all__ = ["mock_anthropic", "mock_openai"]

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


def figure(output: str, label: str) -> str:
    """The value after ``label`` in the summary (figures are two or more spaces apart)."""
    found = re.search(rf"(?m)^(?:.*\s)?{re.escape(label)}\s+(.+?)(?:\s{{2,}}|$)", output)
    assert found, (label, output)
    return found.group(1)


def between_scrapes(monkeypatch: pytest.MonkeyPatch, *steps: Callable[[], None]) -> None:
    """``dockyard top``'s pauses between scrapes do ``steps``, one a pause, in order."""
    queue = list(steps)

    def sleep(seconds: float) -> None:
        queue.pop(0)()

    monkeypatch.setattr(top.time, "sleep", sleep)


def test_once_prints_one_frame_with_the_runs_between_its_two_scrapes(
    server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(3):
        run_trivial(server)

    def runs() -> None:
        for _ in range(2):
            run_trivial(server)
        r = httpx.post(f"{server.url}/runs/wait", json={"assistant_id": "failing", "input": {}})
        assert r.status_code == 200, r.text

    between_scrapes(monkeypatch, runs)
    result = runner.invoke(app, ["top", "--once", "--url", f"{server.url}/metrics"])
    assert result.exit_code == 0, result.output
    out = result.output
    for label in ("requests/s", "runs/s", "p95 run", "tokens/s", "cache hits", "queued"):
        assert label in out
    assert "waiting approval" in out and "cost since start" in out
    # 1 of the 3 runs between the scrapes failed
    assert figure(out, "errors").endswith("/s (33.3%)")
    # assistant, runs/s, errors/s, p95 run (value, "s"), runs since start
    _, runs_per_s, errors_per_s, p95, unit, total = row(out, "trivial")
    assert float(runs_per_s) > 0 and float(errors_per_s) == 0
    assert float(p95) > 0 and unit == "s"
    assert int(total) >= 5
    _, runs_per_s, errors_per_s, *_ = row(out, "failing")
    assert float(runs_per_s) == float(errors_per_s) > 0


def test_once_shows_models_tokens_cost_cache_and_breakers(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    mock_openai: MockOpenAIServer,
    mock_anthropic: MockAnthropicServer,
) -> None:
    models = {
        "default": {
            "model": "openai:gpt-4o-mini",  # priced in the shipped table
            "base_url": mock_openai.base_url,
            "api_key_file": "key",
            "fallbacks": ["backup"],
            "retry": {"max_attempts": 2, "backoff_min_seconds": 0.01, "backoff_max_seconds": 0.02},
            "breaker": {"failures": 2, "cooldown_seconds": 600},
        },
        "backup": {
            "model": "anthropic:claude-backup",
            "base_url": mock_anthropic.base_url,
            "api_key_file": "key",
        },
    }
    (tmp_path / "key").write_text("test-key")
    config = tmp_path / "dockyard.yaml"
    config.write_text(
        yaml.safe_dump({"models": models, "policies": {"cache": {"ttl_seconds": 60}}})
    )
    server = LiveServer(tmp_path / "data", config=config).start()
    gateway = openai.OpenAI(base_url=f"{server.url}/v1", api_key="sk-client", max_retries=0)

    def ask(question: str) -> None:
        gateway.chat.completions.create(
            model="default", messages=[{"role": "user", "content": question}], temperature=0
        )

    def calls() -> None:
        mock_openai.enqueue_text("Sunny.", input_tokens=120, output_tokens=30)
        ask("weather?")
        ask("weather?")  # the cache's
        mock_openai.fail_next(500, times=2)  # retried, the breaker opens, the backup answers
        mock_anthropic.enqueue_text("Backup.")
        ask("and tomorrow?")

    between_scrapes(monkeypatch, calls)
    try:
        result = runner.invoke(app, ["top", "--once", "--url", f"{server.url}/metrics"])
    finally:
        server.stop()
    assert result.exit_code == 0, result.output
    out = result.output
    assert figure(out, "errors") == "0.00/s (-)"  # no runs
    assert float(figure(out, "tokens/s")) > 0
    assert figure(out, "cache hits") == "33.3%"  # a hit, then the two questions' misses
    assert float(figure(out, "cost since start").removeprefix("$")) > 0
    # One line per models: name: its calls and its breaker.
    _, calls_per_s, *_, breaker = row(out, "default")
    assert breaker == "open"
    assert float(calls_per_s) > 0


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
