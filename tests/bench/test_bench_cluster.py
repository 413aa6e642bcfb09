"""Unit tests for the cluster benchmark's pure helpers: URL/PID lists, the round-robin of
clients over servers, the deployment's command lines and CLI split. Nothing starts here."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.bench.loader import load_bench

_spread = load_bench("spread")
_deploy = load_bench("deploy")
_machine = load_bench("machine")
Layout = _deploy.Layout


# ---------------------------------------------------------------- spread


def test_parse_urls() -> None:
    assert _spread.parse_urls("http://a:1") == ("http://a:1",)
    assert _spread.parse_urls("http://a:1/, https://b:2") == ("http://a:1", "https://b:2")
    for bad in ("", "http://a,", "a:1", "http://a,,http://b"):
        with pytest.raises(ValueError):
            _spread.parse_urls(bad)


def test_parse_pids() -> None:
    assert _spread.parse_pids("12") == (12,)
    assert _spread.parse_pids("12,34") == (12, 34)
    for bad in ("", "x", "1,", "0", "-3"):
        with pytest.raises(ValueError):
            _spread.parse_pids(bad)


def test_client_url_round_robin() -> None:
    urls = ("http://a", "http://b")
    assert [_spread.client_url(urls, i) for i in range(5)] == [
        "http://a",
        "http://b",
        "http://a",
        "http://b",
        "http://a",
    ]
    assert _spread.client_url(("http://only",), 7) == "http://only"
    with pytest.raises(ValueError):
        _spread.client_url((), 0)


def test_client_offsets_continue_the_round_robin_across_processes() -> None:
    assert _spread.client_offsets([7, 7, 6]) == [0, 7, 14]
    assert _spread.client_offsets([5]) == [0]
    assert _spread.client_offsets([]) == []
    # 3 processes of 1 client over 2 servers: a, b, a (not a, a, a)
    urls = ("http://a", "http://b")
    picks = [_spread.client_url(urls, off) for off in _spread.client_offsets([1, 1, 1])]
    assert picks == ["http://a", "http://b", "http://a"]


# ---------------------------------------------------------------- deploy


def test_layout_validation_and_description() -> None:
    assert Layout().describe() == "2 API (--no-workers) + 2 worker(s)"
    assert Layout(1, 0).describe() == "1 API process(es) executing runs in-process"
    assert Layout(2, 3, 8).describe() == "2 API (--no-workers) + 3 worker(s), 8 runs each"
    for bad in ((0, 2), (1, -1)):
        with pytest.raises(ValueError):
            Layout(*bad)
    with pytest.raises(ValueError):
        Layout(2, 2, 0)


def test_proc_specs_cluster() -> None:
    cfg = Path("/p/langgraph.json")
    specs = _deploy.proc_specs(Layout(2, 2, 4), cfg, [8001, 8002], "warning")
    assert [s.kind for s in specs] == ["api", "api", "worker", "worker"]
    assert [s.port for s in specs] == [8001, 8002, None, None]
    api = specs[0].argv
    assert api[:4] == [sys.executable, "-m", "dockyard", "serve"]
    assert api[api.index("-c") + 1] == str(cfg)
    assert api[api.index("--port") + 1] == "8001"
    assert "--no-workers" in api
    worker = specs[2].argv
    assert worker[3] == "worker"
    assert worker[worker.index("--concurrency") + 1] == "4"
    # readiness is read from the worker's INFO start-up line, whatever the API level
    assert worker[worker.index("--log-level") + 1] == "info"


def test_proc_specs_single_process_executes_in_the_api() -> None:
    specs = _deploy.proc_specs(Layout(1, 0), Path("x.json"), [9000], "info")
    assert len(specs) == 1
    assert "--no-workers" not in specs[0].argv
    with pytest.raises(ValueError):
        _deploy.proc_specs(Layout(2, 0), Path("x.json"), [9000], "info")


def test_parse_args_splits_layout_from_bench_options() -> None:
    args, rest = _deploy.parse_args(
        ["--apis", "3", "--workers", "1", "--", "--clients", "20", "--duration", "15"]
    )
    assert args.layout == Layout(3, 1, None)
    assert rest == ["--clients", "20", "--duration", "15"]
    args, rest = _deploy.parse_args(["--graph", "trivial", "--worker-concurrency", "8"])
    assert args.layout == Layout(2, 2, 8)
    assert rest == ["--graph", "trivial"]


@pytest.mark.parametrize("argv", [["--", "--url", "http://x"], ["--server-pid=1"], ["--apis=0"]])
def test_parse_args_rejects(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        _deploy.parse_args(argv)


# ---------------------------------------------------------------- machine


@pytest.mark.skipif(not Path("/proc/stat").exists(), reason="needs Linux /proc")
def test_cpu_accounting_of_this_process() -> None:
    pid = os.getpid()
    one = _machine.proc_tree_cpu_seconds(pid)
    both = _machine.procs_cpu_seconds((pid, pid))
    assert one is not None and both is not None
    assert both >= 2 * one - 0.05  # summed; the clock moved a little in between
    ticks = _machine.system_cpu_ticks()
    assert ticks is not None and 0 <= ticks[0] <= ticks[1]
