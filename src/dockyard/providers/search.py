"""Web and arXiv search for agents: adapters that switch on when a key and a network exist.

* ``TavilySearch``: web search through Tavily's HTTP API; on when ``TAVILY_API_KEY`` is
  set (or a key is given), read on each call so a project's ``env:`` file counts.
* ``ArxivSearch``: arXiv's public Atom API; needs no key, only the network.

Both answer ``search(query, k)`` with ``SearchHit``s, or raise ``SearchUnavailable``
whose message starts with what is missing ("web search unavailable: no TAVILY_API_KEY
is set ...", "arxiv search unavailable: network unreachable ..."), which a tool hands
back to the model as its result, so an agent says it worked from local documents only
instead of inventing results. httpx (a dockyard dependency) is the only client; the
key travels as a ``SecretStr`` and never reaches a log line or a message.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
from pydantic import SecretStr

from dockyard.providers._env import env_secret

log = logging.getLogger("dockyard.search")

TAVILY_URL = "https://api.tavily.com"
ARXIV_URL = "https://export.arxiv.org/api/query"
_ATOM = "{http://www.w3.org/2005/Atom}"


@dataclass(frozen=True)
class SearchHit:
    """One result: where it is (``url``), what it is called and a passage of it."""

    title: str
    url: str
    snippet: str
    source: str  # "web" or "arxiv"


class SearchUnavailable(Exception):
    """The adapter cannot search now; ``str()`` says why and what would switch it on."""


def _network_error(what: str, e: httpx.HTTPError) -> SearchUnavailable:
    if isinstance(e, httpx.TimeoutException):
        why = f"network timeout ({type(e).__name__})"
    elif isinstance(e, httpx.TransportError):
        why = f"network unreachable ({type(e).__name__}: {e})"
    else:
        why = f"{type(e).__name__}: {e}"
    return SearchUnavailable(f"{what} unavailable: {why}")


class SearchAdapter(Protocol):
    """What a research tool needs of a search backend."""

    name: str

    def status(self) -> str | None: ...

    async def search(self, query: str, k: int = 5) -> list[SearchHit]: ...


class TavilySearch:
    """Web search through Tavily (``POST {base_url}/search``)."""

    name = "web search"

    def __init__(
        self,
        *,
        api_key: SecretStr | None = None,
        key_env_var: str = "TAVILY_API_KEY",
        base_url: str = TAVILY_URL,
        timeout: float = 15.0,
    ) -> None:
        self._api_key = api_key
        self.key_env_var = key_env_var
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def _key(self) -> SecretStr | None:
        return self._api_key if self._api_key is not None else env_secret(self.key_env_var)

    def status(self) -> str | None:
        """None when a search can be tried; else why not (checks the key, not the network)."""
        if self._key() is None:
            return (
                f"web search unavailable: no {self.key_env_var} is set (set it in the "
                "environment or the project's env file to search the web)"
            )
        return None

    async def search(self, query: str, k: int = 5) -> list[SearchHit]:
        missing = self.status()
        if missing is not None:
            raise SearchUnavailable(missing)
        key = self._key()
        assert key is not None
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                r = await client.post(
                    f"{self.base_url}/search",
                    json={"query": query, "max_results": k, "search_depth": "basic"},
                    headers={"Authorization": f"Bearer {key.get_secret_value()}"},
                )
        except httpx.HTTPError as e:
            raise _network_error("web search", e) from None
        if r.status_code in (401, 403):
            raise SearchUnavailable(
                f"web search unavailable: Tavily refused the key in {self.key_env_var} "
                f"(HTTP {r.status_code})"
            )
        if r.status_code >= 400:
            raise SearchUnavailable(f"web search unavailable: Tavily answered HTTP {r.status_code}")
        results: list[dict[str, Any]] = r.json().get("results") or []
        return [
            SearchHit(
                title=str(item.get("title") or item.get("url") or ""),
                url=str(item.get("url") or ""),
                snippet=str(item.get("content") or "")[:800],
                source="web",
            )
            for item in results[:k]
        ]


class ArxivSearch:
    """arXiv search (``GET {base_url}?search_query=all:...``); on while the network is."""

    name = "arxiv search"

    def __init__(self, *, base_url: str = ARXIV_URL, timeout: float = 15.0) -> None:
        self.base_url = base_url
        self.timeout = timeout

    def status(self) -> str | None:
        return None  # no key needed; the network is found out by trying

    async def search(self, query: str, k: int = 5) -> list[SearchHit]:
        params = {"search_query": f"all:{query}", "start": "0", "max_results": str(k)}
        try:
            async with httpx.AsyncClient(timeout=self.timeout, follow_redirects=True) as client:
                r = await client.get(self.base_url, params=params)
        except httpx.HTTPError as e:
            raise _network_error("arxiv search", e) from None
        if r.status_code >= 400:
            raise SearchUnavailable(
                f"arxiv search unavailable: arXiv answered HTTP {r.status_code}"
            )
        try:
            feed = ET.fromstring(r.content)
        except ET.ParseError as e:
            raise SearchUnavailable(f"arxiv search unavailable: unreadable answer ({e})") from None
        hits = []
        for entry in feed.iter(f"{_ATOM}entry"):
            title = " ".join((entry.findtext(f"{_ATOM}title") or "").split())
            summary = " ".join((entry.findtext(f"{_ATOM}summary") or "").split())
            url = (entry.findtext(f"{_ATOM}id") or "").strip()
            hits.append(SearchHit(title=title, url=url, snippet=summary[:800], source="arxiv"))
        return hits[:k]


def describe_unavailable(error: SearchUnavailable) -> str:
    """The tool result for a search that could not run (also logged, at warning)."""
    log.warning("%s", error)
    return f"{error}. Only the local documents were searched; say so in the answer."
