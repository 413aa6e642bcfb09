"""``dockyard alerts list | test``: the alert history, and a test message to every notifier."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.table import Table

from dockyard.cli.options import ConfigOpt, settings_or_exit
from dockyard.cli.usage import parse_since
from dockyard.storage.alerts import AlertRecord

app = typer.Typer(help="Alerts: their history, and a test of the notifiers.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)


@app.command("list")
def list_alerts(
    since: Annotated[
        str | None, typer.Option(help="started since: 30m, 12h, 7d ago, or a date (UTC)")
    ] = None,
    state: Annotated[
        Literal["firing", "resolved"] | None, typer.Option(help="firing or resolved")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="at most this many")] = 100,
    json_output: Annotated[bool, typer.Option("--json", help="print JSON rows")] = False,
    config: ConfigOpt = None,
) -> None:
    """Alerts, newest first."""
    from dockyard.runtime.alerting import alert_store
    from dockyard.storage.database import open_storage

    settings = settings_or_exit(config)
    start = parse_since(since)

    async def read() -> list[AlertRecord]:
        async with open_storage(settings) as storage:
            store = alert_store(storage.engine)
            return await store.history(since=start, state=state, limit=limit)

    rows = asyncio.run(read())
    if json_output:
        typer.echo(json.dumps([r.as_dict() for r in rows]))
        return
    if not rows:
        err.print("no alerts" + (f" since {start:%Y-%m-%d %H:%M} UTC" if start else ""))
        return
    table = Table()
    for name in ("started (UTC)", "state", "severity", "rule", "summary", "resolved", "sent"):
        table.add_column(name, no_wrap=name in ("started (UTC)", "resolved"))
    for r in rows:
        table.add_row(
            f"{r.started_at:%Y-%m-%d %H:%M:%S}",
            f"[red]{r.state}[/]" if r.state == "firing" else r.state,
            f"[bold]{r.severity}[/]" if r.severity == "critical" else r.severity,
            r.rule,
            r.summary,
            f"{r.resolved_at:%Y-%m-%d %H:%M:%S}" if r.resolved_at else "",
            str(r.notifications),
        )
    console.print(table)


def sample_record(now: datetime) -> AlertRecord:
    return AlertRecord(
        id=0,
        key="test",
        rule="test",
        kind="test",
        severity="warning",
        state="firing",
        summary="dockyard test alert: this notifier works",
        details={},
        started_at=now,
        resolved_at=None,
        ends_at=None,
        notified_at=None,
        notifications=0,
        deliveries={},
    )


@app.command("test")
def send_test(config: ConfigOpt = None) -> None:
    """Send a test alert to every configured notifier and print what each answered."""
    from dockyard.observability.alerts import Message, deliver
    from dockyard.runtime.alerting import notifiers

    settings = settings_or_exit(config)
    targets = notifiers(settings)
    if not targets:
        err.print("no notifiers configured (observability.alerts.notifiers)")
        raise typer.Exit(2)
    now = datetime.now(UTC)
    answers = asyncio.run(deliver(targets, Message("test", sample_record(now), now), wait_max=2))
    for name, answer in answers.items():
        ok = answer.startswith("ok")
        console.print(f"{'[green]ok[/]' if ok else '[red]failed[/]'}  {name}: ", end="")
        console.print(answer, markup=False, highlight=False)
    if not all(a.startswith("ok") for a in answers.values()):
        raise typer.Exit(1)
