"""A production layout on this machine: API-only servers and worker processes.

Every process is a real ``python -m dockyard ...`` child over the machine's
PostgreSQL (a fresh database) and Redis (a fresh key prefix), as an operator
would run them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.conftest import FIXTURE_PROJECT, free_port, guarded
from tests.pg import fresh_database_sync
from tests.redis_server import REDIS_URL, fresh_prefix


@dataclass
class Proc:
    kind: str
    popen: subprocess.Popen[bytes]
    log: Path
    port: int | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.popen.poll() is None


@dataclass
class Cluster:
    env: dict[str, str]
    workdir: Path
    config: Path = FIXTURE_PROJECT / "dockyard.yaml"
    apis: list[Proc] = field(default_factory=list)
    workers: list[Proc] = field(default_factory=list)

    def _spawn(self, kind: str, args: list[str], port: int | None = None) -> Proc:
        n = len(self.apis) + len(self.workers)
        log = self.workdir / f"{kind}-{n}-{time.monotonic_ns()}.log"
        popen = subprocess.Popen(
            [sys.executable, "-m", "dockyard", *args, "-c", str(self.config)],
            env=self.env,
            # The log lines are on stdout (observability/logs.py), the CLI's own on stderr.
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        return Proc(kind, popen, log, port)

    def start_api(self, *, executes: bool = False) -> Proc:
        """An API server; ``executes``: it runs runs too (serve without --no-workers)."""
        port = free_port()
        args = ["serve", "--port", str(port), "--log-level", "warning"]
        proc = self._spawn("api", args if executes else [*args, "--no-workers"], port)
        self.apis.append(proc)
        return proc

    def start_worker(self) -> Proc:
        proc = self._spawn("worker", ["worker", "--log-level", "info"])
        self.workers.append(proc)
        return proc

    def wait_ready(self, proc: Proc, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not proc.alive():
                raise RuntimeError(f"{proc.kind} exited:\n{proc.log.read_text()[-3000:]}")
            if proc.kind == "api":
                try:
                    if httpx.get(f"{proc.url}/ready", timeout=2).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
            elif b"executing" in proc.log.read_bytes():
                return
            time.sleep(0.1)
        raise RuntimeError(f"{proc.kind} not ready in {timeout}s:\n{proc.log.read_text()[-3000:]}")

    def worker_by_pid(self, pid: int) -> Proc:
        return next(w for w in self.workers if w.pid == pid)

    def kill(self, proc: Proc, sig: int = signal.SIGKILL) -> None:
        proc.popen.send_signal(sig)
        proc.popen.wait(30)
        if proc in self.workers:
            self.workers.remove(proc)

    def stop(self) -> None:
        procs = self.apis + self.workers
        for p in procs:
            if p.alive():
                p.popen.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.popen.wait(15)
            except subprocess.TimeoutExpired:
                p.popen.kill()
                p.popen.wait(5)


@contextmanager
def cluster(
    workdir: Path,
    apis: int = 2,
    workers: int = 2,
    config: Path = FIXTURE_PROJECT / "dockyard.yaml",
    **settings: str,
) -> Iterator[Cluster]:
    """``apis`` API-only servers and ``workers`` workers of the project ``config``, ready;
    stopped afterwards."""
    with fresh_database_sync() as db_url, fresh_prefix() as prefix:
        env = guarded(
            {
                **os.environ,
                "DOCKYARD_DATABASE_URL": db_url,
                "DOCKYARD_REDIS_URL": REDIS_URL,
                "DOCKYARD_REDIS_PREFIX": prefix,
                "DOCKYARD_DATA_DIR": str(workdir / "data"),
                **{f"DOCKYARD_{k.upper()}": v for k, v in settings.items()},
            }
        )
        c = Cluster(env, workdir, config)
        try:
            procs = [c.start_api() for _ in range(apis)] + [
                c.start_worker() for _ in range(workers)
            ]
            for p in procs:
                c.wait_ready(p)
            yield c
        finally:
            c.stop()
