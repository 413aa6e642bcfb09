"""The programs the deploy/ tests run (promtool, Prometheus, Alertmanager), the processes
they start, and a receiver for Alertmanager's webhook.

scripts/test installs the programs when missing (scripts/_tools.sh). With CI=true a test
that needs a missing one fails; elsewhere it is skipped with the reason.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

DEPLOY = Path(__file__).parents[2] / "deploy"


def program(*names: str) -> str:
    """The path of the first of ``names`` installed (Debian and upstream name some
    binaries differently)."""
    for name in names:
        path = shutil.which(name)
        if path is not None:
            return path
    message = (
        f"{names[0]} is not installed (Debian: apt-get install prometheus "
        "prometheus-alertmanager; scripts/test does it when run as root)"
    )
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message)
    pytest.skip(message)


def run(*args: str | Path) -> str:
    """Run a tool to completion; fail the test with its output when it fails."""
    done = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=60, check=False
    )
    output = done.stdout + done.stderr
    if done.returncode != 0:
        pytest.fail(f"{' '.join(map(str, args))} exited with {done.returncode}:\n{output}")
    return output


@contextmanager
def daemon(args: list[str], log: Path, ready_url: str) -> Iterator[subprocess.Popen[bytes]]:
    """Start a server program, wait until ``ready_url`` answers 200, kill it (by its PID)
    on the way out; its log is in the failure message when it does not get ready."""
    with log.open("wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                pytest.fail(f"{args[0]} exited with {proc.returncode}:\n{log.read_text()}")
            try:
                if httpx.get(ready_url, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"{args[0]} not ready within 30 s:\n{log.read_text()}")
            time.sleep(0.1)
        yield proc
    finally:
        proc.kill()
        proc.wait(timeout=30)


class WebhookReceiver:
    """An HTTP server on 127.0.0.1 that keeps every JSON body POSTed to it."""

    def __init__(self) -> None:
        self.bodies: list[Any] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with receiver.lock:
                    receiver.bodies.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        host, port = self.server.server_address[:2]
        self.url = f"http://{host!s}:{port}/alerts"

    def received(self) -> list[Any]:
        with self.lock:
            return list(self.bodies)

    def __enter__(self) -> WebhookReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def metric_names(expr: str) -> set[str]:
    """The dockyard series an expression reads (every metric of ours has the prefix)."""
    return set(re.findall(r"\bdockyard_[a-z0-9_]+\b", expr))


def exported_series(metrics_text: str) -> set[str]:
    """The series names a /metrics page can have: a counter's ``_total``, a histogram's
    ``_bucket``/``_sum``/``_count``, a gauge's own name, whether or not a sample of it
    has been written yet."""
    names: set[str] = set()
    for family in text_string_to_metric_families(metrics_text):
        if family.type == "counter":
            names.add(f"{family.name}_total")
        elif family.type == "histogram":
            names |= {f"{family.name}_{suffix}" for suffix in ("bucket", "sum", "count")}
        else:
            names.add(family.name)
    return names
