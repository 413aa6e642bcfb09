"""dockyard top's numbers from two scrapes (cli/top_frame.py), on pages prometheus-client
writes itself."""

from __future__ import annotations

import math

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from dockyard.cli.top_frame import Scrape, frame, quantile

RUN_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300)


class Server:
    """The metrics of a dockyard, as far as `dockyard top` reads them."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.http = Counter(
            "dockyard_http_requests_total", "", ("method", "route", "status"), registry=r
        )
        self.runs = Counter("dockyard_runs_total", "", ("assistant", "status"), registry=r)
        self.run_duration = Histogram(
            "dockyard_run_duration_seconds", "", ("assistant",), buckets=RUN_BUCKETS, registry=r
        )
        self.model = Counter("dockyard_model_requests_total", "", ("model", "status"), registry=r)
        self.model_duration = Histogram(
            "dockyard_model_request_duration_seconds", "", ("model",), registry=r
        )
        self.tokens = Counter("dockyard_model_tokens_total", "", ("model", "kind"), registry=r)
        self.cost = Counter(
            "dockyard_cost_usd_total", "", ("model", "tenant", "assistant"), registry=r
        )
        self.cache = Counter("dockyard_cache_requests_total", "", ("result",), registry=r)
        self.breaker = Gauge("dockyard_breaker_state", "", ("model",), registry=r)
        self.waiting = Gauge("dockyard_interrupts_waiting", "", registry=r)
        self.queue = Gauge("dockyard_run_queue_depth", "", registry=r)
        self.active = Gauge("dockyard_runs_active", "", registry=r)
        Gauge("dockyard_build_info", "", ("version",), registry=r).labels("0.1").set(1)

    def scrape(self, at: float) -> Scrape:
        return Scrape.parse(generate_latest(self.registry).decode(), at)


def test_rates_are_the_increase_over_the_time_between_scrapes() -> None:
    s = Server()
    s.runs.labels("chat", "success").inc(100)  # before the first scrape: not in the rates
    s.cost.labels("claude", "acme", "chat").inc(1.5)
    before = s.scrape(at=100.0)
    for _ in range(30):
        s.http.labels("POST", "/runs/wait", "200").inc()
    s.http.labels("GET", "/ok", "200").inc(10)
    s.runs.labels("chat", "success").inc(16)
    s.runs.labels("chat", "error").inc(3)
    s.runs.labels("chat", "timeout").inc(1)
    s.runs.labels("chat", "cancelled").inc(5)  # finished, neither ended nor failed
    s.runs.labels("batch", "success").inc(5)
    s.tokens.labels("claude", "input").inc(1500)
    s.tokens.labels("claude", "cached").inc(1000)  # part of the input already
    s.tokens.labels("claude", "output").inc(500)
    s.cost.labels("claude", "acme", "chat").inc(0.25)
    s.cost.labels("claude", "", "batch").inc(0.25)
    s.cache.labels("hit").inc(3)
    s.cache.labels("miss").inc(1)
    s.model.labels("claude", "ok").inc(9)
    s.model.labels("claude", "error").inc(1)
    s.waiting.set(2)
    s.queue.set(4)
    s.active.set(1)
    s.breaker.labels("claude").set(0)
    s.breaker.labels("gpt").set(2)
    f = frame(before, s.scrape(at=110.0))

    assert f.seconds == 10
    assert f.requests_per_s == pytest.approx(4.0)
    assert f.runs_per_s == pytest.approx(3.0)  # 30 finished runs
    assert f.errors_per_s == pytest.approx(0.4)
    assert f.error_ratio == pytest.approx(4 / 25)  # of ended runs
    assert f.tokens_per_s == pytest.approx(200.0)
    assert f.cost_usd == pytest.approx(2.0)  # since start
    assert f.cost_usd_per_hour == pytest.approx(0.5 / 10 * 3600)
    assert f.cache_hit_ratio == pytest.approx(0.75)
    assert (f.waiting_approvals, f.queue_depth, f.active_runs) == (2, 4, 1)
    chat, batch = sorted(f.assistants, key=lambda a: a.name != "chat")
    assert (chat.name, chat.runs_per_s, chat.errors_per_s, chat.runs) == ("chat", 2.5, 0.4, 125)
    assert (batch.name, batch.runs_per_s, batch.errors_per_s, batch.runs) == ("batch", 0.5, 0, 5)
    claude, gpt = f.models
    assert (claude.name, claude.calls_per_s, claude.errors_per_s, claude.breaker) == (
        "claude",
        1.0,
        0.1,
        "closed",
    )
    assert claude.tokens_per_s == pytest.approx(200.0)
    assert (gpt.name, gpt.calls_per_s, gpt.breaker) == ("gpt", 0, "open")


def test_p95_comes_from_the_runs_between_the_scrapes() -> None:
    s = Server()
    for _ in range(100):
        s.run_duration.labels("chat").observe(100)  # slow runs before: not in this frame
    before = s.scrape(at=0.0)
    for _ in range(100):
        s.run_duration.labels("chat").observe(3)  # in (2, 5]
    for _ in range(100):
        s.run_duration.labels("batch").observe(0.07)  # in (0.05, 0.1]
    f = frame(before, s.scrape(at=5.0))
    by_name = {a.name: a for a in f.assistants}
    # as histogram_quantile: 2 + (5 - 2) * 0.95
    assert by_name["chat"].p95_s == pytest.approx(4.85)
    assert by_name["batch"].p95_s == pytest.approx(0.05 + 0.05 * 0.95)
    # all runs: rank 190 of 200 falls in chat's (2, 5] bucket, 90 of its 100
    assert f.run_p95_s == pytest.approx(2 + 3 * 0.9)


def test_no_runs_between_the_scrapes_is_no_p95_and_no_error_ratio() -> None:
    s = Server()
    s.run_duration.labels("chat").observe(1)
    s.runs.labels("chat", "success").inc()
    f = frame(s.scrape(at=0.0), s.scrape(at=2.0))
    assert f.run_p95_s is None and f.error_ratio is None and f.cache_hit_ratio is None
    assert f.runs_per_s == 0 and f.assistants[0].runs == 1


def test_a_counter_that_went_down_was_reset_by_a_restart() -> None:
    old, new = Server(), Server()
    old.runs.labels("chat", "success").inc(50)
    new.runs.labels("chat", "success").inc(6)
    f = frame(old.scrape(at=0.0), new.scrape(at=3.0))
    assert f.runs_per_s == pytest.approx(2.0)


def test_quantile_interpolates_like_prometheus() -> None:
    assert quantile(0.5, [(1.0, 0.0), (2.0, 10.0), (math.inf, 10.0)]) == pytest.approx(1.5)
    # in the first bucket, from 0
    assert quantile(0.5, [(4.0, 10.0), (math.inf, 10.0)]) == pytest.approx(2.0)
    # beyond the last finite bound: that bound
    assert quantile(0.99, [(1.0, 5.0), (math.inf, 10.0)]) == 1.0
    assert quantile(0.95, [(1.0, 0.0), (math.inf, 0.0)]) is None
    assert quantile(0.95, []) is None
