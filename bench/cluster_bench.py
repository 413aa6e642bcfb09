"""Benchmark dockyard's production layout on this machine: API servers + workers over
PostgreSQL + Redis, driven by agent_server_bench's clients spread round-robin over the APIs.

    python bench/cluster_bench.py --apis 2 --workers 2 -- --clients 20 --duration 15 --markdown

Options before ``--`` describe the deployment; everything after it goes to
agent_server_bench.py (``--url`` and ``--server-pid`` are filled in here). ``--workers 0``
runs the APIs with their in-process executor (``--apis 1 --workers 0``: the single-process
PostgreSQL + Redis comparison). Every process started here is stopped by PID at the end,
also on Ctrl-C, SIGTERM or errors; the database and Redis keys are removed.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from types import FrameType

import agent_server_bench
from deploy import Deployment, Layout, Proc, deployment, parse_args
from machine import cpu_by_command, nproc, proc_tree_cpu_seconds, system_cpu_ticks
from rich.console import Console
from rich.table import Table


def default_label(layout: Layout) -> str:
    return f"dockyard {version('dockyard')} (PostgreSQL + Redis; {layout.describe()})"


@dataclass
class CpuSnapshot:
    """CPU seconds of everything that serves the benchmark, at one moment."""

    at: float
    ours: dict[int, float | None]  # deployment PID -> CPU seconds
    postgres: dict[int, float]  # PID -> CPU seconds of this deployment's database backends
    redis: dict[int, float]  # PID -> CPU seconds of redis-server (shared with anyone else)
    clients: float  # this process and its finished client processes (--processes > 1)
    system: tuple[int, int] | None  # (busy, total) ticks of the machine

    @classmethod
    def take(cls, dep: Deployment) -> CpuSnapshot:
        return cls(
            at=time.monotonic(),
            ours={p.pid: proc_tree_cpu_seconds(p.pid) for p in dep.procs},
            # Backends show their database in the process title; other databases on the
            # same server (e.g. a test suite running meanwhile) are not ours.
            postgres=cpu_by_command("postgres", f" {dep.database} "),
            redis=cpu_by_command("redis-server"),
            clients=_own_cpu_seconds(),
            system=system_cpu_ticks(),
        )


def _own_cpu_seconds() -> float:
    # Client processes (--processes > 1) live for one scenario each and have been waited
    # for by the time of a snapshot, so their CPU shows in the children_* times; the
    # servers are still running and do not.
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def cpu_rows(dep: Deployment, a: CpuSnapshot, b: CpuSnapshot) -> list[tuple[str, str]]:
    """(what, % of one core) over the interval between two snapshots."""
    wall = max(b.at - a.at, 1e-9)
    rows: list[tuple[str, float | None]] = []
    for proc in dep.procs:
        c0, c1 = a.ours.get(proc.pid), b.ours.get(proc.pid)
        rows.append((proc.name, c1 - c0 if c0 is not None and c1 is not None else None))
    for what, before, after in (
        ("postgres backends of the bench database", a.postgres, b.postgres),
        ("redis-server", a.redis, b.redis),
    ):
        # Only processes alive at both ends: a backend that came and went is not counted.
        spent = sum(cpu - before[pid] for pid, cpu in after.items() if pid in before)
        rows.append((f"{what} ({len(after)})", spent))
    rows.append(("benchmark clients", b.clients - a.clients))
    if a.system is not None and b.system is not None:
        busy, total = b.system[0] - a.system[0], b.system[1] - a.system[1]
        ncpu = nproc()
        machine = busy / total * ncpu * wall if total else 0.0
        counted = sum(v for _, v in rows if v is not None)
        # What the benchmark did not account for: other work on the machine (e.g. a test
        # suite), PostgreSQL's background processes, the kernel's loopback networking.
        rows.append(("everything else on the machine", max(0.0, machine - counted)))
        rows.append((f"machine total ({ncpu} CPUs = {100 * ncpu}%)", machine))
    return [(name, "-" if v is None else f"{100.0 * v / wall:.0f}%") for name, v in rows]


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """Ctrl-C and SIGTERM: stop now, through every ``finally`` that stops servers.

    Installed for SIGINT too because asyncio.run's own SIGINT handling only cancels the
    client tasks, and the benchmark was seen to carry on to the end of the scenario.
    """
    # The client tasks die with the interrupt; asyncio would log each as "exception never
    # retrieved" while the servers are being stopped.
    logging.getLogger("asyncio").disabled = True
    raise KeyboardInterrupt


def run(args: argparse.Namespace, rest: list[str], workdir: Path, console: Console) -> int:
    layout: Layout = args.layout
    load_before = _load()
    with contextlib.ExitStack() as stack:
        # The status spinner ends before the benchmark's own progress bars start.
        with console.status(f"starting {layout.describe()} …") as status:

            def ready(proc: Proc) -> None:
                where = proc.url if proc.spec.port else "worker"
                status.update(f"{proc.name} ready ({where}); waiting for the others …")

            dep = stack.enter_context(
                deployment(
                    layout,
                    workdir,
                    admin_url=args.pg_admin_url,
                    redis_url=args.redis_url,
                    log_level=args.server_log_level,
                    on_ready=ready,
                )
            )
        console.print(
            f"{layout.describe()}: APIs {', '.join(dep.urls)}; "
            f"PIDs {', '.join(str(p) for p in dep.pids)}; load average {load_before}"
        )
        bench_argv = [
            *rest,
            "--url",
            ",".join(dep.urls),
            "--server-pid",
            ",".join(str(p) for p in dep.pids),
        ]
        if not any(a.split("=", 1)[0] == "--label" for a in rest):
            bench_argv += ["--label", default_label(layout)]
        before = CpuSnapshot.take(dep)
        code = agent_server_bench.main(bench_argv)
        after = CpuSnapshot.take(dep)
        dead = dep.check_alive()
        rows = cpu_rows(dep, before, after)
        load_after = _load()
    table = Table(title="CPU over the whole benchmark (% of one core)")
    table.add_column("process")
    table.add_column("CPU", justify="right")
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
    console.print(f"load average (1 / 5 / 15 min): before {load_before}, after {load_after}")
    for text in dead:
        console.print(f"[red]{text}[/red]")
    if "--markdown" in rest:
        cpu = "; ".join(f"{name} {value}" for name, value in rows)
        sys.stdout.write(
            f"- **Layout:** {layout.describe()}\n"
            f"- **CPU over the whole benchmark (% of one core):** {cpu}\n"
            f"- **Load average (1/5/15 min):** before {load_before}, after {load_after}\n"
        )
    return 1 if dead else code


def main(argv: list[str] | None = None) -> int:
    args, rest = parse_args(argv)
    console = Console(stderr=True)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _interrupt)
    try:
        if args.logs is not None:
            args.logs.mkdir(parents=True, exist_ok=True)
            return run(args, rest, args.logs, console)
        with tempfile.TemporaryDirectory(prefix="dockyard-bench-") as tmp:
            return run(args, rest, Path(tmp), console)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted: servers stopped, database dropped[/yellow]")
        return 130
    except RuntimeError as exc:  # a server failed to start or died
        console.print(f"[red]{exc}[/red]")
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
