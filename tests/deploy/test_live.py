"""deploy/ against the real programs: Prometheus scraping a live dockyard, evaluating
alerts.yml, answering every dashboard query; Alertmanager (with the shipped routing)
delivering firing alerts to a webhook, among them a shipped rule's when a breaker opens.

One stack for the module: a webhook receiver, Alertmanager, the mock model providers,
dockyard, Prometheus, each on a free port of 127.0.0.1 with its own configuration and
storage in tmp; Prometheus scrapes and evaluates every second. Both programs are killed by
PID at the end.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import openai
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from dockyard.testing import MockAnthropicServer, MockOpenAIServer
from tests.conftest import LiveServer, eventually, free_port
from tests.deploy.test_grafana import promql, queries
from tests.deploy.tools import DEPLOY, WebhookReceiver, daemon, program

RUNS = 3
# A rule that fires as soon as Prometheus has seen a run, critical and warning: the shipped
# inhibit rule keeps the warning from being sent.
TEST_RULES = {
    "groups": [
        {
            "name": "dockyard-test",
            "rules": [
                {
                    "alert": "DockyardTestRunsSeen",
                    "expr": 'sum(dockyard_runs_total{assistant="trivial"}) >= 1',
                    "labels": {"severity": severity},
                    "annotations": {
                        "summary": "runs seen",
                        "description": "{{ $value }} runs of trivial",
                    },
                }
                for severity in ("critical", "warning")
            ],
        }
    ]
}


@dataclass
class Stack:
    server: LiveServer
    prometheus: str
    alertmanager: str
    receiver: WebhookReceiver
    model_api: MockOpenAIServer
    backup_api: MockAnthropicServer


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    prometheus_bin = program("prometheus")
    alertmanager_bin = program("prometheus-alertmanager", "alertmanager")
    tmp = tmp_path_factory.mktemp("prometheus")
    with contextlib.ExitStack() as stack:
        receiver = stack.enter_context(WebhookReceiver())

        # The shipped Alertmanager configuration, with the receiver's URL and no waiting.
        am_config = yaml.safe_load((DEPLOY / "alertmanager" / "alertmanager.yml").read_text())
        am_config["receivers"][0]["webhook_configs"][0]["url"] = receiver.url
        am_config["route"].update(group_wait="0s", group_interval="1s")
        (tmp / "alertmanager.yml").write_text(yaml.safe_dump(am_config))
        am_port = free_port()
        alertmanager = f"http://127.0.0.1:{am_port}"
        stack.enter_context(
            daemon(
                [
                    alertmanager_bin,
                    f"--config.file={tmp / 'alertmanager.yml'}",
                    f"--storage.path={tmp / 'alertmanager-data'}",
                    f"--web.listen-address=127.0.0.1:{am_port}",
                    "--cluster.listen-address=",  # no gossip with other instances
                    "--log.level=warn",
                ],
                tmp / "alertmanager.log",
                f"{alertmanager}/-/ready",
            )
        )

        # A model whose breaker a test can open, behind the mock providers.
        model_api = stack.enter_context(MockOpenAIServer())
        backup_api = stack.enter_context(MockAnthropicServer())
        (tmp / "key").write_text("test-key")
        models = {
            "default": {
                "model": "openai:gpt-4o-mini",
                "base_url": model_api.base_url,
                "api_key_file": str(tmp / "key"),
                "fallbacks": ["backup"],
                "retry": {"max_attempts": 1},
                "breaker": {"failures": 1, "cooldown_seconds": 600},
            },
            "backup": {
                "model": "anthropic:claude-backup",
                "base_url": backup_api.base_url,
                "api_key_file": str(tmp / "key"),
            },
        }
        server = LiveServer(
            tmp / "dockyard", models=models, policies={"budget": {"daily_usd": 5.0}}
        ).start()
        stack.callback(server.stop)

        # The shipped example, pointed at these ports, scraping and evaluating every second.
        config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
        config["global"].update(scrape_interval="1s", evaluation_interval="1s")
        config["rule_files"] = [str(DEPLOY / "prometheus" / "alerts.yml"), str(tmp / "test.yml")]
        config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] = [
            f"127.0.0.1:{am_port}"
        ]
        config["scrape_configs"][0]["static_configs"][0]["targets"] = [f"127.0.0.1:{server.port}"]
        (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
        (tmp / "test.yml").write_text(yaml.safe_dump(TEST_RULES))
        port = free_port()
        prometheus = f"http://127.0.0.1:{port}"
        stack.enter_context(
            daemon(
                [
                    prometheus_bin,
                    f"--config.file={tmp / 'prometheus.yml'}",
                    f"--storage.tsdb.path={tmp / 'prometheus-data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--log.level=warn",
                ],
                tmp / "prometheus.log",
                f"{prometheus}/-/ready",
            )
        )
        # A priced model call: the budget's gauges have series.
        model_api.enqueue_text("Sunny.", input_tokens=1000, output_tokens=100)
        gateway = openai.OpenAI(base_url=f"{server.url}/v1", api_key="sk-client", max_retries=0)
        gateway.chat.completions.create(
            model="default", messages=[{"role": "user", "content": "weather?"}]
        )
        for _ in range(RUNS):
            r = httpx.post(
                f"{server.url}/runs/wait",
                json={"assistant_id": "trivial", "input": {"x": 1}},
                timeout=30,
            )
            assert r.status_code == 200, r.text
        yield Stack(server, prometheus, alertmanager, receiver, model_api, backup_api)


async def query(prometheus: str, expr: str) -> list[Any]:
    async with httpx.AsyncClient(timeout=10) as client:
        r = await client.get(f"{prometheus}/api/v1/query", params={"query": expr})
    body = r.json()
    assert r.status_code == 200 and body["status"] == "success", (expr, body)
    result: list[Any] = body["data"]["result"]
    return result


def runs_on_the_page(metrics_text: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(metrics_text)
        for sample in family.samples
        if sample.name == "dockyard_runs_total"
        and (sample.labels["assistant"], sample.labels["status"]) == ("trivial", "success")
    )


async def test_prometheus_scrapes_the_runs_a_live_server_counted(stack: Stack) -> None:
    async def up() -> bool:
        result = await query(stack.prometheus, 'up{job="dockyard"}')
        return bool(result) and result[0]["value"][1] == "1"

    await eventually(up, timeout=30)
    # No run is made while this test reads: the page and Prometheus settle on one number.
    async with httpx.AsyncClient(timeout=10) as client:
        page = (await client.get(f"{stack.server.url}/metrics")).text
    expected = runs_on_the_page(page)
    assert expected >= RUNS

    async def scraped() -> bool:
        result = await query(
            stack.prometheus, 'sum(dockyard_runs_total{assistant="trivial",status="success"})'
        )
        return bool(result) and float(result[0]["value"][1]) == expected

    await eventually(scraped, timeout=30)
    requests = await query(
        stack.prometheus, 'sum(dockyard_http_requests_total{route="/runs/wait",status="200"})'
    )
    assert float(requests[0]["value"][1]) >= RUNS


async def test_shipped_rules_evaluate_without_errors_on_live_data(stack: Stack) -> None:
    async def evaluated() -> list[Any] | None:
        async with httpx.AsyncClient(timeout=10) as client:
            groups = (await client.get(f"{stack.prometheus}/api/v1/rules")).json()["data"]
        rules = [
            rule
            for group in groups["groups"]
            if group["name"] == "dockyard"
            for rule in group["rules"]
        ]
        if len(rules) == 12 and all(r["lastEvaluation"] > "2000" for r in rules):
            return rules
        return None

    rules = await eventually(evaluated, timeout=30)
    assert all(r["health"] == "ok" for r in rules), [r for r in rules if r["health"] != "ok"]
    # The budget rules' division matches spent to limit series one to one.
    share = "dockyard_budget_spent_usd / (dockyard_budget_limit_usd > 0)"
    # Metrics are the process's: budgets of earlier tests in this process may have series
    # too; this server's is the one with its $5 limit.

    async def my_share() -> list[Any]:
        limits = await query(stack.prometheus, "dockyard_budget_limit_usd == 5")
        mine = [{k: v for k, v in m["metric"].items() if k != "__name__"} for m in limits]
        return [b for b in await query(stack.prometheus, share) if b["metric"] in mine]

    (budget,) = await eventually(my_share, timeout=60)
    assert budget["metric"]["period"] == "daily" and 0 < float(budget["value"][1]) < 0.8


async def test_every_dashboard_query_runs_on_live_data(stack: Stack) -> None:
    await eventually(lambda: query(stack.prometheus, "dockyard_build_info"), timeout=30)
    for _, expr in queries():
        await query(stack.prometheus, promql(expr))  # fails with Prometheus's error, if any
    # Runs between two scrapes show on the "Runs per second" panel.
    (runs_per_second,) = (expr for where, expr in queries() if where == "Runs per second")
    async with httpx.AsyncClient(timeout=30) as client:
        for _ in range(RUNS):
            r = await client.post(
                f"{stack.server.url}/runs/wait", json={"assistant_id": "trivial", "input": {"x": 1}}
            )
            assert r.status_code == 200, r.text

    async def shown() -> bool:
        result = await query(stack.prometheus, promql(runs_per_second))
        return bool(result) and float(result[0]["value"][1]) > 0

    await eventually(shown, timeout=30)


def delivered(stack: Stack, alertname: str) -> list[Any]:
    return [
        alert
        for body in stack.receiver.received()
        for alert in body["alerts"]
        if alert["labels"]["alertname"] == alertname
    ]


async def test_a_firing_alert_reaches_the_webhook_through_alertmanager(stack: Stack) -> None:
    def delivered_test_alerts() -> list[Any]:
        return delivered(stack, "DockyardTestRunsSeen")

    alerts = await eventually(delivered_test_alerts, timeout=60)
    (alert,) = alerts
    assert alert["status"] == "firing"
    assert alert["labels"]["severity"] == "critical"
    assert alert["annotations"]["summary"] == "runs seen"
    assert alert["annotations"]["description"].endswith("runs of trivial")
    (body,) = [b for b in stack.receiver.received() if alert in b["alerts"]]
    assert body["receiver"] == "webhook" and body["groupLabels"] == {
        "alertname": "DockyardTestRunsSeen",
        "severity": "critical",
    }

    async def inhibited() -> list[Any]:
        async with httpx.AsyncClient(timeout=10) as client:
            r = await client.get(
                f"{stack.alertmanager}/api/v2/alerts",
                params={"filter": ['alertname="DockyardTestRunsSeen"', 'severity="warning"']},
            )
        return [a for a in r.json() if a["status"]["state"] == "suppressed"]

    (warning,) = await eventually(inhibited, timeout=30)
    assert warning["status"]["inhibitedBy"]
    assert not [a for a in delivered_test_alerts() if a["labels"]["severity"] == "warning"]


async def test_a_shipped_rule_fires_when_a_breaker_opens(stack: Stack) -> None:
    """DockyardBreakerOpen, from the model call that trips the breaker to the webhook."""
    stack.model_api.fail_next(500)
    stack.backup_api.enqueue_text("From the backup.")
    gateway = openai.AsyncOpenAI(
        base_url=f"{stack.server.url}/v1", api_key="sk-client", max_retries=0
    )
    reply = await gateway.chat.completions.create(
        model="default", messages=[{"role": "user", "content": "hi"}]
    )
    assert reply.choices[0].message.content == "From the backup."

    def breaker_alerts() -> list[Any]:
        # Metrics are the process's: a breaker an earlier test in this process opened
        # (another model name) may fire too; this one is the `models:` name's.
        alerts = delivered(stack, "DockyardBreakerOpen")
        return [a for a in alerts if a["labels"].get("model") == "default"]

    (alert,) = await eventually(breaker_alerts, timeout=60)
    assert alert["status"] == "firing"
    assert alert["labels"] == {
        "alertname": "DockyardBreakerOpen",
        "model": "default",
        "severity": "critical",
    }
    assert alert["annotations"]["summary"] == "Circuit breaker open for model default"
