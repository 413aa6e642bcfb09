"""A local stand-in for Tavily's search API and arXiv's Atom API, on 127.0.0.1."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

ATOM = """<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>arXiv Query</title>
  <entry>
    <id>http://arxiv.org/abs/2401.00001v1</id>
    <title>Bounding   Agent
      Loops</title>
    <summary>  We study step limits for LLM agents.
      Limits stop loops early.</summary>
  </entry>
  <entry>
    <id>http://arxiv.org/abs/2401.00002v2</id>
    <title>Budgeted Tool Use</title>
    <summary>Per-run budgets for tool calls.</summary>
  </entry>
</feed>
"""

WEB_RESULTS = [
    {
        "title": "Runaway agents and how to stop them",
        "url": "https://example.com/runaway-agents",
        "content": "Cap the number of steps an agent may take per run.",
        "score": 0.9,
    }
]


class SearchMock:
    """``tavily_url`` answers ``POST /search`` for ``key``; ``arxiv_url`` answers GETs."""

    def __init__(self, key: str = "tvly-test") -> None:
        self.key = key
        self.requests: list[dict[str, Any]] = []
        mock = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: bytes, kind: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                size = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(size) or b"{}")
                auth = self.headers.get("Authorization", "")
                mock.requests.append({"path": self.path, "body": body, "auth": auth})
                if auth != f"Bearer {mock.key}":
                    self._send(401, b'{"detail": "bad key"}', "application/json")
                    return
                answer = {"query": body.get("query"), "results": WEB_RESULTS}
                self._send(200, json.dumps(answer).encode(), "application/json")

            def do_GET(self) -> None:
                query = parse_qs(urlparse(self.path).query)
                mock.requests.append({"path": self.path, "query": query})
                self._send(200, ATOM.encode(), "application/atom+xml")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def tavily_url(self) -> str:
        return self.url

    @property
    def arxiv_url(self) -> str:
        return f"{self.url}/api/query"

    def __enter__(self) -> SearchMock:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
