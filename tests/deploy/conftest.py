"""A live dockyard's /metrics page, for the tests that check deploy/ against it."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import LiveServer


@pytest.fixture(scope="module")
def metrics_text(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = LiveServer(tmp_path_factory.mktemp("deploy")).start()
    try:
        r = httpx.get(f"{server.url}/metrics", timeout=10)
        assert r.status_code == 200, r.text
        yield r.text
    finally:
        server.stop()
