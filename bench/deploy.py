"""Start a dockyard deployment on this machine for the benchmark, and stop it.

The production layout is N API-only servers (``dockyard serve --no-workers``) and M
``dockyard worker`` processes over PostgreSQL + Redis; with no workers the API servers
execute runs themselves (the single-process PostgreSQL + Redis comparison). Every run of
the benchmark gets a fresh PostgreSQL database and a fresh Redis key prefix, both removed
afterwards, like tests/cluster.py does for the test suite (which cannot be reused here: it
depends on pytest fixtures and the test project).

No bench-local imports, so that tests/bench can load this file by path.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/0"
BENCH_PROJECT = Path(__file__).resolve().parent / "langgraph.json"
# A worker is ready once it logs this (dockyard.runtime.worker, at INFO).
WORKER_READY_MARK = b"executing"
# agent_server_bench options that cluster_bench sets itself.
OWNED_OPTIONS = ("--url", "--server-pid")


@dataclass(frozen=True, slots=True)
class Layout:
    apis: int = 2
    workers: int = 2
    worker_concurrency: int | None = None  # None: runs.max_concurrency's default

    def __post_init__(self) -> None:
        if self.apis < 1 or self.workers < 0:
            raise ValueError("a layout needs >= 1 API process and >= 0 workers")
        if self.worker_concurrency is not None and self.worker_concurrency < 1:
            raise ValueError("worker concurrency must be >= 1")

    def describe(self) -> str:
        if self.workers == 0:
            return f"{self.apis} API process(es) executing runs in-process"
        conc = f", {self.worker_concurrency} runs each" if self.worker_concurrency else ""
        return f"{self.apis} API (--no-workers) + {self.workers} worker(s){conc}"


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, list[str]]:
    """Deployment options, and the arguments left for agent_server_bench."""
    p = argparse.ArgumentParser(
        prog="cluster_bench",
        description="Start dockyard API servers + workers over a fresh PostgreSQL database "
        "and Redis prefix, benchmark them with agent_server_bench, stop them. Arguments "
        "after -- (or unknown ones) go to agent_server_bench.py.",
        # No prefix matching: an abbreviated agent_server_bench option must not be taken
        # for one of ours.
        allow_abbrev=False,
    )
    p.add_argument("--apis", type=int, default=2, help="API processes (default 2)")
    p.add_argument(
        "--workers",
        type=int,
        default=2,
        help="dockyard worker processes (default 2; 0: APIs execute runs in-process)",
    )
    p.add_argument(
        "--worker-concurrency",
        type=int,
        default=None,
        help="runs each worker executes at once (default: runs.max_concurrency, 16)",
    )
    p.add_argument("--pg-admin-url", default=ADMIN_URL, help="PostgreSQL to create the DB in")
    p.add_argument("--redis-url", default=REDIS_URL, help="Redis to use (fresh key prefix)")
    p.add_argument("--server-log-level", default="warning", help="log level of the API servers")
    p.add_argument("--logs", type=Path, default=None, help="keep the servers' logs in this folder")
    args, rest = p.parse_known_args(argv)
    rest = [a for a in rest if a != "--"]
    for a in rest:
        if a.split("=", 1)[0] in OWNED_OPTIONS:
            p.error(f"{a.split('=', 1)[0]} is set by cluster_bench")
    try:
        args.layout = Layout(args.apis, args.workers, args.worker_concurrency)
    except ValueError as exc:
        p.error(str(exc))
    return args, rest


@dataclass(frozen=True, slots=True)
class ProcSpec:
    kind: str  # "api" | "worker"
    argv: list[str]
    port: int | None = None


def proc_specs(layout: Layout, config: Path, ports: list[int], log_level: str) -> list[ProcSpec]:
    """The command line of every process of ``layout`` (APIs first), one port per API."""
    if len(ports) != layout.apis:
        raise ValueError(f"need {layout.apis} ports, got {len(ports)}")
    base = [sys.executable, "-m", "dockyard"]
    # APIs only queue runs when workers exist; without workers they execute them.
    api_mode = ["--no-workers"] if layout.workers else []
    specs = [
        ProcSpec(
            "api",
            [
                *base,
                "serve",
                "-c",
                str(config),
                "--port",
                str(port),
                *api_mode,
                "--log-level",
                log_level,
            ],
            port,
        )
        for port in ports
    ]
    conc = ["--concurrency", str(layout.worker_concurrency)] if layout.worker_concurrency else []
    # INFO at least: readiness is detected from the worker's start-up log line (a worker
    # logs nothing per run at INFO, so this costs nothing during the measurement).
    worker_level = "debug" if log_level == "debug" else "info"
    specs += [
        ProcSpec("worker", [*base, "worker", "-c", str(config), *conc, "--log-level", worker_level])
        for _ in range(layout.workers)
    ]
    return specs


@dataclass
class Proc:
    spec: ProcSpec
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.spec.port}"

    @property
    def name(self) -> str:
        return f"{self.spec.kind} {self.pid}"

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


@dataclass
class Deployment:
    env: dict[str, str]
    logdir: Path
    procs: list[Proc] = field(default_factory=list)

    @property
    def apis(self) -> list[Proc]:
        return [p for p in self.procs if p.spec.kind == "api"]

    @property
    def urls(self) -> tuple[str, ...]:
        return tuple(p.url for p in self.apis)

    @property
    def database(self) -> str:
        return self.env["DOCKYARD_DATABASE_URL"].rpartition("/")[2]

    @property
    def pids(self) -> tuple[int, ...]:
        return tuple(p.pid for p in self.procs)

    def start(self, spec: ProcSpec) -> Proc:
        log = self.logdir / f"{spec.kind}-{len(self.procs)}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(
                spec.argv,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                # Own session: a Ctrl-C in the terminal reaches only the benchmark, which
                # then stops its children in order (SIGTERM lets workers drain).
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        proc = Proc(spec, popen, log)
        self.procs.append(proc)
        return proc

    def wait_ready(self, proc: Proc, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not proc.alive():
                raise RuntimeError(f"{proc.name} exited at start-up:\n{proc.log_tail()}")
            if proc.spec.kind == "api":
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{proc.url}/ready", timeout=2.0).status_code == 200:
                        return
            elif WORKER_READY_MARK in proc.log.read_bytes():
                return
            time.sleep(0.2)
        raise RuntimeError(f"{proc.name} not ready after {timeout:g}s:\n{proc.log_tail()}")

    def check_alive(self) -> list[str]:
        """Processes that died (e.g. during the benchmark), with their log tails."""
        return [
            f"{p.name} exited ({p.popen.returncode}):\n{p.log_tail()}"
            for p in self.procs
            if not p.alive()
        ]

    def stop(self, grace: float = 15.0) -> None:
        """Stop every process by PID: the APIs first, then the workers.

        In that order an API's in-flight requests (e.g. a ``runs.wait`` of an interrupted
        client) can still finish: uvicorn waits for them on SIGTERM, and with the workers
        gone first they would never end. Whatever outlives ``grace`` gets SIGKILL.
        """
        _terminate([p for p in self.procs if p.spec.kind == "api"], grace)
        _terminate([p for p in self.procs if p.spec.kind != "api"], grace)


def _terminate(procs: list[Proc], grace: float) -> None:
    for p in procs:
        if p.alive():
            with contextlib.suppress(ProcessLookupError):
                p.popen.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for p in procs:
        try:
            p.popen.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.popen.kill()
            p.popen.wait(5.0)


# Looked up once in the parent: between fork and exec the child should do as little as
# possible (the parent has threads, e.g. rich's spinner, whose locks the child inherits).
_prctl: Callable[..., int] | None
try:
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux
    _prctl = None
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the benchmark dies, even by SIGKILL."""
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def fresh_database(admin_url: str = ADMIN_URL) -> Iterator[str]:
    """An empty PostgreSQL database for one benchmark; dropped afterwards (even if in use)."""
    import psycopg

    name = f"dockyard_bench_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(admin_url, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        raise RuntimeError(f"PostgreSQL at {admin_url} is not available: {exc}") from exc
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            base, _, _ = admin_url.rpartition("/")
            yield f"{base}/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def fresh_redis_prefix(redis_url: str = REDIS_URL) -> Iterator[str]:
    """A Redis key prefix nobody else uses; its keys are deleted afterwards."""
    import redis

    client = redis.Redis.from_url(redis_url, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise RuntimeError(f"Redis at {redis_url} is not available: {exc}") from exc
    prefix = f"dockyard-bench-{uuid.uuid4().hex[:10]}"
    try:
        yield prefix
    finally:
        # Run streams expire by themselves, but a benchmark leaves thousands: delete now.
        batch: list[bytes] = []
        for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                client.delete(*batch)
                batch = []
        if batch:
            client.delete(*batch)
        client.close()


@contextlib.contextmanager
def deployment(
    layout: Layout,
    workdir: Path,
    *,
    config: Path = BENCH_PROJECT,
    admin_url: str = ADMIN_URL,
    redis_url: str = REDIS_URL,
    log_level: str = "warning",
    on_ready: Callable[[Proc], None] | None = None,
) -> Iterator[Deployment]:
    """Start ``layout`` over a fresh database and Redis prefix, wait until every process is
    ready, yield it; stop every process and remove the database and keys afterwards."""
    with fresh_database(admin_url) as db_url, fresh_redis_prefix(redis_url) as prefix:
        env = {
            **os.environ,
            "DOCKYARD_DATABASE_URL": db_url,
            "DOCKYARD_REDIS_URL": redis_url,
            "DOCKYARD_REDIS_PREFIX": prefix,
            "DOCKYARD_DATA_DIR": str(workdir / "data"),
            # Open, as `langgraph dev` is: the runtime is measured, not key lookups.
            "DOCKYARD_AUTH__REQUIRED": "false",
        }
        logdir = workdir / "logs"
        logdir.mkdir(parents=True, exist_ok=True)
        dep = Deployment(env, logdir)
        try:
            ports = [free_port() for _ in range(layout.apis)]
            specs = proc_specs(layout, config, ports, log_level)
            # The first process alone, then the rest together: on an empty database every
            # process creates the graphs' default assistants at start-up with a
            # check-then-insert, and concurrent starts can fail with a duplicate key
            # (seen here: UniqueViolation on assistants_pkey, a worker exited).
            first = dep.start(specs[0])
            dep.wait_ready(first)
            if on_ready is not None:
                on_ready(first)
            for proc in [dep.start(s) for s in specs[1:]]:
                dep.wait_ready(proc)
                if on_ready is not None:
                    on_ready(proc)
            yield dep
        finally:
            dep.stop()
