"""deploy/prometheus and deploy/alertmanager: the files are valid for the programs that
read them, and the alert rules pass their promtool unit tests."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from tests.deploy.tools import DEPLOY, exported_series, metric_names, program, run

RULES = DEPLOY / "prometheus" / "alerts.yml"


def test_promtool_checks_the_rules() -> None:
    out = run(program("promtool"), "check", "rules", RULES)
    assert "SUCCESS: 12 rules found" in out


def test_promtool_unit_tests_of_the_rules_pass() -> None:
    out = run(program("promtool"), "test", "rules", DEPLOY / "prometheus" / "alerts_test.yml")
    assert "SUCCESS" in out


def test_every_rule_is_unit_tested_and_labelled() -> None:
    rules = yaml.safe_load(RULES.read_text())["groups"][0]["rules"]
    tests = yaml.safe_load((DEPLOY / "prometheus" / "alerts_test.yml").read_text())["tests"]
    firing = {
        (case["alertname"], alert["exp_labels"]["severity"])
        for test in tests
        for case in test["alert_rule_test"]
        for alert in case["exp_alerts"]
    }
    quiet = {case["alertname"] for test in tests for case in test["alert_rule_test"]}
    for rule in rules:
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert {"summary", "description"} <= set(rule["annotations"]), rule["alert"]
        assert (rule["alert"], rule["labels"]["severity"]) in firing, rule["alert"]
        assert rule["alert"] in quiet


def test_example_prometheus_config_is_valid() -> None:
    out = run(program("promtool"), "check", "config", DEPLOY / "prometheus" / "prometheus.yml")
    assert "SUCCESS: 12 rules found" in out


def test_example_alertmanager_config_is_valid(tmp_path: Path) -> None:
    amtool = program("amtool")
    config = DEPLOY / "alertmanager" / "alertmanager.yml"
    assert "1 receivers" in run(amtool, "check-config", config)
    # The commented Slack route and receiver, uncommented, are valid too.
    text = config.read_text()
    slack = re.sub(r"(?m)^  # (routes:.*|- name: slack.*| .*)$", r"  \1", text)
    url_file = tmp_path / "slack-url"
    url_file.write_text("https://hooks.slack.com/services/T0/B0/x\n")
    slack = slack.replace("/etc/alertmanager/slack-webhook-url", str(url_file))
    (tmp_path / "alertmanager.yml").write_text(slack)
    assert "2 receivers" in run(amtool, "check-config", tmp_path / "alertmanager.yml")
    routes = yaml.safe_load(slack)["route"]["routes"]
    assert routes[0]["receiver"] == "slack"


def test_every_alert_rule_reads_series_a_live_server_exports(metrics_text: str) -> None:
    exported = exported_series(metrics_text)
    rules = yaml.safe_load(RULES.read_text())["groups"][0]["rules"]
    missing = {
        (rule["alert"], name)
        for rule in rules
        for name in metric_names(rule["expr"])
        if name not in exported
    }
    assert not missing, f"not in /metrics: {sorted(missing)}"
