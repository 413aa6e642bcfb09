"""What every `dockyard` command that reads the project shares: its ``--config`` and
``--json`` options, and loading the settings, where a bad configuration ends the command
with its message and exit code 2."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dockyard.errors import ConfigError
from dockyard.settings import Settings, load_settings

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="dockyard.yaml or langgraph.json (default: found in .)"),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]


def settings_or_exit(config: Path | None, **overrides: object) -> Settings:
    """The settings of ``config`` (found in . when None), or exit 2 saying what is wrong."""
    try:
        return load_settings(config, **overrides)
    except ConfigError as e:
        typer.echo(f"configuration error: {e.message}", err=True)
        raise typer.Exit(2) from None
