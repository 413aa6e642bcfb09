"""``dockyard prompts push|list|show|diff|label|rollback|export|import``: the prompt
registry in the configured database (as ``dockyard keys``: no server needed; running
servers see a change within ``prompts.refresh_seconds``)."""

from __future__ import annotations

import asyncio
import json
import os
import pwd
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from dockyard.cli.options import ConfigOpt, JsonOpt, settings_or_exit
from dockyard.errors import DockyardError
from dockyard.prompt_template import parse_ref
from dockyard.prompts.registry import PromptRegistry

app = typer.Typer(
    help="Prompt registry: push, list, show, diff, label, rollback, export, import.",
    no_args_is_help=True,
)
console = Console()
err = Console(stderr=True)
T = TypeVar("T")


def author() -> str:
    """Who pushes from this machine: the OS user (from the password database, not the
    environment), else "cli"."""
    try:
        return pwd.getpwuid(os.getuid()).pw_name or "cli"
    except KeyError:
        return "cli"


def _run(config: Path | None, work: Callable[[PromptRegistry], Awaitable[T]]) -> T:
    """``work`` on the configured database's registry; a registry error exits 1."""
    from dockyard.storage.database import open_storage

    settings = settings_or_exit(config)

    async def run() -> T:
        async with open_storage(settings) as storage:
            return await work(PromptRegistry(storage.prompts))

    try:
        return asyncio.run(run())
    except DockyardError as e:
        err.print(f"[red]{e.code}[/]: {e.message}", highlight=False)
        raise typer.Exit(1) from None


def _echo_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


@app.command()
def push(
    path: Annotated[Path, typer.Argument(help="a prompt file (.yaml) or a folder of them")],
    message: Annotated[str | None, typer.Option("-m", "--message", help="commit message")] = None,
    label: Annotated[
        list[str] | None, typer.Option("--label", "-l", help="also put this label on it")
    ] = None,
    json_output: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Push prompt files: a new version where the content changed, labels applied."""
    from dockyard.prompts.files import push_path

    extra = tuple(label or ())

    async def work(registry: PromptRegistry) -> list[Any]:
        # An explicit --label goes on the pushed version even when it is unchanged.
        pushed = await push_path(registry, path, author=author(), message=message)
        for p in pushed:
            for name in extra:
                await registry.set_label(p.version.name, name, p.version.version, author=author())
        return pushed

    pushed = _run(config, work)
    rows = [
        {
            "name": p.version.name,
            "version": p.version.version,
            "created": p.created,
            "labels": sorted({*p.labelled, *extra}),
        }
        for p in pushed
    ]
    if json_output:
        _echo_json(rows)
        return
    for r in rows:
        what = "new version" if r["created"] else "unchanged"
        labels = f" → {', '.join(r['labels'])}" if r["labels"] else ""
        console.print(f"{r['name']}@{r['version']} ({what}){labels}", highlight=False)


@app.command("list")
def list_prompts(json_output: JsonOpt = False, config: ConfigOpt = None) -> None:
    """Every prompt with its latest version and labels."""
    rows = _run(config, lambda r: r.overview())
    if json_output:
        _echo_json(rows)
        return
    if not rows:
        err.print("no prompts")
        return
    table = Table()
    for column in ("name", "type", "latest", "labels", "updated"):
        table.add_column(column)
    for r in rows:
        labels = ", ".join(f"{k}={v}" for k, v in r["labels"].items())
        table.add_row(r["name"], r["kind"], str(r["latest"]), labels, r["updated_at"][:19])
    console.print(table)


@app.command()
def show(
    ref: Annotated[str, typer.Argument(help="NAME, NAME@VERSION or NAME:LABEL")],
    json_output: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """One version: its text, variables, sample, author and message."""
    try:
        name, version, label = parse_ref(ref)
    except DockyardError as e:
        raise typer.BadParameter(e.message) from None

    async def work(registry: PromptRegistry) -> tuple[Any, dict[str, int]]:
        found = await registry.get(name, label=label, version=version)
        return found, await registry.store.labels(name)

    found, labels = _run(config, work)
    on_it = sorted(k for k, v in labels.items() if v == found.version)
    if json_output:
        _echo_json({**found.as_dict(), "labels": on_it})
        return
    head = Text(f"{found.name}@{found.version}", style="bold")
    head.append(f" ({found.kind})" + (f" [{', '.join(on_it)}]" if on_it else ""))
    console.print(head, highlight=False)
    console.print(
        f"by {found.author} at {found.created_at:%Y-%m-%d %H:%M:%S} UTC: {found.message or '-'}",
        highlight=False,
        markup=False,
    )
    console.print(f"variables: {', '.join(found.variables) or 'none'}", highlight=False)
    console.print(Text(found.source()))


@app.command()
def diff(
    name: str,
    a: Annotated[int, typer.Argument(help="the older version")],
    b: Annotated[int, typer.Argument(help="the newer version")],
    config: ConfigOpt = None,
) -> None:
    """Version B against version A, as a unified diff (coloured on a terminal)."""
    text = _run(config, lambda r: r.diff(name, a, b))
    if not text:
        err.print(f"{name}@{a} and {name}@{b} have the same text")
        return
    for line in text.splitlines():
        style = (
            "bold"
            if line.startswith(("+++", "---"))
            else "green"
            if line.startswith("+")
            else "red"
            if line.startswith("-")
            else "cyan"
            if line.startswith("@@")
            else None
        )
        console.print(Text(line, style=style or ""), highlight=False)


@app.command()
def label(
    name: str,
    version: int,
    label: Annotated[str, typer.Argument(help="e.g. production, staging")],
    config: ConfigOpt = None,
) -> None:
    """Point LABEL at VERSION (the version must render with its sample variables)."""
    move = _run(config, lambda r: r.set_label(name, label, version, author=author()))
    before = f"{move.from_version}" if move.from_version is not None else "none"
    console.print(f"{name}:{label} {before} → {move.to_version}", highlight=False)


@app.command()
def rollback(
    name: str,
    label: Annotated[str, typer.Option("--label", "-l")] = "production",
    config: ConfigOpt = None,
) -> None:
    """Move the label back to the version it pointed at before its last move."""
    move = _run(config, lambda r: r.rollback(name, label, author=author()))
    console.print(
        f"{name}:{label} rolled back {move.from_version} → {move.to_version}", highlight=False
    )


@app.command("export")
def export_prompts(
    name: Annotated[str | None, typer.Argument(help="one prompt (default: all)")] = None,
    out: Annotated[Path, typer.Option("-o", "--out", help="folder to write into")] = Path(
        "prompts"
    ),
    config: ConfigOpt = None,
) -> None:
    """Write each prompt's latest version, with the labels on it, as NAME.yaml."""
    from dockyard.prompts.files import export

    files = _run(config, lambda r: export(r, name))
    out.mkdir(parents=True, exist_ok=True)
    for file_name, text in files.items():
        (out / file_name).write_text(text, encoding="utf-8")
        console.print(f"wrote {out / file_name}", highlight=False)


@app.command("import")
def import_prompts(
    path: Annotated[Path, typer.Argument(help="a folder of prompt files (export writes one)")],
    config: ConfigOpt = None,
) -> None:
    """Push a folder of prompt files, as `push` does (a new version only where changed)."""
    from dockyard.prompts.files import push_path

    pushed = _run(
        config, lambda r: push_path(r, path, author=author(), message=f"imported from {path}")
    )
    for p in pushed:
        what = "new version" if p.created else "unchanged"
        console.print(f"{p.version.name}@{p.version.version} ({what})", highlight=False)
