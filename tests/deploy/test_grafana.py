"""deploy/grafana/dockyard.json: a dashboard Grafana can import, whose every query is valid
PromQL and reads only series a live dockyard exports."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from tests.deploy.tools import DEPLOY, exported_series, metric_names, program, run

DASHBOARD = json.loads((DEPLOY / "grafana" / "dockyard.json").read_text())
# What Grafana puts in place of its variables when it sends a query.
GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "1m",
    "$assistant": ".*",
    "$model": ".*",
}


def panels() -> Iterator[dict[str, Any]]:
    for panel in DASHBOARD["panels"]:
        yield panel
        yield from panel.get("panels", [])


def queries() -> Iterator[tuple[str, str]]:
    """(where, PromQL) of every panel target and every variable."""
    for panel in panels():
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]
    for variable in DASHBOARD["templating"]["list"]:
        # label_values(metric, label) is Grafana's, not PromQL: its metric is the query.
        inner = variable["query"]["query"].removeprefix("label_values(").split(",")[0]
        yield f"variable {variable['name']}", inner


def promql(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"a Grafana variable the test does not know: {expr}"
    return expr


def test_dashboard_is_importable_with_a_prometheus_datasource_input() -> None:
    assert DASHBOARD["schemaVersion"] >= 36
    assert DASHBOARD["uid"] and DASHBOARD["title"]
    (ds_input,) = DASHBOARD["__inputs"]
    assert ds_input["name"] == "DS_PROMETHEUS" and ds_input["pluginId"] == "prometheus"
    ids = [p["id"] for p in panels()]
    assert len(ids) == len(set(ids)), "panel ids must be unique"


def test_every_panel_has_a_title_a_datasource_and_queries() -> None:
    shown = [p for p in panels() if p["type"] != "row"]
    assert len(shown) >= 12
    for panel in shown:
        assert panel.get("title"), panel
        assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
            assert metric_names(target["expr"]), (panel["title"], target["expr"])


def test_dashboard_shows_what_the_operator_watches() -> None:
    read = set().union(*(metric_names(expr) for _, expr in queries()))
    assert {
        "dockyard_http_requests_total",  # request rate, error rate
        "dockyard_http_request_duration_seconds_bucket",  # latency quantiles
        "dockyard_runs_total",  # runs by status
        "dockyard_run_duration_seconds_bucket",
        "dockyard_run_queue_depth",
        "dockyard_model_tokens_total",
        "dockyard_cost_usd_total",
        "dockyard_quality_score_bucket",  # quality distribution
        "dockyard_cache_requests_total",  # hit ratio
        "dockyard_budget_remaining_usd",
        "dockyard_breaker_state",
    } <= read
    exprs = [expr for _, expr in queries()]
    for level in ("0.5", "0.95", "0.99"):
        assert any(
            f"histogram_quantile({level}," in e and "http_request_duration" in e for e in exprs
        ), level


def test_every_query_is_valid_promql(tmp_path: Path) -> None:
    # promtool parses a rule file's expressions: each query becomes a recording rule.
    rules = [
        {"record": f"dockyard:dashboard:{i}", "expr": promql(expr)}
        for i, (_, expr) in enumerate(queries())
    ]
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    assert f"SUCCESS: {len(rules)} rules found" in run(program("promtool"), "check", "rules", path)


def test_every_query_reads_series_a_live_server_exports(metrics_text: str) -> None:
    exported = exported_series(metrics_text)
    missing = {
        (where, name)
        for where, expr in queries()
        for name in metric_names(expr)
        if name not in exported
    }
    assert not missing, f"not in /metrics: {sorted(missing)}"
