"""Unexpected failures answer a JSON 500 without a stack trace and keep the connection."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import LiveServer


async def test_unexpected_error_is_json_500_and_connection_survives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = LiveServer(tmp_path).start()
    try:
        threads = server.app.state.runtime.storage.threads

        async def broken(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("secret internals /etc/passwd")

        monkeypatch.setattr(threads, "search", broken)
        async with httpx.AsyncClient(base_url=server.url) as http:
            r = await http.post("/threads/search", json={})
            assert r.status_code == 500
            assert r.json() == {
                "detail": "internal error; the server log has the details",
                "code": "internal_error",
            }
            assert "secret" not in r.text and "Traceback" not in r.text
            # same client, same keep-alive connection: still served
            assert (await http.get("/health")).status_code == 200
    finally:
        server.stop()


async def test_default_assistant_comes_back_after_delete(http: httpx.AsyncClient) -> None:
    assert (await http.delete("/assistants/factory")).status_code == 204
    r = await http.post("/runs/wait", json={"assistant_id": "factory", "input": {"x": 4}})
    assert r.status_code == 200 and r.json() == {"x": 4}
    assert (await http.get("/assistants/factory")).json()["graph_id"] == "factory"
