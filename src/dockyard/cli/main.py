"""``dockyard serve | worker | dev | init | usage | keys | alerts | prompts | eval | rollout |
agents | top``."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from dockyard.cli import agents, alerts, evals, keys, prompts, rollouts
from dockyard.cli.options import ConfigOpt, settings_or_exit
from dockyard.errors import ConfigError
from dockyard.settings import Settings

app = typer.Typer(
    help="dockyard: a self-hosted runtime for LangGraph agents.", no_args_is_help=True
)
app.add_typer(keys.app, name="keys")
app.add_typer(alerts.app, name="alerts")
app.add_typer(prompts.app, name="prompts")
app.add_typer(evals.app, name="eval")
app.add_typer(rollouts.app, name="rollout")
app.add_typer(agents.app, name="agents")
console = Console(stderr=True)


def _app_factory_env(settings: Settings) -> None:
    # uvicorn's reload/workers modes import the app by name in a new process;
    # the config file path travels through the environment we set for it.
    import os

    if settings.config_file is not None:
        os.environ["DOCKYARD_CONFIG_FILE"] = str(settings.config_file.resolve())


def _metrics_dir(settings: Settings, processes: int) -> None:
    """Choose where this deployment's processes keep their metrics, before any makes one
    (observability/metrics_dir.py); processes started from here inherit the choice."""
    import os

    from dockyard.observability.metrics_dir import clean
    from dockyard.observability.process_metrics import multiprocess_dir_for

    directory = multiprocess_dir_for(settings, processes=processes)
    if directory is None:
        return
    directory = directory.resolve()
    clean(directory)
    settings.observability.metrics.multiprocess_dir = directory
    os.environ["DOCKYARD_OBSERVABILITY__METRICS__MULTIPROCESS_DIR"] = str(directory)


def _configure_logging(settings: Settings) -> bool:
    """Every line of the process as JSON (or console) lines on stdout
    (observability/logs.py); False when ``observability.logs.enabled`` is off."""
    from dockyard.observability.logs import configure_from

    configure_from(settings)
    return settings.observability.logs.enabled


def _uvicorn_logging(settings: Settings) -> dict[str, Any]:
    # uvicorn's own logging setup would give its loggers handlers of their own, outside
    # dockyard's lines; without it they reach the root handler dockyard installed.
    return {"log_config": None} if settings.observability.logs.enabled else {}


def _tune_gc() -> None:
    """Fewer, later young-generation collections for a server process.

    A run allocates many short-lived objects; with CPython's default threshold
    (700) the collector runs every few requests and its pauses were most of the
    p99 latency in bench/ (trivial wait p99 203 ms -> 97 ms with this). Objects
    alive after start-up (imports, graphs) are frozen out of every collection.
    """
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)


@app.command()
def serve(
    config: ConfigOpt = None,
    host: Annotated[str | None, typer.Option(help="interface to bind")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port")] = None,
    workers: Annotated[int | None, typer.Option(help="API processes")] = None,
    no_workers: Annotated[
        bool,
        typer.Option(
            "--no-workers",
            help="API only: queue runs for `dockyard worker` processes (PostgreSQL + Redis)",
        ),
    ] = False,
    log_level: Annotated[str | None, typer.Option(help="debug|info|warning|error")] = None,
) -> None:
    """Serve the project's graphs behind the Agent Server API."""
    import os

    import uvicorn

    runs = {"in_process": False} if no_workers else None
    settings = settings_or_exit(
        config, host=host, port=port, workers=workers, log_level=log_level, runs=runs
    )
    from dockyard.runtime.process import check_layout, missing_for_processes

    if settings.workers > 1 and missing_for_processes(settings):
        console.print(
            "[bold red]--workers > 1[/] needs PostgreSQL + Redis (the embedded SQLite "
            "store is one process); run one worker, or set DOCKYARD_DATABASE_URL and "
            "DOCKYARD_REDIS_URL"
        )
        raise typer.Exit(2)
    _configure_logging(settings)
    from dockyard.api import create_app

    _metrics_dir(settings, settings.workers)
    try:
        # With several processes each child builds its own app; here only the
        # layout is checked, so that a bad one stops before any child starts.
        application = create_app(settings) if settings.workers == 1 else None
        check_layout(settings)
    except ConfigError as e:
        typer.echo(f"configuration error: {e.message}", err=True)
        raise typer.Exit(2) from None
    _tune_gc()
    prefix = settings.http.mount_prefix or ""
    docs = "API docs off (http.disable_meta)" if settings.http.disable_meta else "API docs: /docs"
    keys = "API keys required" if settings.auth.required else "open: auth.required is false"
    console.print(
        f"dockyard serving {', '.join(settings.graphs) or 'no graphs'} on "
        f"http://{settings.host}:{settings.port}{prefix}  ({keys}; {docs}"
        f"{'; runs execute in `dockyard worker` processes' if no_workers else ''})"
    )
    if application is None:
        # uvicorn's processes build their own app from the environment (the only way
        # into them); a single process and `dockyard worker` are handed the Settings.
        _app_factory_env(settings)
        if no_workers:
            os.environ["DOCKYARD_RUNS__IN_PROCESS"] = "false"
        uvicorn.run(
            "dockyard.api.app:create_app",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            log_level=settings.log_level,
            access_log=settings.log_level == "debug",
            **_uvicorn_logging(settings),
        )
        return
    uvicorn.run(
        application,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=settings.log_level == "debug",
        **_uvicorn_logging(settings),
    )


@app.command()
def worker(
    config: ConfigOpt = None,
    concurrency: Annotated[
        int | None, typer.Option(help="runs executed at once (runs.max_concurrency)")
    ] = None,
    log_level: Annotated[str | None, typer.Option(help="debug|info|warning|error")] = None,
) -> None:
    """Execute runs queued by `dockyard serve --no-workers` (PostgreSQL + Redis)."""
    import logging

    runs = {"max_concurrency": concurrency} if concurrency else None
    settings = settings_or_exit(config, log_level=log_level, runs=runs)
    if not _configure_logging(settings):
        logging.basicConfig(
            level=settings.log_level.upper(),
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
    from dockyard.runtime.worker import run_worker

    _metrics_dir(settings, 1)
    _tune_gc()
    try:
        # The loop uvicorn gives the API processes (uvloop, from uvicorn[standard]):
        # asyncio's own loop cost the worker about a tenth more CPU per run.
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(run_worker(settings))
    except ConfigError as e:
        typer.echo(f"configuration error: {e.message}", err=True)
        raise typer.Exit(2) from None


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


@app.command()
def dev(
    config: ConfigOpt = None,
    host: Annotated[str | None, typer.Option()] = None,
    port: Annotated[int | None, typer.Option()] = None,
) -> None:
    """Serve with auto-reload on code changes, open: no API key needed (for development)."""
    import os

    import uvicorn

    settings = settings_or_exit(config, host=host, port=port)
    settings.auth = settings.auth.model_copy(update={"required": False})
    _app_factory_env(settings)
    # The reloading child builds its app from the environment.
    os.environ["DOCKYARD_AUTH__REQUIRED"] = "false"
    if settings.observability.logs.format is None:
        # Readable lines while developing; JSON is for the log collectors of `serve`.
        settings.observability.logs.format = "console"
        os.environ["DOCKYARD_OBSERVABILITY__LOGS__FORMAT"] = "console"
    _configure_logging(settings)
    console.print(
        f"dockyard dev: open on http://{settings.host}:{settings.port} — no API key needed, "
        "every tenant's data visible (`dockyard serve` requires keys)"
    )
    uvicorn.run(
        "dockyard.api.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        reload=True,
        reload_dirs=[str(settings.project_dir.resolve())],
        log_level=settings.log_level,
        **_uvicorn_logging(settings),
    )


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="folder, created if missing")] = Path("."),
) -> None:
    """Create a project: dockyard.yaml, an agent.py that runs offline, .gitignore, README."""
    from dockyard.cli.init import init_project

    init_project(directory)


@app.command()
def usage(
    config: ConfigOpt = None,
    by: Annotated[
        str, typer.Option(help="group by tenant | key | assistant | model | variant (rollouts)")
    ] = "assistant",
    since: Annotated[
        str | None,
        typer.Option(help="only usage since: 7d, 24h, 30m, 2w ago, or a date (UTC)"),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="print JSON rows")] = False,
) -> None:
    """Model usage and cost per day, by tenant, key, assistant, model or rollout variant."""
    from dockyard.cli.usage import By, print_usage

    try:
        group = By(by)
    except ValueError:
        raise typer.BadParameter(
            f"{by!r}: use one of {', '.join(b.value for b in By)}", param_hint="--by"
        ) from None
    print_usage(settings_or_exit(config), group, since, as_json=json_output)


@app.command()
def top(
    url: Annotated[
        str, typer.Option(help="the server's /metrics")
    ] = "http://127.0.0.1:8123/metrics",
    key: Annotated[
        str | None,
        typer.Option(
            envvar="DOCKYARD_API_KEY",
            help="API key, when /metrics needs one (observability.metrics.require_key)",
        ),
    ] = None,
    interval: Annotated[
        float, typer.Option(min=0.1, help="seconds between scrapes: the rates' window")
    ] = 2.0,
    once: Annotated[
        bool, typer.Option("--once", help="print one frame (two scrapes) and exit")
    ] = False,
) -> None:
    """A live view of a running server from its /metrics: runs/s, p95, errors, tokens/s,
    cost, cache hits, runs waiting for approval, breakers."""
    from dockyard.cli.top import watch

    raise typer.Exit(watch(url, key, interval, once, Console(), console))


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
