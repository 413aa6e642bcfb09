"""The project's own server, started by ``dockyard eval`` when no ``--url`` is given:
``dockyard serve`` in a child process (the configured database, models and policies),
on 127.0.0.1 at a free port, for as long as the evaluation runs.

A child process, not a thread: a provider SDK's HTTP client is cached per process and
bound to the event loop that first used it, so a server loop and the CLI's own loop (an
LLM judge calling the same provider) must not share one process.

It is open (no API key) like ``dockyard dev``: only this machine reaches it, and only
while the command runs. With the embedded SQLite store, stop ``dockyard serve`` on the
same project first (SQLite is one process's store), or pass ``--url`` to use it instead.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from dockyard.errors import UnavailableError
from dockyard.settings import Settings

START_TIMEOUT = 90.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def local_server(settings: Settings) -> Iterator[str]:
    """Serve ``settings``' project in a child process; yields its URL."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "dockyard", "serve", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--log-level", "warning"]
    if settings.config_file is not None:
        command += ["--config", str(Path(settings.config_file).resolve())]
    # The child's settings come from the same file; only auth is opened, for this
    # loopback port's lifetime (as `dockyard dev` does for its child).
    env = {**os.environ, "DOCKYARD_AUTH__REQUIRED": "false"}
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            command,
            cwd=settings.project_dir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_ready(proc, url, log)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_ready(proc: subprocess.Popen[bytes], url: str, log: object) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.seek(0)  # type: ignore[attr-defined]
            tail = log.read().decode(errors="replace")[-2000:]  # type: ignore[attr-defined]
            raise UnavailableError(f"the project's server exited ({proc.returncode}):\n{tail}")
        try:
            if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise UnavailableError(f"the project's server did not answer /ready in {START_TIMEOUT:g}s")
