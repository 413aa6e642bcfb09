"""Webhooks on run completion, through langgraph-sdk against the live server."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
import pytest
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.errors import UnprocessableEntityError

from dockyard.runtime.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature
from tests.conftest import WEBHOOK_SECRET, eventually


@dataclass
class Delivery:
    path: str
    headers: dict[str, str]
    body: bytes
    answered: int

    @property
    def signed(self) -> bool:
        return verify_signature(
            WEBHOOK_SECRET.encode(),
            self.body,
            self.headers.get(TIMESTAMP_HEADER),
            self.headers.get(SIGNATURE_HEADER),
        )

    def json(self) -> Any:
        return orjson.loads(self.body)


class Receiver:
    """A webhook endpoint on 127.0.0.1. ``/flaky/...`` answers 500 twice, then 200;
    ``/reject/...`` answers 400; anything else 200."""

    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    seen = sum(1 for d in receiver.deliveries if d.path == self.path)
                    code = 200
                    if self.path.startswith("/flaky/") and seen < 2:
                        code = 500
                    elif self.path.startswith("/reject/"):
                        code = 400
                    headers = {k: v for k, v in self.headers.items()}
                    receiver.deliveries.append(Delivery(self.path, headers, body, code))
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, kind: str, query: str = "") -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/{kind}/{uuid.uuid4()}{query}"

    def to(self, url: str) -> list[Delivery]:
        path = "/" + url.split("/", 3)[3]
        with self.lock:
            return [d for d in self.deliveries if d.path == path]

    async def arrived(self, url: str) -> list[Delivery]:
        async def check() -> list[Delivery]:
            return self.to(url)

        sent: list[Delivery] = await eventually(check)
        return sent


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.thread.start()
    yield r
    r.server.shutdown()
    r.server.server_close()


async def test_delivered_signed_after_two_failures(
    client: LangGraphClient, receiver: Receiver
) -> None:
    tid = (await client.threads.create())["thread_id"]
    url = receiver.url("flaky", "?token=abc")
    run = await client.runs.create(tid, "trivial", input={"x": 3}, webhook=url)
    await client.runs.join(tid, run["run_id"])

    async def delivered() -> Any:
        got: dict[str, Any] = dict(await client.runs.get(tid, run["run_id"]))
        return got if got["webhook"]["status"] != "pending" else None

    got = await eventually(delivered)
    assert got["webhook"]["status"] == "delivered"
    assert got["webhook"]["attempts"] == 3
    assert got["webhook"]["last_status_code"] == 200
    assert got["webhook"]["url"] == url.split("?")[0]  # the token is not shown back

    sent = receiver.to(url)
    assert [d.answered for d in sent] == [500, 500, 200]
    assert all(d.signed for d in sent)
    assert len({d.body for d in sent}) == 1  # one payload, signed anew per attempt
    body = sent[-1].json()
    assert body["run_id"] == run["run_id"] and body["thread_id"] == tid
    assert body["status"] == "success" and body["error"] is None
    assert body["values"] == {"x": 3}
    assert body["ended_at"] is not None and body["webhook_sent_at"] is not None
    assert "webhook" not in body


async def test_stateless_run_webhook_is_delivered(
    client: LangGraphClient, receiver: Receiver
) -> None:
    url = receiver.url("ok")
    assert await client.runs.wait(None, "trivial", input={"x": 7}, webhook=url) == {"x": 7}
    sent = await receiver.arrived(url)
    assert len(sent) == 1 and sent[0].signed
    body = sent[0].json()
    assert body["status"] == "success" and body["values"] == {"x": 7}
    assert body["kwargs"]["on_completion"] == "delete"


async def test_failed_run_reports_its_error(client: LangGraphClient, receiver: Receiver) -> None:
    tid = (await client.threads.create())["thread_id"]
    url = receiver.url("ok")
    run = await client.runs.create(tid, "failing", input={}, webhook=url)
    await client.runs.join(tid, run["run_id"])
    sent = await receiver.arrived(url)
    body = sent[0].json()
    assert body["run_id"] == run["run_id"] and body["status"] == "error"
    assert body["error"]["message"]


async def test_a_client_error_is_not_retried(client: LangGraphClient, receiver: Receiver) -> None:
    tid = (await client.threads.create())["thread_id"]
    url = receiver.url("reject")
    run = await client.runs.create(tid, "trivial", input={"x": 1}, webhook=url)
    await client.runs.join(tid, run["run_id"])

    async def settled() -> Any:
        got: dict[str, Any] = dict(await client.runs.get(tid, run["run_id"]))
        return got["webhook"] if got["webhook"]["status"] != "pending" else None

    outcome = await eventually(settled)
    assert (outcome["status"], outcome["attempts"], outcome["last_status_code"]) == (
        "failed",
        1,
        400,
    )
    assert len(receiver.to(url)) == 1


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/hook", "not a url", "http:///nohost"])
async def test_a_webhook_that_is_not_http_is_422(client: LangGraphClient, url: str) -> None:
    tid = (await client.threads.create())["thread_id"]
    with pytest.raises(UnprocessableEntityError) as err:
        await client.runs.create(tid, "trivial", input={"x": 1}, webhook=url)
    assert "webhook" in str(err.value)
    assert await client.runs.list(tid) == []
