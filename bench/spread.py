"""Spreading benchmark clients over several servers, and the CLI lists that describe them.

Pure helpers with no bench-local imports, so that tests/bench can load this file by path.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence


def parse_urls(text: str) -> tuple[str, ...]:
    """``--url`` value: one base URL or a comma-separated list (trailing slashes dropped)."""
    urls = tuple(u.strip().rstrip("/") for u in text.split(","))
    if not urls or any(not u for u in urls):
        raise ValueError(f"expected URL[,URL...], got {text!r}")
    for u in urls:
        if not u.startswith(("http://", "https://")):
            raise ValueError(f"not an http(s) URL: {u!r}")
    return urls


def parse_pids(text: str) -> tuple[int, ...]:
    """``--server-pid`` value: one PID or a comma-separated list of positive PIDs."""
    try:
        pids = tuple(int(p) for p in text.split(","))
    except ValueError:
        raise ValueError(f"expected PID[,PID...], got {text!r}") from None
    if any(p <= 0 for p in pids):
        raise ValueError(f"PIDs must be positive, got {text!r}")
    return pids


def client_url(urls: Sequence[str], index: int) -> str:
    """The server of client ``index`` (0-based over all client processes): round-robin."""
    if not urls:
        raise ValueError("no URL to choose from")
    return urls[index % len(urls)]


def client_offsets(sizes: Sequence[int]) -> list[int]:
    """Global index of the first client of each client process, given how many each runs.

    With 20 clients in 3 processes (7, 7, 6) the offsets are 0, 7, 14, so that the
    round-robin over servers continues across processes instead of restarting in each one
    (which would overload the first server whenever a process has fewer clients than URLs).
    """
    return [0, *itertools.accumulate(sizes)][: len(sizes)]
