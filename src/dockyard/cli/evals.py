"""``dockyard eval``: run a dataset through an assistant, score, store, report.

    dockyard eval DATASET.jsonl --assistant A [--prompt NAME@VERSION] [--model M]
                  [--compare VARIANT] [--concurrency N] [--min-score X] [--out DIR]
    dockyard eval list | show ID
    dockyard eval dataset from-runs [--assistant A] [--since 7d] [--limit N] -o FILE.jsonl

``dockyard eval DATASET ...`` is ``dockyard eval run DATASET ...``: a first argument that
names no subcommand goes to ``run`` (``_RunByDefault``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from typer.core import TyperGroup

from dockyard.cli.options import ConfigOpt, settings_or_exit
from dockyard.errors import ConfigError, DockyardError
from dockyard.settings import Settings

console = Console(stderr=True)


class _RunByDefault(TyperGroup):
    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=_RunByDefault,
    help="Evaluate an assistant on a dataset (`dockyard eval DATASET.jsonl --assistant A`).",
    no_args_is_help=True,
)
dataset_app = typer.Typer(help="Make eval datasets.", no_args_is_help=True)
app.add_typer(dataset_app, name="dataset")


def _fail(message: str) -> typer.Exit:
    console.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(2)


@contextlib.asynccontextmanager
async def _server(settings: Settings, url: str | None) -> AsyncIterator[str]:
    if url is not None:
        yield url.rstrip("/")
        return
    from dockyard.evals.local import local_server

    with local_server(settings) as local:
        yield local


def _summary_table(report: dict[str, Any]) -> Table:
    table = Table(title=f"eval {report['experiment']['name']}")
    for col in ("variant", "runs with", "mean", "pass rate", "errors", "p50 ms", "cost USD"):
        table.add_column(col, justify="left" if col in ("variant", "runs with") else "right")
    from dockyard.evals.report import fmt, variant_label

    for v in report["variants"]:
        table.add_row(
            v["name"],
            variant_label(v),
            fmt(v["score"]["mean"]),
            fmt(v["pass_rate"], ".0%"),
            str(v["errors"]),
            fmt(v["latency_ms"]["p50"], ".0f"),
            fmt(v["cost_usd"], ".6f"),
        )
    return table


@app.command("run")
def run(
    dataset: Annotated[
        Path, typer.Argument(help="JSONL: one {input, expected, metadata, id} a line")
    ],
    assistant: Annotated[
        str, typer.Option("--assistant", "-a", help="assistant id, name or graph id")
    ],
    prompt: Annotated[
        str | None, typer.Option(help="prompt version the runs use: NAME@VERSION or NAME@LABEL")
    ] = None,
    model: Annotated[str | None, typer.Option(help="model (under models:) the runs use")] = None,
    compare: Annotated[
        str | None,
        typer.Option(
            help="a second variant on the same items: prompt:NAME@VERSION, model:NAME, both "
            "(comma-separated), or a bare value of the kind --prompt / --model gave"
        ),
    ] = None,
    concurrency: Annotated[int, typer.Option(min=1, max=64, help="runs at a time")] = 4,
    scorers: Annotated[
        list[Path] | None, typer.Option("--scorers", help="YAML/JSON file of scorer specs")
    ] = None,
    scorer: Annotated[
        list[str] | None,
        typer.Option(help='a scorer: a type (exact) or a spec ({"type": "regex", ...})'),
    ] = None,
    min_score: Annotated[
        float | None,
        typer.Option(min=0.0, max=1.0, help="exit 1 when a variant's mean score is below"),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="report folder (default eval-reports/ID)")
    ] = None,
    png: Annotated[
        bool | None,
        typer.Option("--png/--no-png", help="PNG charts (default: when matplotlib is there)"),
    ] = None,
    url: Annotated[
        str | None, typer.Option(help="a running dockyard server (default: start the project's)")
    ] = None,
    api_key: Annotated[str | None, typer.Option(help="API key for --url")] = None,
    api_key_file: Annotated[
        Path | None, typer.Option(help="file holding the API key (kept out of `ps`)")
    ] = None,
    name: Annotated[str | None, typer.Option(help="experiment name")] = None,
    timeout: Annotated[float, typer.Option(help="seconds per run")] = 300.0,
    config: ConfigOpt = None,
) -> None:
    """Run every item of DATASET through the assistant, score, store and report."""
    from dockyard.evals import DatasetError, load_dataset
    from dockyard.evals.options import parse_variants, scorer_specs
    from dockyard.quality import build_scorer, parse_specs

    settings = settings_or_exit(config)
    if api_key_file is not None:
        try:
            api_key = api_key_file.read_text().strip()
        except OSError as e:
            raise _fail(f"--api-key-file {api_key_file}: {e.strerror}") from None
    if png:
        # Asked for: say what is missing before any run, not after.
        from dockyard.extras import require_extra

        try:
            require_extra("evals", "PNG charts of an eval report (--png)")
        except ConfigError as e:
            raise _fail(e.message) from None
    try:
        items = load_dataset(dataset)
        specs = scorer_specs(scorers or [], scorer or [])
        variants = parse_variants(prompt, model, compare)
        # The project's folder holds python scorers' modules, as it holds its graphs.
        sys.path.insert(0, str(settings.project_dir.resolve()))
        registry: list[Any] = []

        def models(model_name: str) -> Any:
            if not registry:
                from dockyard.providers.registry import ModelRegistry

                registry.append(ModelRegistry.from_settings(settings))
            return registry[0].get(model_name)

        combined = build_scorer(parse_specs(specs), base=settings.project_dir, models=models)
    except (DatasetError, ValueError) as e:
        raise _fail(getattr(e, "message", str(e))) from None
    if png is None:
        import importlib.util

        png = importlib.util.find_spec("matplotlib") is not None
        if not png:
            console.print('PNG charts skipped: install them with pip install "dockyard[evals]"')

    async def main() -> tuple[Any, list[Any]]:
        from dockyard.evals import ServerTarget, run_experiment
        from dockyard.storage.database import open_storage

        progress = Progress(
            TextColumn("[bold]eval"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("mean {task.fields[mean]}"),
            TimeElapsedColumn(),
            console=console,
        )
        task = progress.add_task("eval", total=len(items) * len(variants), mean="-")
        seen: list[float] = []

        def done(result: Any) -> None:
            seen.append(result["score"] or 0.0)
            progress.update(task, advance=1, mean=f"{sum(seen) / len(seen):.3f}")

        async with open_storage(settings) as storage, _server(settings, url) as base:
            target = ServerTarget(base, assistant, api_key=api_key, timeout=timeout)
            try:
                with progress:
                    return await run_experiment(
                        storage.evals,
                        target,
                        items,
                        dataset=str(dataset),
                        assistant=assistant,
                        variants=variants,
                        scorer=combined,
                        scorer_specs=specs,
                        name=name,
                        concurrency=concurrency,
                        on_result=done,
                    )
            finally:
                await target.aclose()

    try:
        experiment, results = asyncio.run(main())
    except DockyardError as e:
        raise _fail(e.message) from None
    from dockyard.evals import build_report, mean_scores, write_reports
    from dockyard.evals.report import comparison_sentence

    report = build_report(experiment, results)
    folder = out or Path("eval-reports") / experiment["experiment_id"]
    try:
        written = write_reports(report, folder, png=png)
    except ConfigError as e:
        raise _fail(e.message) from None
    Console().print(_summary_table(report))
    if report["comparison"]:
        Console().print(comparison_sentence(report["comparison"]), highlight=False)
    console.print(
        f"experiment {experiment['experiment_id']}; report: " + ", ".join(str(p) for p in written),
        highlight=False,
    )
    if min_score is not None:
        low = {k: v for k, v in mean_scores(report).items() if v < min_score}
        if low:
            console.print(
                "[bold red]below --min-score[/] "
                + ", ".join(f"{k}: {v:.3f} < {min_score}" for k, v in low.items()),
                highlight=False,
            )
            raise typer.Exit(1)


@app.command("list")
def list_(
    assistant: Annotated[str | None, typer.Option("--assistant", "-a")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
    json_output: Annotated[bool, typer.Option("--json", help="print JSON rows")] = False,
    config: ConfigOpt = None,
) -> None:
    """Stored experiments, newest first."""
    from dockyard.storage.database import open_storage

    async def read() -> list[Any]:
        async with open_storage(settings_or_exit(config)) as storage:
            return await storage.evals.list(assistant=assistant, limit=limit)

    rows = asyncio.run(read())
    if json_output:
        typer.echo(json.dumps(rows, default=str))
        return
    table = Table(title="experiments")
    for col in ("id", "name", "assistant", "items", "status", "mean score", "created"):
        table.add_column(col)
    for e in rows:
        means = [
            f"{v['name']} {v['score']['mean']:.3f}"
            for v in (e["summary"] or {}).get("variants", [])
            if v["score"]["mean"] is not None
        ]
        table.add_row(
            e["experiment_id"],
            e["name"],
            e["assistant"],
            str(e["items"]),
            e["status"],
            ", ".join(means) or "-",
            e["created_at"].strftime("%Y-%m-%d %H:%M"),
        )
    Console().print(table)


@app.command("show")
def show(
    experiment_id: Annotated[str, typer.Argument(help="experiment id (see `dockyard eval list`)")],
    out: Annotated[Path | None, typer.Option(help="write the report files here again")] = None,
    png: Annotated[bool, typer.Option("--png/--no-png")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
    config: ConfigOpt = None,
) -> None:
    """One experiment's summary (and, with --out, its report files)."""
    from dockyard.evals import build_report, write_reports
    from dockyard.evals.report import comparison_sentence, report_json
    from dockyard.storage.database import open_storage

    async def read() -> tuple[Any, list[Any]]:
        async with open_storage(settings_or_exit(config)) as storage:
            found = await storage.evals.get(experiment_id)
            return found, await storage.evals.results(experiment_id) if found else []

    experiment, results = asyncio.run(read())
    if experiment is None:
        raise _fail(f"no experiment {experiment_id} (see `dockyard eval list`)")
    report = build_report(experiment, results)
    if json_output:
        typer.echo(report_json(report))
    else:
        Console().print(_summary_table(report))
        if report["comparison"]:
            Console().print(comparison_sentence(report["comparison"]), highlight=False)
    if out is not None:
        try:
            written = write_reports(report, out, png=png)
        except ConfigError as e:
            raise _fail(e.message) from None
        console.print("report: " + ", ".join(str(p) for p in written), highlight=False)


@dataset_app.command("from-runs")
def from_runs(
    output: Annotated[Path, typer.Option("--output", "-o", help="JSONL file to write")],
    assistant: Annotated[
        str | None, typer.Option("--assistant", "-a", help="assistant id, name or graph id")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="runs since: 7d, 24h, 30m, 2w ago, or a date (UTC)")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000)] = 100,
    config: ConfigOpt = None,
) -> None:
    """A dataset from past successful runs: their input, their answer as expected."""
    from dockyard.cli.usage import parse_since
    from dockyard.evals import write_dataset
    from dockyard.evals.from_runs import items_from_runs
    from dockyard.storage.database import open_storage

    after = parse_since(since)

    async def read() -> list[Any]:
        async with open_storage(settings_or_exit(config)) as storage:
            ids = None
            if assistant is not None:
                found = await storage.assistants.get(assistant)
                matches = [found] if found else []
                matches += await storage.assistants.search(graph_id=assistant, limit=1000)
                matches += await storage.assistants.search(name=assistant, limit=1000)
                ids = sorted({a["assistant_id"] for a in matches})
                if not ids:
                    raise _fail(f"no assistant {assistant!r} (an id, a name or a graph id)")
            return await items_from_runs(storage.evals, assistant_ids=ids, since=after, limit=limit)

    items = asyncio.run(read())
    written = write_dataset(items, output)
    console.print(f"{written} items written to {output}", highlight=False)
