"""Shared fixtures: a live dockyard server on 127.0.0.1 and SDK clients for it."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import socket
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import uvicorn
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient

from dockyard.api import create_app
from dockyard.settings import load_settings
from dockyard.testing.model_requests import ModelRequestGuard

# The plugin's fixture, imported: only a conftest in the rootdir may declare pytest_plugins.
from dockyard.testing.pytest_plugin import no_model_requests  # noqa: F401

# CLI output (Rich) wraps at the console's width, which would otherwise follow the terminal
# or, without one, 80 columns: a long temporary path (longer under pytest-xdist's per-worker
# directories) then breaks a message a test looks for. One wide width for every CLI run in
# this process and the processes it starts.
os.environ["COLUMNS"] = "250"

# Set by dockyard in its own process for the processes it starts (cli/main.py,
# observability/metrics_dir.py); guarded() keeps them out of a test's processes.
LEAKED_ENV = (
    "PROMETHEUS_MULTIPROC_DIR",
    "DOCKYARD_OBSERVABILITY__METRICS__MULTIPROCESS_DIR",
    "DOCKYARD_CONFIG_FILE",
)

T = TypeVar("T")
FIXTURE_PROJECT = Path(__file__).parent / "fixtures" / "project"
SUBPROCESS_GUARD = Path(__file__).parent / "subprocess_guard"


@pytest.fixture(autouse=True)
def _no_real_model_requests(no_model_requests: ModelRequestGuard) -> None:  # noqa: F811
    """A request to a model provider off this machine fails the test, also from the
    servers it runs in threads (dockyard.testing.model_requests)."""


def guarded(env: dict[str, str]) -> dict[str, str]:
    """``env`` for a Python process a test starts: real model requests are refused in it
    too (tests/subprocess_guard/sitecustomize.py)."""
    paths = [str(SUBPROCESS_GUARD), *filter(None, [env.get("PYTHONPATH")])]
    # What an in-process server or CLI run of an earlier test left in this process's
    # environment (the metrics directory it chose, its config file) is its own: a process
    # started now with it would count its metrics in that test's directory.
    inherited = {k: v for k, v in env.items() if k not in LEAKED_ENV or os.environ.get(k) != v}
    # Servers run open unless the test is about keys (tests/policies/test_auth*.py).
    return {
        "DOCKYARD_AUTH__REQUIRED": "false",
        **inherited,
        "PYTHONPATH": os.pathsep.join(paths),
    }


# Webhooks of the test servers: signed with a known secret, retried without long waits.
WEBHOOK_SECRET = "dockyard-test-webhook-secret"
TEST_WEBHOOKS = {
    "secret": WEBHOOK_SECRET,
    "backoff_initial_seconds": 0.05,
    "backoff_max_seconds": 0.2,
    "timeout_seconds": 5,
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _forget_provider_clients() -> None:
    """Drop the provider packages' process-wide cached HTTP clients (keyed by base URL).

    A server thread's loop is closed when it stops; a cached client whose pooled
    connections were opened on that loop then fails the next test that builds a model for
    the same mock URL ("Event loop is closed"). A deployed process has one loop, so this is
    the tests' concern only (several loops in one process)."""
    import langchain_anthropic._client_utils as anthropic_clients
    import langchain_openai.chat_models._client_utils as openai_clients

    for cache in (
        openai_clients._cached_async_httpx_client,
        openai_clients._cached_sync_httpx_client,
        anthropic_clients._get_default_async_httpx_client,
        anthropic_clients._get_default_httpx_client,
    ):
        cache.cache_clear()


class LiveServer:
    """uvicorn serving a dockyard app in a background thread."""

    def __init__(
        self, data_dir: Path, config: Path = FIXTURE_PROJECT / "dockyard.yaml", **overrides: Any
    ) -> None:
        self.port = free_port()
        overrides.setdefault("webhooks", TEST_WEBHOOKS)
        # Open unless the test is about keys (tests/policies/test_auth*.py).
        overrides.setdefault("auth", {"required": False})
        # Its log lines (observability/logs.py) would land between pytest's own.
        overrides.setdefault("log_level", "warning")
        self.settings = load_settings(config, data_dir=data_dir, port=self.port, **overrides)
        self.app = create_app(self.settings)
        self.server = uvicorn.Server(
            uvicorn.Config(
                self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on"
            )
        )
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.url = f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        # Our own loop, so tests can run coroutines on the server's loop.
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self.server.serve())
        finally:
            pending = asyncio.all_tasks(self.loop)
            for task in pending:
                task.cancel()
            self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()

    def start(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("dockyard test server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        _forget_provider_clients()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the server's loop (its storage lives there)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)


def make_key(
    *servers: LiveServer,
    tenant: str = "acme",
    scopes: list[str] | None = None,
    policies: dict[str, Any] | None = None,
    **fields: Any,
) -> str:
    """A new API key, stored in each server's database (as `dockyard keys create` does)."""
    from dockyard.policies.auth import key_record, new_key

    key = new_key()
    row = key_record(key, tenant=tenant, scopes=scopes, policies=policies, **fields)
    for server in servers:
        server.run(server.app.state.runtime.storage.keys.create(row))
    return key


@pytest.fixture(scope="session", params=["sqlite", "postgres", "postgres+redis"])
def live_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """The API tests run once per deployment: embedded SQLite, PostgreSQL, and
    PostgreSQL with run events and signals through Redis."""
    data_dir = tmp_path_factory.mktemp("dockyard-data")
    if request.param == "sqlite":
        server = LiveServer(data_dir).start()
        yield server
        server.stop()
        return
    from tests.pg import fresh_database_sync
    from tests.redis_server import REDIS_URL, fresh_prefix

    with contextlib.ExitStack() as stack:
        extra: dict[str, Any] = {}
        if request.param == "postgres+redis":
            prefix = stack.enter_context(fresh_prefix())
            extra = {"redis_url": REDIS_URL, "redis_prefix": prefix}
        url = stack.enter_context(fresh_database_sync())
        server = LiveServer(data_dir, database_url=url, **extra).start()
        yield server
        server.stop()


@pytest.fixture(scope="session")
def server_url(live_server: LiveServer) -> str:
    return live_server.url


@pytest.fixture
async def client(server_url: str) -> AsyncIterator[LangGraphClient]:
    c = get_client(url=server_url, timeout=30)
    yield c
    await c.aclose()


@pytest.fixture
async def http(server_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server_url, timeout=30) as h:
        yield h


async def eventually(
    predicate: Any,
    timeout: float = 10.0,  # noqa: ASYNC109 - a polling deadline
    interval: float = 0.05,
) -> Any:
    """Poll ``predicate`` (a function, async or not) until it returns a truthy value,
    and return that value. The way a test waits for something: never a fixed sleep."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last value {value!r})")
        await asyncio.sleep(interval)


def wait_ready(proc: subprocess.Popen[bytes], url: str, log: Path, timeout: float = 60) -> None:
    """Wait until the server ``proc`` started answers ``/ready``; fail with its log if it
    exits or does not get there within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"dockyard serve exited with {proc.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    pytest.fail(f"dockyard serve not ready within {timeout:.0f}s:\n{log.read_text()}")
