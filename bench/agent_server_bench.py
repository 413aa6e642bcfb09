"""Agent Server benchmark: N concurrent langgraph-sdk clients against any Agent Server URL.

    python bench/agent_server_bench.py --url http://127.0.0.1:2024 --clients 20 --duration 20

See bench/README.md for the flags and docs/perf.md for results.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx
from chart import write_svg
from machine import machine_summary
from report import build_rows, chart_rows, command_line, markdown, rich_table, to_json
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from runner import Kind, LoadSpec, Scenario, ScenarioResult, run_scenario
from runner import Progress as RunProgress
from spread import parse_pids, parse_urls

GRAPHS = ("trivial", "fake_model")
KINDS: tuple[Kind, ...] = ("wait", "stream")
DEFAULT_INPUTS: dict[str, dict[str, Any]] = {
    "trivial": {"value": "ping"},
    "fake_model": {"messages": [{"role": "user", "content": "ping"}]},
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="agent_server_bench",
        description="Load-test an Agent Server (LangGraph API) with concurrent langgraph-sdk "
        "clients: runs/s, total latency and time-to-first-SSE-event percentiles.",
    )
    p.add_argument(
        "--url",
        default="http://127.0.0.1:8123",
        help="Agent Server base URL, or several comma-separated (clients go round-robin)",
    )
    p.add_argument("--label", default=None, help="server label for reports (default: the URL)")
    p.add_argument("--clients", type=int, default=20, help="concurrent clients (default 20)")
    p.add_argument(
        "--rate",
        type=float,
        default=None,
        help="open loop: start this many runs per second in total, on at most --clients "
        "clients at a time; latency counts from each run's scheduled start "
        "(default: closed loop, each client starts its next run when its last one ends)",
    )
    phase = p.add_mutually_exclusive_group()
    phase.add_argument(
        "--duration", type=float, default=None, help="seconds of measured phase (default 20)"
    )
    phase.add_argument("--runs", type=int, default=None, help="measured runs per scenario")
    p.add_argument("--warmup", type=float, default=3.0, help="warm-up seconds (default 3)")
    p.add_argument(
        "--graph",
        default="all",
        help="trivial | fake_model | all, or a comma-separated list of assistant ids "
        "(other graphs need --input)",
    )
    p.add_argument("--kind", choices=[*KINDS, "all"], default="all")
    p.add_argument(
        "--stateful",
        action="store_true",
        help="also run every scenario on one thread per client (besides thread_id=None)",
    )
    p.add_argument("--stream-mode", default="values", help="stream_mode for runs.stream")
    p.add_argument("--input", default=None, help="JSON run input, overrides the graph defaults")
    p.add_argument("--timeout", type=float, default=30.0, help="per-run timeout, seconds")
    p.add_argument(
        "--max-duration",
        type=float,
        default=300.0,
        help="cap on the measured phase with --runs, seconds (default 300)",
    )
    p.add_argument("--processes", type=int, default=1, help="spread the clients over K processes")
    p.add_argument(
        "--client",
        choices=["sdk", "lean"],
        default="sdk",
        help="sdk: langgraph-sdk (default); lean: the same requests over raw HTTP/1.1, for a "
        "load generator that must not take the servers' CPU (see lean_client.py)",
    )
    p.add_argument("--api-key", default=None, help="x-api-key to send (default: none)")
    p.add_argument(
        "--server-pid",
        default=None,
        help="report this process tree's CPU use (Linux); comma-separated PIDs are summed",
    )
    p.add_argument("--json", type=Path, default=None, help="write raw results to this file")
    p.add_argument("--no-samples", action="store_true", help="leave per-run samples out of --json")
    p.add_argument("--markdown", action="store_true", help="print a markdown block on stdout")
    p.add_argument("--chart", type=Path, default=None, help="write an SVG latency chart")
    args = p.parse_args(argv)
    try:
        args.urls = parse_urls(args.url)
        args.server_pids = parse_pids(args.server_pid) if args.server_pid else ()
    except ValueError as exc:
        p.error(str(exc))
    if args.duration is None and args.runs is None:
        args.duration = 20.0
    for name in ("clients", "processes"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be >= 1")
    if args.runs is not None and args.runs < 1:
        p.error("--runs must be >= 1")
    if args.duration is not None and args.duration <= 0:
        p.error("--duration must be > 0")
    if args.rate is not None and args.rate <= 0:
        p.error("--rate must be > 0")
    if args.timeout <= 0 or args.warmup < 0:
        p.error("--timeout must be > 0 and --warmup >= 0")
    return args


def build_scenarios(args: argparse.Namespace) -> list[Scenario]:
    graphs = list(GRAPHS) if args.graph == "all" else [g.strip() for g in args.graph.split(",")]
    override = json.loads(args.input) if args.input else None
    if override is not None and not isinstance(override, dict):
        raise SystemExit("--input must be a JSON object")
    for g in graphs:
        if override is None and g not in DEFAULT_INPUTS:
            raise SystemExit(f"graph {g!r} has no default input: pass --input '{{...}}'")
    kinds = list(KINDS) if args.kind == "all" else [args.kind]
    modes = [False, True] if args.stateful else [False]
    return [
        Scenario(g, k, stateful, override if override is not None else DEFAULT_INPUTS[g])
        for stateful in modes
        for g in graphs
        for k in kinds
    ]


def probe(url: str, console: Console) -> dict[str, Any] | None:
    """Fail fast when nothing listens; return /info when the server has it."""
    try:
        r = httpx.get(url.rstrip("/") + "/info", timeout=5.0)
    except httpx.HTTPError as exc:
        console.print(f"[red]cannot reach {url}: {exc}[/red]")
        raise SystemExit(2) from exc
    if r.status_code == 200:
        try:
            body = r.json()
        except ValueError:
            return None
        return body if isinstance(body, dict) else None
    return None


@dataclass
class _Bar:
    progress: Progress
    task: TaskID
    spec: LoadSpec
    name: str

    def __call__(self, p: RunProgress) -> None:
        desc = f"{self.name} [{p.phase}] runs={p.done} errors={p.errors}"
        if self.spec.runs is not None:
            self.progress.update(self.task, completed=min(p.done, self.spec.runs), description=desc)
        else:
            self.progress.update(self.task, completed=p.elapsed, description=desc)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console(stderr=True)
    if not console.is_terminal:
        console.width = max(console.width, 180)  # keep the results table readable in logs
    scenarios = build_scenarios(args)
    spec = LoadSpec(
        url=args.url,
        clients=args.clients,
        warmup=args.warmup,
        duration=args.duration,
        runs=args.runs,
        timeout=args.timeout,
        stream_mode=args.stream_mode,
        max_duration=args.max_duration,
        api_key=args.api_key,
        urls=args.urls,
        rate=args.rate,
        client=args.client,
    )
    infos = [probe(url, console) for url in args.urls]  # every server must answer
    info = infos[0]
    processes = max(1, min(args.processes, args.clients))
    meta: dict[str, Any] = {
        "label": args.label or args.url,
        "command": command_line(),
        "machine": machine_summary(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "sdk_version": version("langgraph-sdk"),
        "processes": processes,
        "server_info": info,
        "spec": spec,
    }
    results: list[ScenarioResult] = []
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn() if spec.runs is not None else TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        for sc in scenarios:
            total = spec.runs if spec.runs is not None else spec.warmup + (spec.duration or 0)
            task = progress.add_task(sc.name, total=total)
            bar = _Bar(progress, task, spec, sc.name)
            res = run_scenario(sc, spec, processes, bar, args.server_pids)
            progress.update(task, completed=total)
            results.append(res)

    rows = build_rows(results)
    console.print(
        rich_table(rows, f"{meta['label']} — {args.clients} clients, {processes} process(es)")
    )
    for row in rows:
        for err in row.result.setup_errors:
            console.print(f"[red]{row.name}: {err}[/red]")
        if row.summary.first_error:
            console.print(f"[yellow]{row.name}: first error: {row.summary.first_error}[/yellow]")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(to_json(rows, meta, not args.no_samples), indent=1))
        console.print(f"raw results: {args.json}")
    if args.chart is not None:
        path = write_svg(args.chart, chart_rows(rows), f"{meta['label']}: latency (ms)")
        console.print(f"chart: {path}")
    if args.markdown:
        sys.stdout.write(markdown(rows, meta))
    failed = any(r.summary.ok == 0 for r in rows)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
