"""``dockyard alerts test`` and ``dockyard alerts list`` as a user runs them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from dockyard.cli.main import app
from dockyard.settings import load_settings
from dockyard.storage.alerts import NewAlert
from dockyard.storage.database import open_storage
from dockyard.storage.sql.alerts import SqlAlerts
from tests.observability.alerts.receivers import Receiver, http_receiver

runner = CliRunner()


@pytest.fixture
def slack() -> Iterator[Receiver]:
    with http_receiver() as r:
        yield r


def project(tmp_path: Path, notifiers: dict[str, object]) -> Path:
    config = tmp_path / "dockyard.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "graphs": {},
                "data_dir": str(tmp_path / "data"),
                "observability": {"alerts": {"notifiers": notifiers}},
            },
            sort_keys=False,
        )
    )
    return config


def test_alerts_test_sends_to_every_notifier_and_says_what_each_answered(
    tmp_path: Path, slack: Receiver
) -> None:
    config = project(
        tmp_path,
        {
            "team-slack": {"type": "slack", "url": slack.url, "min_severity": "critical"},
            "broken": {"type": "webhook", "url": slack.url + "/nope", "max_attempts": 2},
        },
    )
    slack.statuses = [200, 404, 404]  # slack first, then both attempts of the webhook
    result = runner.invoke(app, ["alerts", "test", "-c", str(config)])
    assert result.exit_code == 1, result.output
    # Log lines of an earlier test's logging set-up (JSON on stdout) are not the CLI's.
    lines = [line for line in result.stdout.splitlines() if not line.startswith("{")]
    assert lines[0] == "ok  team-slack: ok: 200"
    assert lines[1] == "failed  broken: error: RuntimeError: answered 404"
    # A test goes to a notifier whatever its min_severity.
    assert slack.texts() == ["[WARNING] TEST: dockyard test alert: this notifier works"]

    slack.statuses = []
    result = runner.invoke(app, ["alerts", "test", "-c", str(config)])
    assert result.exit_code == 0, result.output


def test_alerts_test_without_notifiers(tmp_path: Path) -> None:
    result = runner.invoke(app, ["alerts", "test", "-c", str(project(tmp_path, {}))])
    assert result.exit_code == 2
    assert "no notifiers configured" in result.stderr


async def write_history(config: Path, now: datetime) -> None:
    async with open_storage(load_settings(config)) as storage:
        store = SqlAlerts(storage.engine)
        old = await store.open_alert(
            NewAlert("quality", "quality", "quality", "warning", "Quality 0.61 < 0.7"),
            now - timedelta(days=3),
        )
        assert old is not None
        await store.resolve(old.id, now - timedelta(days=2))
        await store.open_alert(
            NewAlert("errors", "errors", "error_rate", "critical", "Error rate 9.0% > 5.0%"),
            now - timedelta(hours=1),
        )


def test_alerts_list(tmp_path: Path) -> None:
    config = project(tmp_path, {})
    asyncio.run(write_history(config, datetime.now(UTC)))
    result = runner.invoke(app, ["alerts", "list", "-c", str(config), "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [(r["rule"], r["state"], r["severity"]) for r in rows] == [
        ("errors", "firing", "critical"),
        ("quality", "resolved", "warning"),
    ]
    assert rows[1]["resolved_at"] is not None

    since = runner.invoke(app, ["alerts", "list", "-c", str(config), "--since", "1d", "--json"])
    assert [r["rule"] for r in json.loads(since.stdout)] == ["errors"]
    resolved = runner.invoke(
        app, ["alerts", "list", "-c", str(config), "--state", "resolved", "--json"]
    )
    assert [r["rule"] for r in json.loads(resolved.stdout)] == ["quality"]

    table = runner.invoke(app, ["alerts", "list", "-c", str(config)], env={"COLUMNS": "200"})
    assert table.exit_code == 0
    assert "Error rate 9.0% > 5.0%" in table.stdout and "firing" in table.stdout
    assert "Quality 0.61 < 0.7" in table.stdout

    bad = runner.invoke(app, ["alerts", "list", "-c", str(config), "--since", "yesterday"])
    assert bad.exit_code == 2 and "expected a duration" in bad.output
    none = runner.invoke(app, ["alerts", "list", "-c", str(config), "--since", "2099-01-01"])
    assert none.exit_code == 0 and "no alerts" in none.stderr
