"""``observability.alerts`` settings: the shipped rules, what is refused, the documented
example."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.errors import ConfigError
from dockyard.settings import AlertsConfig, load_settings

DOCS = Path(__file__).parents[3] / "docs" / "observability.md"


def test_off_by_default_with_the_guides_thresholds() -> None:
    config = AlertsConfig()
    assert not config.enabled
    rules = config.rules
    assert (rules["error-rate"].kind, rules["error-rate"].threshold) == ("error_rate", 0.05)
    assert [
        (r.threshold, r.severity) for n, r in rules.items() if n.startswith("availability")
    ] == [
        (0.95, "warning"),
        (0.90, "critical"),
    ]
    assert [
        (r.threshold_seconds, r.severity) for n, r in rules.items() if n.startswith("latency")
    ] == [(10.0, "warning"), (30.0, "critical")]
    assert [(r.threshold, r.severity) for n, r in rules.items() if n.startswith("budget")] == [
        (0.8, "warning"),
        (0.95, "critical"),
    ]
    assert rules["quality"].threshold == 0.7
    assert config.lease == 180.0  # three intervals of 60 s


@pytest.mark.parametrize(
    ("alerts", "message"),
    [
        ({"rules": {"x": {"kind": "p99"}}}, "does not match any of the expected tags"),
        ({"rules": {"x": {"kind": "error_rate", "treshold": 0.1}}}, "treshold"),
        ({"rules": {"x": {"kind": "error_rate", "threshold": 5}}}, "less than or equal to 1"),
        ({"notifiers": {"s": {"type": "slack"}}}, "set url or url_file"),
        ({"notifiers": {"w": {"type": "webhook", "url": "ftp://x"}}}, "should match pattern"),
        (
            {
                "notifiers": {
                    "m": {
                        "type": "email",
                        "host": "smtp",
                        "password": "p",
                        "sender": "a@b.c",
                        "to": ["x@y.z"],
                    }
                }
            },
            "a password needs a username",
        ),
        ({"interval_seconds": 60, "lease_seconds": 60}, "must exceed interval_seconds"),
    ],
)
def test_refused(tmp_path: Path, alerts: dict[str, object], message: str) -> None:
    (tmp_path / "dockyard.yaml").write_text("graphs: {}\n")
    with pytest.raises(ConfigError) as e:
        load_settings(tmp_path / "dockyard.yaml", observability={"alerts": alerts})
    assert message in str(e.value)


def test_a_secret_is_never_in_the_settings_repr(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("hunter2-smtp\n")
    config = AlertsConfig.model_validate(
        {
            "notifiers": {
                "s": {"type": "slack", "url": "https://hooks.slack.com/services/T/B/SECRET1"},
                "m": {
                    "type": "email",
                    "host": "smtp",
                    "username": "u",
                    "password_file": str(tmp_path / "pw"),
                    "sender": "a@b.c",
                    "to": ["x@y.z"],
                },
            }
        }
    )
    mail = config.notifiers["m"]
    assert mail.type == "email" and mail.password is not None
    assert mail.password.get_secret_value() == "hunter2-smtp"
    assert "SECRET1" not in repr(config) and "hunter2" not in repr(config)


def test_the_documented_example_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    section = DOCS.read_text().split("\n## Alerts\n", 1)[1]
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    for name in ("slack-webhook-url", "alert-signing-secret", "smtp-password"):
        (tmp_path / name).write_text(f"{name}-value\n")
    example = example.replace("/run/secrets/", f"{tmp_path}/")
    (tmp_path / "dockyard.yaml").write_text("graphs: {}\n" + example)
    alerts = load_settings(tmp_path / "dockyard.yaml").observability.alerts
    assert alerts.enabled and alerts.interval_seconds == 60
    assert sorted(alerts.notifiers) == ["oncall", "pager", "team-slack"]
    assert alerts.notifiers["oncall"].min_severity == "critical"
    assert "quality" in alerts.rules  # no rules: block, the shipped ones
