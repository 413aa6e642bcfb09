"""policies/budget.py on its own: the settings block, which budgets a caller counts
against, the estimate, the refusal's message and body, ``max_tokens_per_request``, the run
observer's settle and the threshold hooks (on the in-process store and a fake ledger)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from dockyard import caller
from dockyard.errors import BudgetExceededError, ConfigError, InvalidRequestError
from dockyard.policies.budget import Budgets, ThresholdEvent, emit, on_threshold, own_limits
from dockyard.policies.budget_store import MemoryBudgets
from dockyard.run_spec import RunSpec
from dockyard.settings import BudgetConfig, BudgetLimits, BudgetOverride, load_settings
from dockyard.storage.budgets import NANOS, BudgetLine, Crossing, to_nanos

NOW = datetime(2026, 12, 7, 15, 30, tzinfo=UTC)


class FakeLedger:
    def __init__(self) -> None:
        self.rows: dict[str, float] = {}

    async def __call__(self, scope: str, since: datetime) -> int:
        return to_nanos(self.rows.get(scope, 0.0))


def budgets(ledger: FakeLedger | None = None, **config: Any) -> Budgets:
    return Budgets(
        BudgetConfig(**config),
        MemoryBudgets(ledger or FakeLedger()),
        model_names={"default": "openai:gpt-4o-mini"},
        clock=lambda: NOW,
    )


def write(tmp_path: Path, budget: Any, **extra: Any) -> Path:
    path = tmp_path / "dockyard.yaml"
    path.write_text(yaml.safe_dump({"graphs": {}, "policies": {"budget": budget}, **extra}))
    return path


@pytest.mark.parametrize(
    ("budget", "expected"),
    [
        ({}, "policies.budget sets no limit"),
        ({"daily_usd": 0}, "daily_usd"),
        ({"daily_usd": 1, "weekly_usd": 2}, "weekly_usd"),
        ({"daily_usd": 1, "thresholds": [0.8, 1.5]}, "1.5 is not a share"),
        ({"daily_usd": 1, "thresholds": [0.8, 0.8]}, "listed twice"),
        ({"tenant": {}}, "sets no limit"),
        ({"daily_usd": 1, "estimate_model": "nope"}, "no model named 'nope'"),
        ({"max_tokens_per_request": 0}, "max_tokens_per_request"),
    ],
)
def test_a_wrong_block_stops_start_up_naming_it(
    tmp_path: Path, budget: dict[str, Any], expected: str
) -> None:
    with pytest.raises(ConfigError, match=expected):
        load_settings(write(tmp_path, budget))


def test_the_block_as_documented_loads(tmp_path: Path) -> None:
    settings = load_settings(
        write(
            tmp_path,
            {
                "daily_usd": 5,
                "monthly_usd": 100,
                "tenant": {"monthly_usd": 1000},
                "thresholds": [0.95, 0.5],
                "max_tokens_per_request": 4000,
            },
        )
    )
    cfg = settings.policies.budget
    assert cfg is not None and cfg.thresholds == [0.5, 0.95]
    assert cfg.tenant is not None and cfg.tenant.daily_usd is None


def test_the_environment_sets_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "dockyard.yaml").write_text("graphs: {}\n")
    monkeypatch.setenv("DOCKYARD_POLICIES__BUDGET__DAILY_USD", "2.5")
    settings = load_settings(tmp_path / "dockyard.yaml")
    assert settings.policies.budget is not None and settings.policies.budget.daily_usd == 2.5


def test_lines_defaults_a_keys_own_limits_and_its_tenant() -> None:
    b = budgets(daily_usd=1, monthly_usd=10, tenant={"monthly_usd": 100})
    assert b.lines(None, None) == [
        BudgetLine("anonymous", "daily", NANOS),
        BudgetLine("anonymous", "monthly", 10 * NANOS),
    ]
    own = BudgetOverride(daily_usd=3)  # replaces the daily default only
    assert b.lines("acme", "k1", own) == [
        BudgetLine("key:k1", "daily", 3 * NANOS),
        BudgetLine("key:k1", "monthly", 10 * NANOS),
        BudgetLine("tenant:acme", "monthly", 100 * NANOS),
    ]
    assert budgets(max_tokens_per_request=10).lines("acme", "k1") == []


def test_own_limits_come_from_the_callers_policies() -> None:
    assert own_limits(None) is None and own_limits({"rate_limit": {}}) is None
    assert own_limits({"budget": {"monthly_usd": 7}}) == BudgetOverride(monthly_usd=7)
    with pytest.raises(ConfigError, match="budget settings are not valid"):
        own_limits({"budget": {"yearly_usd": 7}})


def test_the_estimate() -> None:
    # gpt-4o-mini: $0.15 / $0.60 per million tokens.
    b = budgets(daily_usd=1)
    assert b.estimate(1000, None, "default") == to_nanos(0.15e-3 + 1000 * 0.6e-6)
    assert b.estimate(1000, 10, "default") == to_nanos(0.15e-3 + 10 * 0.6e-6)
    assert b.estimate(1000, None, "gpt-4o-mini") == b.estimate(1000, None, "default")
    assert budgets(daily_usd=1, max_tokens_per_request=100).estimate(0, None, "default") == (
        to_nanos(100 * 0.6e-6)
    )
    assert b.estimate(1000, None, "mystery") == 0  # no price: nothing to hold
    assert budgets(daily_usd=1, reserve_usd=0.25).estimate(10**6, None, "default") == NANOS // 4
    spec = RunSpec(assistant_id="a", input={"messages": [{"role": "user", "content": "x" * 400}]})
    assert b.run_estimate(spec) == b.estimate(100, None, "default")


async def test_a_refusal_names_the_budget_its_limit_spend_and_reset() -> None:
    ledger = FakeLedger()
    ledger.rows["key:k1"] = 0.9
    b = budgets(ledger, daily_usd=1, reserve_usd=0.1)
    assert await b.hold("r1", to_nanos(0.05), tenant=None, key_id="k1")
    with pytest.raises(BudgetExceededError) as err:
        await b.hold("r2", to_nanos(0.1), tenant=None, key_id="k1")
    e = err.value
    assert (e.status_code, e.code) == (402, "budget_exceeded")
    assert e.message == (
        "the daily budget of API key 'k1' is used up: $0.9 spent and $0.05 held by requests "
        "in progress of its $1 limit, and this request needs about $0.1; it resets at "
        "2026-12-08T00:00:00Z"
    )
    assert e.to_body()["budget"] == {
        "period": "daily",
        "scope": "key",
        "holder": "k1",
        "limit_usd": 1.0,
        "spent_usd": 0.9,
        "held_usd": 0.05,
        "requested_usd": 0.1,
        "period_start": "2026-12-07T00:00:00Z",
        "resets_at": "2026-12-08T00:00:00Z",
    }


async def test_a_spent_up_budget_refuses_even_what_has_no_price() -> None:
    ledger = FakeLedger()
    ledger.rows["anonymous"] = 1.0
    b = budgets(ledger, monthly_usd=1)
    with pytest.raises(BudgetExceededError) as err:
        await b.hold("r1", 0, tenant=None, key_id=None)
    assert "monthly budget of callers without an API key" in err.value.message
    assert err.value.message.endswith("resets at 2027-01-01T00:00:00Z")  # the 1st of next month


def test_max_tokens_per_request_caps_or_refuses() -> None:
    b = budgets(max_tokens_per_request=100)
    spec = RunSpec(assistant_id="a", input={})
    capped = b.admit_spec(spec)
    assert capped.config == {"configurable": {"model_params": {"max_tokens": 100}}}
    asked = spec.replace(
        config={"configurable": {"model_params": {"max_tokens": 50, "temperature": 0}}}
    )
    assert b.admit_spec(asked) is asked
    with pytest.raises(InvalidRequestError, match="over this server's limit of 100") as err:
        b.admit_spec(spec.replace(config={"configurable": {"model_params": {"max_tokens": 101}}}))
    assert err.value.code == "max_tokens_exceeded"
    assert budgets(daily_usd=1).admit_spec(spec) is spec


async def test_a_run_counts_against_the_ids_stamped_on_it_else_the_caller() -> None:
    b = budgets(daily_usd=1, reserve_usd=0.6)
    stamped = RunSpec(assistant_id="a", input={}, metadata={"dockyard_key_id": "k1"})
    assert await b.hold_for_run("r1", stamped)
    with pytest.raises(BudgetExceededError, match="API key 'k1'"):
        await b.hold_for_run("r2", stamped)
    # The request's caller, with its own (larger) limit.
    who = caller.Caller(key_id="k2", tenant=None, policies={"budget": {"daily_usd": 1.5}})
    with caller.use(who):
        assert await b.hold_for_run("r3", RunSpec(assistant_id="a", input={}))
        assert await b.hold_for_run("r4", RunSpec(assistant_id="a", input={}))
        with pytest.raises(BudgetExceededError, match=r"API key .k2.*\$1.5 limit"):
            await b.hold_for_run("r5", RunSpec(assistant_id="a", input={}))


@pytest.fixture
def events() -> Iterator[list[ThresholdEvent]]:
    seen: list[ThresholdEvent] = []
    unsubscribe = on_threshold(seen.append)
    yield seen
    unsubscribe()


async def test_the_observer_settles_with_the_runs_cost_and_thresholds_fire_once(
    events: list[ThresholdEvent],
) -> None:
    ledger = FakeLedger()
    b = budgets(ledger, daily_usd=1, reserve_usd=0.1)

    class Usage:
        cost_usd = 0.85

    assert await b.hold("r1", to_nanos(0.1), tenant=None, key_id="k1")
    ledger.rows["key:k1"] = 0.85  # the run's outcome wrote its ledger rows
    b.on_ended({"run_id": "r1"}, None, Usage())
    await b.stop()
    assert [(e.threshold, e.spent_usd, e.scope) for e in events] == [(0.8, 0.85, "key:k1")]
    assert events[0].resets_at == datetime(2026, 12, 8, tzinfo=UTC)
    assert events[0].as_dict()["event"] == "budget.threshold"


def test_a_failing_hook_is_logged_and_the_others_still_hear(
    caplog: pytest.LogCaptureFixture,
) -> None:
    heard: list[ThresholdEvent] = []

    def broken(event: ThresholdEvent) -> None:
        raise RuntimeError("boom")

    line = BudgetLine("tenant:acme", "monthly", NANOS)
    start = datetime(2026, 12, 1, tzinfo=UTC)
    with caplog.at_level(logging.WARNING, "dockyard.budget"):
        emit([Crossing(line, 0.95, to_nanos(0.96), start)], hooks=[broken, heard.append])
    assert [e.budget for e in heard] == ["monthly"]
    assert heard[0].resets_at == datetime(2027, 1, 1, tzinfo=UTC)
    assert any("budget.threshold" in r.getMessage() for r in caplog.records)
    assert any("hook" in r.getMessage() and r.exc_info for r in caplog.records)


def test_the_documented_example_loads(tmp_path: Path) -> None:
    doc = (Path(__file__).parents[2] / "docs" / "policies.md").read_text()
    section = doc.split("\n## Budgets\n", 1)[1]
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "dockyard.yaml").write_text("graphs: {}\n" + example)
    settings = load_settings(tmp_path / "dockyard.yaml")
    cfg = settings.policies.budget
    assert cfg is not None and cfg.daily_usd == 5 and cfg.max_tokens_per_request == 4000
    assert cfg.tenant == BudgetLimits(daily_usd=50, monthly_usd=1000)


async def test_a_second_hold_of_one_run_holds_nothing_more() -> None:
    """The same run id created twice (a retried create, a cron firing in two processes):
    the second holds nothing, its creation is refused as a conflict later."""
    b = budgets(daily_usd=1, reserve_usd=0.6)
    assert await b.hold("r1", to_nanos(0.6), tenant=None, key_id="k1")
    assert not await b.hold("r1", to_nanos(0.6), tenant=None, key_id="k1")
    assert await b.store.spent(BudgetLine("key:k1", "daily", NANOS), NOW) == 0
    with pytest.raises(BudgetExceededError):  # the first hold still stands, once
        await b.hold("r2", to_nanos(0.6), tenant=None, key_id="k1")
