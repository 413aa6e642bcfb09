"""``dockyard rollout status|promote|abort``: the rollouts in the configured database (as
``dockyard prompts``: no server needed; running servers see a change within a second).

The config file's rollouts are put in the database first, as a starting server does, so
that a rollout just written in dockyard.yaml can be seen and acted on."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from dockyard.cli.options import ConfigOpt, JsonOpt, settings_or_exit
from dockyard.cli.prompts import author
from dockyard.errors import DockyardError
from dockyard.rollouts import RolloutManager, sync_config

app = typer.Typer(help="Gradual rollouts: status, promote, abort.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)
T = TypeVar("T")


def _run(config: Path | None, work: Callable[[RolloutManager], Awaitable[T]]) -> T:
    """``work`` on the configured database's rollouts; a rollout error exits 1."""
    from dockyard.prompts.registry import PromptRegistry
    from dockyard.runtime.alerting import alert_store
    from dockyard.storage.database import open_storage

    settings = settings_or_exit(config)

    async def run() -> T:
        async with open_storage(settings) as storage:
            await sync_config(settings, storage.rollouts)
            manager = RolloutManager(
                settings,
                storage.rollouts,
                PromptRegistry(storage.prompts),
                alert_store(storage.engine),
            )
            return await work(manager)

    try:
        return asyncio.run(run())
    except DockyardError as e:
        err.print(f"[red]{e.code}[/]: {e.message}", highlight=False)
        raise typer.Exit(1) from None


def _num(value: Any, pct: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:.1%}" if pct else f"{value:.3f}"


def _candidate(definition: dict[str, Any]) -> str:
    c = definition.get("candidate") or {}
    return f"prompt {c['prompt']}" if c.get("prompt") else f"model {c.get('model')}"


@app.command()
def status(
    name: Annotated[str | None, typer.Argument(help="one rollout (default: all)")] = None,
    json_output: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Each rollout: state, share, candidate, and each variant's quality and error rate
    over its rollback window."""
    rows = _run(config, lambda m: m.status(name))
    if json_output:
        typer.echo(json.dumps(rows, indent=2, default=str))
        return
    if not rows:
        console.print("no rollouts (define them under `rollouts:` in dockyard.yaml)")
        return
    table = Table(title="rollouts")
    for column in (
        "name",
        "assistant",
        "candidate",
        "share",
        "state",
        "variant",
        "quality",
        "scored",
        "error rate",
        "ended",
    ):
        table.add_column(column)
    for r in rows:
        d = r["definition"]
        for i, (variant, seen) in enumerate(r["variants"].items()):
            head = (
                [r["name"], r["assistant"], _candidate(d), f"{d['share']:.0%}", r["state"]]
                if i == 0
                else ["", "", "", "", ""]
            )
            table.add_row(
                *head,
                variant,
                _num(seen["quality"]),
                str(seen["scored_runs"]),
                _num(seen["error_rate"], pct=True),
                str(seen["ended_runs"]),
            )
    console.print(table)
    for r in rows:
        if r["state"] != "active" and r["reason"]:
            console.print(
                f"{r['name']}: {r['state']} at {r['updated_at']} by {r['changed_by']}: "
                f"{r['reason']}",
                highlight=False,
            )


@app.command()
def promote(name: str, config: ConfigOpt = None) -> None:
    """Make the candidate the stable variant (a prompt candidate's version takes the
    stable label; a model candidate gets every run)."""
    done = _run(config, lambda m: m.promote(name, by=author()))
    d = done.details
    if "label" in d:
        what = f"{d['prompt']}:{d['label']} {d['from_version']} → {d['to_version']}"
    else:
        what = f"every run of {done.assistant} on model {d.get('model')}"
    console.print(f"rollout {name} promoted: {what}", highlight=False)


@app.command()
def abort(
    name: str,
    reason: Annotated[str | None, typer.Option("--reason", "-r", help="why (kept)")] = None,
    config: ConfigOpt = None,
) -> None:
    """Stop the rollout: every new run on the stable variant."""
    done = _run(config, lambda m: m.abort(name, by=author(), reason=reason))
    console.print(
        f"rollout {name} aborted: every new run of {done.assistant} is stable", highlight=False
    )
