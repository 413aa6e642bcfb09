"""bench/gateway_bench.py: what it reports from its phases, the configs it starts the
gateways with, and one short run end to end (the mock and dockyard, no LiteLLM)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dockyard.runtime.graphs import load_registry
from dockyard.settings import load_settings
from tests.bench.loader import BENCH_DIR, load_bench


@pytest.fixture
def gb(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.syspath_prepend(str(BENCH_DIR))  # it imports stats.py, chart.py ... as the bench
    return load_bench("gateway_bench")


def result(gb: Any, target: str, clients: int, latencies_ms: list[float], rps: float) -> Any:
    stats = load_bench("stats")
    lat = [ms / 1000 for ms in latencies_ms]
    samples = [stats.Sample(0.0, 1.0, x) for x in lat]
    summary = stats.summarize(samples, 0.0, 1.0)
    summary = type(summary)(**{**summary.to_dict(), "runs_per_s": rps})
    phase = gb.Phase(target, clients, False, 1)
    return gb.PhaseResult(phase, summary, {target: 50.0}, lat, [])


def test_added_latency_is_against_direct_at_the_same_concurrency(gb: Any) -> None:
    results = [
        result(gb, "direct", 1, [20.0] * 99 + [30.0], 45.0),
        result(gb, "dockyard", 1, [22.0] * 99 + [31.0], 40.0),
        result(gb, "litellm", 1, [45.0] * 99 + [80.0], 20.0),
        result(gb, "direct", 64, [40.0] * 100, 1500.0),
        result(gb, "dockyard", 64, [90.0] * 100, 600.0),
        result(gb, "litellm", 64, [900.0] * 100, 70.0),
    ]
    rows = {(r.target, r.clients): r for r in gb.rows_of(results)}

    assert rows[("direct", 1)].added_p50 is None
    assert rows[("dockyard", 1)].added_p50 == pytest.approx(0.002)
    assert rows[("litellm", 1)].added_p50 == pytest.approx(0.025)
    assert rows[("dockyard", 64)].added_p50 == pytest.approx(0.050)

    verdicts = {v.what: v for v in gb.verdicts(list(rows.values()), [1], 64)}
    p50 = verdicts["added latency p50, 1 client, non-stream (ms)"]
    assert (p50.dockyard, p50.litellm, p50.met) == (pytest.approx(2.0), pytest.approx(25.0), True)
    rps = verdicts["requests/s at 64 clients, non-stream"]
    assert (rps.dockyard, rps.litellm, rps.met) == (600.0, 70.0, True)  # 600 >= 5 x 70

    slower = [*results[:4], result(gb, "dockyard", 64, [90.0] * 100, 300.0), results[5]]
    verdicts = {v.what: v for v in gb.verdicts(gb.rows_of(slower), [1], 64)}
    assert not verdicts["requests/s at 64 clients, non-stream"].met  # 300 < 5 x 70
    assert "| litellm | 1 | non-stream | 100 | 20.0 |" in gb.table(gb.rows_of(results))
    charted = gb.chart_rows(gb.rows_of(results), [1])
    assert [c.label for c in charted] == [
        "direct · 1 client · non-stream",
        "dockyard · 1 client · non-stream",
        "litellm · 1 client · non-stream",
    ]


def test_rounds_pool_latencies_and_average_throughput(gb: Any) -> None:
    results = [
        result(gb, "direct", 4, [10.0] * 10, 100.0),
        result(gb, "direct", 4, [30.0] * 10, 300.0),
    ]
    (row,) = gb.rows_of(results)
    assert row.requests == 20 and row.rps == 200.0
    assert row.p50 == pytest.approx(0.020)


def test_phases_alternate_targets_within_each_concurrency(gb: Any) -> None:
    plan = gb.phases(["direct", "dockyard"], [1, 64], [False], 2)
    assert [(p.target, p.clients, p.round) for p in plan] == [
        ("direct", 1, 1),
        ("dockyard", 1, 1),
        ("direct", 64, 1),
        ("dockyard", 64, 1),
        ("direct", 1, 2),
        ("dockyard", 1, 2),
        ("direct", 64, 2),
        ("dockyard", 64, 2),
    ]


def test_the_litellm_target_is_skipped_with_the_fix(gb: Any, tmp_path: Path) -> None:
    binary, why = gb.litellm_binary(None)
    assert binary is None and "--litellm-venv" in why
    binary, why = gb.litellm_binary(tmp_path)
    assert binary is None and f"pip install 'litellm[proxy]' into {tmp_path}" in why
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "litellm").write_text("")
    assert gb.litellm_binary(tmp_path) == (tmp_path / "bin" / "litellm", None)


def test_arguments_are_checked(gb: Any) -> None:
    with pytest.raises(SystemExit):
        gb.parse_args(["--targets", "direct,nginx"])
    with pytest.raises(SystemExit):
        gb.parse_args(["--low-clients", "1,x"])
    args = gb.parse_args(["--low-clients", "1, 8", "--saturation-clients", "32"])
    assert (args.low, args.saturation_clients) == ([1, 8], 32)
    assert args.targets == ["direct", "dockyard", "litellm"]


def test_dockyard_runs_with_every_gateway_policy_on(gb: Any, tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_text("k")
    config = gb.dockyard_config("http://127.0.0.1:9/v1", key)
    settings = load_settings(None, project_dir=tmp_path, **config)  # strict: a typo fails here
    policies = settings.policies
    assert policies.rate_limit is not None and policies.input is not None
    assert policies.pii is not None and policies.pii.action == "mask"
    assert policies.cache is not None and policies.input.injection == "block"
    assert policies.budget is not None and policies.routing is not None
    assert policies.rate_limit.tokens_per_minute is not None
    assert settings.auth.required  # start_dockyard creates the key the clients send
    default = settings.models["default"]
    assert not isinstance(default, str)
    assert default.fallbacks == ["backup"]
    assert default.retry is not None and default.breaker is not None
    assert load_registry(settings).models.get("default") is not None

    bare = load_settings(None, project_dir=tmp_path, **gb.dockyard_config("u", key, False))
    assert bare.policies.pii is None and bare.policies.cache is None
    assert bare.policies.rate_limit is None and bare.policies.input is None
    assert bare.policies.budget is None and not bare.auth.required


def test_a_short_run_end_to_end(
    gb: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "rows.json"
    argv = ["--targets", "direct,dockyard,litellm", "--seconds", "0.5", "--warmup", "0.2"]
    argv += ["--low-clients", "1", "--saturation-clients", "4", "--stream", "--json", str(out)]
    argv += ["--latency-ms", "5"]

    assert gb.main(argv) == 0

    captured = capsys.readouterr()
    assert "LiteLLM target skipped: no --litellm-venv given" in captured.err
    rows = json.loads(out.read_text())["rows"]
    assert {(r["target"], r["clients"], r["mode"]) for r in rows} == {
        (t, c, m) for t in ("direct", "dockyard") for c in (1, 4) for m in ("stream", "non-stream")
    }
    for row in rows:
        assert row["errors"] == 0, row["first_error"]  # dockyard's answers were PII-masked
        assert row["requests"] > 0
        assert row["p50"] >= 0.005  # the mock's latency
    streamed = [r for r in rows if r["mode"] == "stream"]
    assert all(r["ttft_p50"] is not None for r in streamed)
    assert "| dockyard | 1 | non-stream |" in captured.out
