"""A lean Agent Server client for the load generator: the calls the benchmark makes, over raw
HTTP/1.1 keep-alive connections, parsed by httptools.

Why: on a 2-core machine the benchmark's clients share the cores with the servers they
measure, and langgraph-sdk (httpx, its SSE decoder, JSON of every event) costs about as much
CPU per run as an API process. Load generators are made lean for this reason (k6, wrk).
It speaks the same requests as langgraph-sdk (the same paths and JSON bodies, minus the
fields the SDK leaves out when unset) and exposes the same shape
(``threads.create/delete``, ``runs.wait``, ``runs.stream`` yielding parts with ``event`` and
``data``), so ``runner.one_run`` drives either. Event data stays raw bytes: the benchmark
only looks at event names.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httptools
import orjson


class LeanHTTPError(Exception):
    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"HTTP {status}: {body[:200].decode(errors='replace')}")
        self.status = status


@dataclass(frozen=True, slots=True)
class Part:
    event: str
    data: bytes


class _Response:
    """httptools callbacks: the body as it arrives, and whether the message is complete."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.body: list[bytes] = []
        self.complete = False
        self.keep_alive = False

    def on_headers_complete(self) -> None:
        # Asked here: llhttp forgets it once the message is complete.
        self.keep_alive = self.parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.complete = True


class _Connection:
    """One keep-alive connection; a request at a time (the benchmark's clients are sequential)."""

    def __init__(self, host: str, port: int, headers: bytes) -> None:
        self.host, self.port, self.headers = host, port, headers
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: Any = None) -> AsyncIterator[bytes]:
        """Send one request; yield the (de-chunked) body as it arrives. Raises on HTTP >= 400."""
        if self._writer is None or self._writer.is_closing():
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        reader, writer = self._reader, self._writer
        assert reader is not None
        payload = b"" if body is None else orjson.dumps(body)
        writer.write(
            b"%s %s HTTP/1.1\r\n%scontent-length: %d\r\n\r\n%s"
            % (method.encode(), path.encode(), self.headers, len(payload), payload)
        )
        response = _Response()
        parser = response.parser
        try:
            while not response.complete:
                data = await reader.read(65536)
                if not data:
                    raise ConnectionError("server closed the connection mid-response")
                parser.feed_data(data)
                if parser.get_status_code() >= 400:
                    continue  # read the error to its end, then raise it
                chunks, response.body = response.body, []
                for chunk in chunks:
                    yield chunk
            if parser.get_status_code() >= 400:
                raise LeanHTTPError(parser.get_status_code(), b"".join(response.body))
            if not response.keep_alive:
                await self.close()
        except BaseException:
            await self.close()  # a request cut short leaves the connection mid-response
            raise

    async def fetch(self, method: str, path: str, body: Any = None) -> bytes:
        """Send one request; return its whole body."""
        return b"".join([chunk async for chunk in self.request(method, path, body)])

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class _Threads:
    def __init__(self, conn: _Connection) -> None:
        self._conn = conn

    async def create(self) -> dict[str, Any]:
        return orjson.loads(await self._conn.fetch("POST", "/threads", {}))

    async def delete(self, thread_id: str) -> None:
        await self._conn.fetch("DELETE", f"/threads/{thread_id}")


class _Runs:
    def __init__(self, conn: _Connection) -> None:
        self._conn = conn

    @staticmethod
    def _path(thread_id: str | None, tail: str) -> str:
        return f"/threads/{thread_id}/runs/{tail}" if thread_id else f"/runs/{tail}"

    async def wait(
        self, thread_id: str | None, assistant_id: str, *, input: Any, raise_error: bool = True
    ) -> Any:
        body = {"assistant_id": assistant_id, "input": input}
        result = orjson.loads(await self._conn.fetch("POST", self._path(thread_id, "wait"), body))
        error = result.get("__error__") if isinstance(result, dict) else None
        if raise_error and isinstance(error, dict):
            raise RuntimeError(f"{error.get('error')}: {error.get('message')}")
        return result

    async def stream(
        self, thread_id: str | None, assistant_id: str, *, input: Any, stream_mode: str
    ) -> AsyncIterator[Part]:
        body = {
            "input": input,
            "stream_mode": stream_mode,
            "stream_subgraphs": False,
            "stream_resumable": False,
            "assistant_id": assistant_id,
        }
        buf = b""
        async for chunk in self._conn.request("POST", self._path(thread_id, "stream"), body):
            buf += chunk
            *blocks, buf = buf.replace(b"\r\n", b"\n").split(b"\n\n")
            for block in blocks:
                if part := _sse_part(block):
                    yield part


def _sse_part(block: bytes) -> Part | None:
    event, data = "message", []
    for line in block.split(b"\n"):
        if line.startswith(b"event:"):
            event = line[6:].strip().decode()
        elif line.startswith(b"data:"):
            data.append(line[5:].lstrip())
    return Part(event, b"\n".join(data)) if data else None


class LeanClient:
    def __init__(self, url: str, api_key: str | None = None) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"the lean client speaks plain http only, not {url!r}")
        port = parts.port or 80
        headers = b"host: %s:%d\r\ncontent-type: application/json\r\n" % (
            parts.hostname.encode(),
            port,
        )
        if api_key:
            headers += b"x-api-key: %s\r\n" % api_key.encode()
        self._conn = _Connection(parts.hostname, port, headers)
        self.threads = _Threads(self._conn)
        self.runs = _Runs(self._conn)

    async def aclose(self) -> None:
        await self._conn.close()
