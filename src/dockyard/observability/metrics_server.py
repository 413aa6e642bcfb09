"""``/metrics`` on a port of its own (``observability.metrics.port``): the API port then
does not serve it, and ``dockyard worker`` (which has no HTTP server) serves it at all.

A few lines of HTTP/1.1 on asyncio, in the process's loop (the scraped gauges query
storage there): one GET per connection, which is how Prometheus scrapes. Bound with
``SO_REUSEPORT``, so that the processes of ``serve --workers N`` can all listen on it; in
multiprocess mode each of them answers for all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from dockyard.observability.http_metrics import METRICS_PATH, Counts, metrics_response
from dockyard.observability.metrics import Metrics

log = logging.getLogger("dockyard.metrics")
_MAX_HEAD = 16 * 1024


class MetricsServer:
    """A ``Component`` (``runtime/components.py``): listens from start to stop."""

    def __init__(self, metrics: Metrics, counts: Counts, host: str, port: int) -> None:
        self.metrics = metrics
        self.counts = counts
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, self.host, self.port, reuse_port=True, limit=_MAX_HEAD
        )

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            with contextlib.suppress(Exception):
                await server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(10):
                head = await reader.readuntil(b"\r\n\r\n")
                request_line = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
                method, target = [*request_line, "", ""][:2]
                path = target.split("?", 1)[0]
                if method == "GET" and path == METRICS_PATH:
                    body, content_type = await metrics_response(self.metrics, self.counts)
                    status = "200 OK"
                else:
                    body, content_type = b"not found: GET /metrics\n", "text/plain"
                    status = "404 Not Found"
                writer.write(
                    f"HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\n"
                    f"content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode()
                    + body
                )
                await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except ConnectionError:
            pass
        except Exception:
            log.exception("metrics request failed")
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
