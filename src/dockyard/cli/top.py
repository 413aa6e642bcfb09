"""``dockyard top``: a live view of a running server, read from its ``/metrics``.

For the operator without Grafana: every ``interval`` seconds a scrape, and the rates since
the previous one (``top_frame.py``), shown with Rich.
"""

from __future__ import annotations

import time

import httpx
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.table import Column, Table
from rich.text import Text

from dockyard.cli.top_frame import Frame, Scrape, frame


class TopError(Exception):
    """A scrape that failed, with what to tell the operator."""


def _num(value: float | None, unit: str = "", digits: int = 1) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}{unit}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _usd(value: float) -> str:
    # A few cheap calls cost fractions of a cent: still not nothing.
    return f"${value:,.2f}" if value >= 1 or value == 0 else f"${value:.6f}"


def _right(*headers: str) -> list[Column]:
    return [Column(h, justify="right") for h in headers]


def _breaker(state: str | None) -> Text:
    style = {"closed": "green", "half-open": "yellow", "open": "bold red"}.get(state or "", "")
    return Text(state or "-", style=style)


def render(f: Frame, url: str, note: str | None = None) -> RenderableType:
    """One frame as Rich renderables."""
    head = Text.assemble(
        ("dockyard top", "bold"),
        f"  {url}  ",
        (f"rates over {f.seconds:.1f}s, {time.strftime('%H:%M:%S')}", "dim"),
    )
    errors = Text(
        f"{_num(f.errors_per_s, '/s', 2)} ({_pct(f.error_ratio)})",
        style="red" if f.errors_per_s else "",
    )
    waiting = Text(
        _num(f.waiting_approvals, digits=0), style="yellow" if f.waiting_approvals else ""
    )
    pairs: list[tuple[str, str | Text]] = [
        ("requests/s", _num(f.requests_per_s)),
        ("runs/s", _num(f.runs_per_s, digits=2)),
        ("p95 run", _num(f.run_p95_s, " s", 2)),
        ("errors", errors),
        ("tokens/s", _num(f.tokens_per_s, digits=0)),
        ("cache hits", _pct(f.cache_hit_ratio)),
        ("cost since start", _usd(f.cost_usd)),
        ("cost/hour", _usd(f.cost_usd_per_hour)),
        ("waiting approval", waiting),
        ("queued", _num(f.queue_depth, digits=0)),
        ("active runs", _num(f.active_runs, digits=0)),
        ("streams open", _num(f.streams_open, digits=0)),
    ]
    summary = Table.grid(padding=(0, 2))
    for _ in range(3):
        summary.add_column(style="dim")
        summary.add_column(justify="right", style="bold")
    for i in range(0, len(pairs), 3):
        summary.add_row(*(cell for pair in pairs[i : i + 3] for cell in pair))
    parts: list[RenderableType] = [head, summary]
    if f.assistants:
        table = Table("assistant", *_right("runs/s", "errors/s", "p95 run", "runs"), box=None)
        for a in f.assistants:
            table.add_row(
                a.name,
                _num(a.runs_per_s, digits=2),
                _num(a.errors_per_s, digits=2),
                _num(a.p95_s, " s", 2),
                _num(a.runs, digits=0),
            )
        parts += [Text(""), table]
    if f.models:
        table = Table(
            "model", *_right("calls/s", "errors/s", "p95", "tokens/s"), "breaker", box=None
        )
        for m in f.models:
            table.add_row(
                m.name,
                _num(m.calls_per_s, digits=2),
                _num(m.errors_per_s, digits=2),
                _num(m.p95_s, " s", 2),
                _num(m.tokens_per_s, digits=0),
                _breaker(m.breaker),
            )
        parts += [Text(""), table]
    if note:
        parts += [Text(""), Text(note, style="bold red")]
    return Group(*parts)


def scrape(client: httpx.Client, url: str) -> Scrape:
    """``url`` read and parsed; a TopError that says what to do when that fails."""
    try:
        response = client.get(url)
    except httpx.HTTPError as e:
        raise TopError(
            f"cannot reach {url}: {e or type(e).__name__}. Is dockyard serving there? "
            "(--url; /metrics may be on observability.metrics.port)"
        ) from None
    if response.status_code == 401:
        raise TopError(f"{url} needs an API key: pass --key or set DOCKYARD_API_KEY")
    if response.status_code == 403:
        raise TopError(f"{url} refused the API key ({response.status_code})")
    if response.status_code == 404:
        raise TopError(
            f"no metrics at {url} (404): observability.metrics.enabled may be false, or "
            "/metrics served on observability.metrics.port"
        )
    if response.status_code != 200:
        raise TopError(f"{url} answered {response.status_code}")
    try:
        page = Scrape.parse(response.text, time.monotonic())
    except ValueError:
        raise TopError(f"{url} did not answer in the Prometheus text format") from None
    if "dockyard_build_info" not in page.series:
        raise TopError(f"{url} is not a dockyard's /metrics (no dockyard_build_info)")
    return page


def watch(
    url: str, key: str | None, interval: float, once: bool, console: Console, err: Console
) -> int:
    """Scrape every ``interval`` seconds and show each frame on ``console`` (only one with
    ``once``) until interrupted; the exit status."""
    headers = {"x-api-key": key} if key else {}
    with httpx.Client(headers=headers, timeout=max(interval, 5.0)) as client:
        try:
            before = scrape(client, url)
            time.sleep(interval)
            after = scrape(client, url)
        except TopError as e:
            err.print(f"[bold red]dockyard top:[/] {escape(str(e))}", soft_wrap=True)
            return 1
        except KeyboardInterrupt:
            return 0
        last = frame(before, after)
        if once:
            console.print(render(last, url))
            return 0
        with Live(render(last, url), console=console, auto_refresh=False) as live:
            try:
                while True:
                    time.sleep(interval)
                    try:
                        before, after = after, scrape(client, url)
                    except TopError as e:
                        # The last numbers stay on screen; the server may come back.
                        live.update(render(last, url, str(e)), refresh=True)
                        continue
                    last = frame(before, after)
                    live.update(render(last, url), refresh=True)
            except KeyboardInterrupt:
                return 0
