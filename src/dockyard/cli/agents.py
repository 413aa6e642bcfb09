"""``dockyard agents``: run the reference agents over a batch of inputs.

    dockyard agents summarize TICKETS.jsonl [--url URL] [--assistant tickets]
                            [--concurrency N] [--out FILE] [--format json|markdown]

Each ticket (one JSON object a line: the ticket itself, or ``{"ticket": {...}}``) is one
run of the summarizer on its own thread, through the Agent Server API (langgraph-sdk), so
it takes the real run path with the project's routing, quality gate, cache and PII
policies. Without ``--url`` the project's own server is started for the batch, as ``dockyard
eval`` does (``evals.local``). This module never imports ``dockyard.agents``: the graph is
the server's.

At most ``--concurrency`` runs at a time, with a progress bar. A ticket that fails (a bad
line, a failed run, an answer that is no summary) is reported with its reason and the
others carry on; the command exits 1 when any failed.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from dockyard.cli.options import ConfigOpt, settings_or_exit

console = Console(stderr=True)

app = typer.Typer(help="Run the reference agents over a batch.", no_args_is_help=True)


def read_tickets(path: Path) -> list[tuple[str, dict[str, Any] | str]]:
    """``(id, ticket)`` per non-blank line; a line that is no ticket gives its error text."""
    out: list[tuple[str, dict[str, Any] | str]] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("//"):
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as e:
            out.append((f"line {number}", f"{path.name}:{number}: not JSON ({e.msg})"))
            continue
        ticket = data.get("ticket", data) if isinstance(data, dict) else None
        if not isinstance(ticket, dict):
            out.append((f"line {number}", f"{path.name}:{number}: expected a ticket object"))
            continue
        out.append((str(ticket.get("id") or f"line {number}"), ticket))
    return out


async def summarize_one(client: Any, assistant: str, ticket: dict[str, Any]) -> dict[str, Any]:
    """One ticket through the server: ``{summary, markdown, quality, model}`` or ``{error}``."""
    thread = await client.threads.create(metadata={"ticket_id": ticket.get("id")})
    body = {"ticket": ticket, "priority": ticket.get("priority") or "normal"}
    run = await client.runs.create(thread["thread_id"], assistant, input=body)
    values = await client.runs.join(thread["thread_id"], run["run_id"])
    done = await client.runs.get(thread["thread_id"], run["run_id"])
    if done["status"] != "success":
        error = done.get("error")
        detail = error.get("message") if isinstance(error, dict) else error
        return {"error": f"run {done['status']}" + (f": {detail}" if detail else "")}
    if not isinstance(values, dict) or values.get("summary") is None:
        reason = values.get("error") if isinstance(values, dict) else None
        return {"error": reason or "the run gave no summary"}
    usage = done.get("usage") or {}
    return {
        "summary": values["summary"],
        "markdown": values.get("markdown"),
        "quality": done.get("quality"),
        "models": sorted(usage.get("models") or {}),
        "run_id": run["run_id"],
    }


async def summarize_all(
    url: str,
    assistant: str,
    tickets: list[tuple[str, dict[str, Any] | str]],
    concurrency: int,
    progress: Progress,
) -> list[dict[str, Any]]:
    from langgraph_sdk import get_client

    client = get_client(url=url, timeout=300)
    gate = asyncio.Semaphore(concurrency)
    task = progress.add_task("summarizing", total=len(tickets))

    async def one(ticket_id: str, ticket: dict[str, Any] | str) -> dict[str, Any]:
        if isinstance(ticket, str):
            result: dict[str, Any] = {"error": ticket}
        else:
            async with gate:
                try:
                    result = await summarize_one(client, assistant, ticket)
                except Exception as e:  # one ticket's failure is reported, not fatal
                    result = {"error": f"{type(e).__name__}: {e}"}
        progress.advance(task)
        return {"id": ticket_id, **result}

    try:
        return list(await asyncio.gather(*(one(i, t) for i, t in tickets)))
    finally:
        await client.aclose()


def _write(results: list[dict[str, Any]], out: Path | None, fmt: str) -> None:
    if fmt == "json":
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in results)
    else:
        parts = [
            r["markdown"] if r.get("markdown") else f"# {r['id']}\n\n**error:** {r['error']}\n"
            for r in results
        ]
        text = "\n---\n\n".join(parts)
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")


@app.command("summarize")
def summarize(
    tickets: Annotated[Path, typer.Argument(help="JSONL: one ticket (or {ticket: ...}) a line")],
    url: Annotated[
        str | None, typer.Option(help="a running dockyard server (default: start the project's)")
    ] = None,
    assistant: Annotated[str, typer.Option("--assistant", "-a")] = "tickets",
    concurrency: Annotated[int, typer.Option(min=1, max=64, help="runs at a time")] = 4,
    out: Annotated[Path | None, typer.Option(help="write here (default: stdout)")] = None,
    format: Annotated[
        Literal["json", "markdown"], typer.Option("--format", help="JSON Lines or Markdown")
    ] = "json",
    config: ConfigOpt = None,
) -> None:
    """Summarize every ticket of a JSONL file with the ticket summarizer."""
    if not tickets.is_file():
        console.print(f"[bold red]error:[/] no file {tickets}", highlight=False)
        raise typer.Exit(2)
    items = read_tickets(tickets)
    settings = settings_or_exit(config) if url is None else None

    async def main() -> list[dict[str, Any]]:
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=console) as progress:
            if url is not None:
                return await summarize_all(url, assistant, items, concurrency, progress)
            from dockyard.evals.local import local_server

            assert settings is not None
            with local_server(settings) as base:
                return await summarize_all(base, assistant, items, concurrency, progress)

    results = asyncio.run(main())
    _write(results, out, format)
    failed = [r for r in results if "error" in r]
    for r in failed:
        console.print(f"[bold red]failed[/] {r['id']}: {r['error']}", highlight=False)
    done = len(results) - len(failed)
    console.print(f"{done} of {len(results)} tickets summarized", highlight=False)
    if failed:
        raise typer.Exit(1)
