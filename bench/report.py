"""Turning scenario results into a Rich table, a markdown block, JSON and chart rows."""

from __future__ import annotations

import shlex
import sys
from dataclasses import asdict, dataclass
from typing import Any

from chart import ChartRow
from rich.table import Table
from runner import LoadSpec, ScenarioResult
from stats import Summary, fmt_triple, summarize


@dataclass(frozen=True, slots=True)
class Row:
    result: ScenarioResult
    summary: Summary

    @property
    def name(self) -> str:
        return self.result.scenario.name

    def client_cpu_pct(self) -> str:
        return _pct(self.result.client_cpu_seconds, self.summary.wall)

    def errors_cell(self) -> str:
        return "setup failed" if self.result.setup_errors else str(self.summary.errors)

    def server_cpu_pct(self) -> str:
        return _pct(self.result.server_cpu_seconds, self.summary.wall)


def _pct(cpu_seconds: float | None, wall: float) -> str:
    if cpu_seconds is None or wall <= 0:
        return "-"
    return f"{100.0 * cpu_seconds / wall:.0f}%"


def build_rows(results: list[ScenarioResult]) -> list[Row]:
    return [Row(r, summarize(r.samples, r.measure_start, r.measure_min_wall)) for r in results]


def command_line() -> str:
    return "python " + " ".join(shlex.quote(a) for a in sys.argv)


def rich_table(rows: list[Row], title: str) -> Table:
    table = Table(title=title)
    table.add_column("scenario")
    table.add_column("runs", justify="right")
    table.add_column("runs/s", justify="right")
    table.add_column("latency ms\np50/p95/p99", justify="right")
    table.add_column("first event ms\np50/p95/p99", justify="right")
    table.add_column("first data ms\np50/p95/p99", justify="right")
    table.add_column("errors", justify="right")
    table.add_column("client CPU", justify="right")
    table.add_column("server CPU", justify="right")
    for row in rows:
        s = row.summary
        table.add_row(
            row.name,
            str(s.runs),
            f"{s.runs_per_s:.1f}",
            fmt_triple(s.latency),
            fmt_triple(s.first_event),
            fmt_triple(s.first_data),
            f"[red]{row.errors_cell()}[/red]" if s.errors or row.result.setup_errors else "0",
            row.client_cpu_pct(),
            row.server_cpu_pct(),
        )
    return table


def _load(spec: LoadSpec, meta: dict[str, Any]) -> str:
    kind = (
        "lean HTTP/1.1 clients (bench/lean_client.py)"
        if spec.client == "lean"
        else f"langgraph-sdk {meta['sdk_version']} async clients"
    )
    clients = f"{kind} in {meta['processes']} process(es)"
    if spec.rate is None:
        return f"{spec.clients} concurrent {clients}"
    return (
        f"open loop: {spec.rate:g} runs/s scheduled, at most {spec.clients} at a time, "
        f"{clients}; latency counts from each run's scheduled start"
    )


def markdown(rows: list[Row], meta: dict[str, Any]) -> str:
    spec: LoadSpec = meta["spec"]
    phase = (
        f"measured {spec.duration:g} s per scenario"
        if spec.duration is not None
        else f"{spec.runs} measured runs per scenario"
    )
    lines = [
        f"- **Server:** {meta['label']} (`{spec.url}`)",
        f"- **Command:** `{meta['command']}`",
        f"- **Machine:** {meta['machine']}",
        f"- **Date:** {meta['date']}",
        (
            f"- **Load:** {_load(spec, meta)}; warm-up {spec.warmup:g} s, {phase}; "
            f"stream_mode={spec.stream_mode}; per-run timeout {spec.timeout:g} s"
        ),
        "",
        "| scenario | runs | runs/s | latency p50 / p95 / p99 (ms) "
        "| first event p50 / p95 / p99 (ms) | first data event p50 / p95 / p99 (ms) "
        "| errors | client CPU | server CPU |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        s = row.summary
        lines.append(
            f"| {row.name} | {s.runs} | {s.runs_per_s:.1f} | {fmt_triple(s.latency)} "
            f"| {fmt_triple(s.first_event)} | {fmt_triple(s.first_data)} | {row.errors_cell()} "
            f"| {row.client_cpu_pct()} | {row.server_cpu_pct()} |"
        )
    errors = [(r.name, r.summary.first_error) for r in rows if r.summary.first_error]
    errors += [(r.name, e) for r in rows for e in r.result.setup_errors]
    if errors:
        lines.append("")
        lines.append("First errors:")
        lines.extend(f"- {name}: `{err}`" for name, err in errors)
    return "\n".join(lines) + "\n"


def chart_rows(rows: list[Row]) -> list[ChartRow]:
    def ms(v: float | None) -> float | None:
        return None if v is None else v * 1000.0

    return [
        ChartRow(
            r.name,
            ms(r.summary.latency.p50),
            ms(r.summary.latency.p95),
            ms(r.summary.latency.p99),
        )
        for r in rows
    ]


def to_json(rows: list[Row], meta: dict[str, Any], include_samples: bool = True) -> dict[str, Any]:
    out_meta = dict(meta)
    out_meta["spec"] = asdict(meta["spec"])
    out_meta["spec"].pop("api_key", None)
    scenarios = []
    for row in rows:
        r = row.result
        item: dict[str, Any] = {
            "name": row.name,
            "scenario": asdict(r.scenario),
            "processes": r.processes,
            "measure_start": r.measure_start,
            "client_cpu_seconds": r.client_cpu_seconds,
            "server_cpu_seconds": r.server_cpu_seconds,
            "setup_errors": r.setup_errors,
            "summary": row.summary.to_dict(),
        }
        if include_samples:
            item["samples"] = [asdict(s) for s in r.samples]
        scenarios.append(item)
    return {"meta": out_meta, "scenarios": scenarios}
