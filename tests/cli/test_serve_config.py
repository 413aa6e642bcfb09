"""`dockyard serve` with a bad config: exit code 2 and one line naming the bad key."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from dockyard.cli.main import app

runner = CliRunner()


@pytest.mark.parametrize(
    ("yaml_text", "key", "detail"),
    [
        ("port: not-a-port\n", "port", "DOCKYARD_PORT"),
        ("graphs:\n  support: dockyard.agents.support:graph\nprot: 8123\n", "prot", "unknown key"),
        ("runs:\n  max_concurrency: 0\n", "runs.max_concurrency", "DOCKYARD_RUNS__MAX_CONCURRENCY"),
    ],
)
def test_bad_config_exits_2_naming_the_key(
    tmp_path: Path, yaml_text: str, key: str, detail: str
) -> None:
    config = tmp_path / "dockyard.yaml"
    config.write_text(yaml_text)
    result = runner.invoke(app, ["serve", "-c", str(config)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.stdout == ""
    lines = [line for line in result.stderr.splitlines() if f"{key} = " in line]
    assert len(lines) == 1, result.stderr
    assert detail in lines[0] and str(config) in lines[0]


def test_graph_that_does_not_import_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "dockyard.yaml"
    config.write_text("graphs:\n  broken: no_such_module_here:graph\n")
    result = runner.invoke(app, ["serve", "-c", str(config)])
    assert result.exit_code == 2, result.output
    [line] = [x for x in result.stderr.splitlines() if x.strip()]
    assert "graphs.broken" in line and "no_such_module_here" in line


def test_missing_config_file_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["serve", "-c", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert "does not exist" in result.stderr


@pytest.mark.parametrize(
    ("args", "yaml_text", "needs"),
    [
        (["serve", "--no-workers"], "", "redis_url"),
        (["serve", "--no-workers"], "redis_url: redis://127.0.0.1:6379/0\n", "database_url"),
        (["worker"], "", "database_url"),
        (["worker"], "database_url: postgresql://u@127.0.0.1/db\n", "redis_url"),
    ],
)
def test_process_layouts_that_cannot_work_exit_2(
    tmp_path: Path, args: list[str], yaml_text: str, needs: str
) -> None:
    config = tmp_path / "dockyard.yaml"
    config.write_text(yaml_text)
    result = runner.invoke(app, [*args, "-c", str(config)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert needs in result.stderr and "DOCKYARD_" in result.stderr


def test_several_api_processes_need_postgres_and_redis(tmp_path: Path) -> None:
    config = tmp_path / "dockyard.yaml"
    config.write_text("")
    result = runner.invoke(app, ["serve", "--workers", "2", "-c", str(config)])
    assert result.exit_code == 2
    assert "PostgreSQL + Redis" in result.output
