"""An experiment's report: one JSON document (``build_report``) that the Markdown, HTML
and PNG renderings are made from, so they always agree."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from dockyard.evals.stats import describe, paired_permutation_test, percentile
from dockyard.storage.base import EvalExperiment, EvalResult

PASS_MARK = 0.8
"""An item passes at this score (the quality gate's default ``accept``)."""


def _variant_summary(
    variant: dict[str, Any], rows: Sequence[EvalResult], scorers: Sequence[str]
) -> dict[str, Any]:
    scores = [r["score"] or 0.0 for r in rows]
    latencies = [r["latency_ms"] for r in rows if r["latency_ms"] is not None]
    costs = [r["cost_usd"] for r in rows if r["cost_usd"] is not None]
    unpriced = sum(1 for r in rows if r["cost_usd"] is None and r["error"] is None)
    return {
        **variant,
        "n": len(rows),
        "errors": sum(1 for r in rows if r["error"]),
        "score": describe(scores),
        "pass_rate": sum(1 for s in scores if s >= PASS_MARK) / len(scores) if scores else None,
        "scorers": {
            name: (sum(r["parts"].get(name, 0.0) for r in rows) / len(rows) if rows else None)
            for name in scorers
        },
        "latency_ms": {
            "mean": sum(latencies) / len(latencies) if latencies else None,
            "p50": percentile(latencies, 50),
            "p95": percentile(latencies, 95),
        },
        "tokens": {
            "input": sum(r["input_tokens"] for r in rows),
            "output": sum(r["output_tokens"] for r in rows),
        },
        "cost_usd": sum(costs) if costs else None,
        "cost_unknown_items": unpriced,
    }


def variant_label(v: dict[str, Any]) -> str:
    """What a variant runs with, in words."""
    bits = []
    if v.get("prompt"):
        p = v["prompt"]
        bits.append(f"prompt {p['name']}@{p.get('version', p.get('label'))}")
    if v.get("model"):
        bits.append(f"model {v['model']}")
    return ", ".join(bits) or "as configured"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def build_report(experiment: EvalExperiment, results: Sequence[EvalResult]) -> dict[str, Any]:
    variants = experiment["variants"]
    scorers = [s.get("name") or s["type"] for s in experiment["scorers"]]
    by_variant = {v["name"]: [r for r in results if r["variant"] == v["name"]] for v in variants}
    summaries = [_variant_summary(v, by_variant[v["name"]], scorers) for v in variants]
    comparison = None
    if len(variants) == 2:
        a, b = (by_variant[v["name"]] for v in variants)
        b_by_item = {r["item_id"]: r for r in b}
        pairs = [(r, b_by_item[r["item_id"]]) for r in a if r["item_id"] in b_by_item]
        if pairs:
            test = paired_permutation_test(
                [x["score"] or 0.0 for x, _ in pairs], [y["score"] or 0.0 for _, y in pairs]
            )
            comparison = {"a": variants[0]["name"], "b": variants[1]["name"], **test.as_dict()}
    items: dict[str, dict[str, Any]] = {}
    for r in sorted(results, key=lambda r: r["position"]):
        entry = items.setdefault(
            r["item_id"],
            {"id": r["item_id"], "input": r["input"], "expected": r["expected"], "variants": {}},
        )
        entry["variants"][r["variant"]] = {
            "output": r["output"],
            "score": r["score"],
            "parts": r["parts"],
            "reasons": r["reasons"],
            "latency_ms": r["latency_ms"],
            "input_tokens": r["input_tokens"],
            "output_tokens": r["output_tokens"],
            "cost_usd": r["cost_usd"],
            "error": r["error"],
            "run_id": r["run_id"],
            "thread_id": r["thread_id"],
        }
    return {
        "experiment": {
            "id": experiment["experiment_id"],
            "name": experiment["name"],
            "assistant": experiment["assistant"],
            "dataset": experiment["dataset"],
            "dataset_hash": experiment["dataset_hash"],
            "items": experiment["items"],
            "status": experiment["status"],
            "created_at": _iso(experiment["created_at"]),
            "finished_at": _iso(experiment["finished_at"]),
            "scorers": experiment["scorers"],
            "pass_mark": PASS_MARK,
        },
        "variants": summaries,
        "comparison": comparison,
        "items": list(items.values()),
    }


def report_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, ensure_ascii=False, default=str)


def fmt(value: float | None, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


def _cell(text: Any, limit: int = 80) -> str:
    s = (
        ""
        if text is None
        else text
        if isinstance(text, str)
        else json.dumps(text, ensure_ascii=False)
    )
    s = s.replace("|", "\\|").replace("\n", " ")
    return s if len(s) <= limit else s[: limit - 1] + "…"


def comparison_sentence(c: dict[str, Any]) -> str:
    effect = fmt(c["effect_size"], "+.2f") if c["effect_size"] is not None else "n/a"
    verdict = "significant at 0.05" if c["p_value"] < 0.05 else "not significant at 0.05"
    return (
        f"{c['b']} - {c['a']}: mean difference {c['mean_diff']:+.3f} over {c['n']} paired "
        f"items, p = {c['p_value']:.4f} ({c['method']}; {verdict}), effect size d_z = "
        f"{effect}; {c['b']} better on {c['wins_b']}, worse on {c['wins_a']}, tied on {c['ties']}."
    )


def report_markdown(report: dict[str, Any]) -> str:
    e = report["experiment"]
    out = [
        f"# Evaluation {e['name']}",
        "",
        f"Experiment `{e['id']}` · assistant `{e['assistant']}` · dataset `{e['dataset']}` "
        f"({e['items']} items, hash `{e['dataset_hash']}`) · {e['created_at']}",
        "",
        "## Summary",
        "",
        "| variant | runs with | mean score | median | pass rate (≥ "
        f"{e['pass_mark']}) | errors | latency p50 ms | p95 ms | tokens in/out | cost USD |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for v in report["variants"]:
        label = variant_label(v)
        out.append(
            f"| {v['name']} | {label} | {fmt(v['score']['mean'])} | "
            f"{fmt(v['score']['median'])} | {fmt(v['pass_rate'], '.0%')} | {v['errors']} | "
            f"{fmt(v['latency_ms']['p50'], '.0f')} | {fmt(v['latency_ms']['p95'], '.0f')} | "
            f"{v['tokens']['input']}/{v['tokens']['output']} | {fmt(v['cost_usd'], '.6f')} |"
        )
    scorers = list(report["variants"][0]["scorers"]) if report["variants"] else []
    if scorers:
        out += ["", "### Per scorer (mean)", "", "| variant | " + " | ".join(scorers) + " |"]
        out.append("|---|" + "---|" * len(scorers))
        for v in report["variants"]:
            out.append(
                f"| {v['name']} | " + " | ".join(fmt(v["scorers"][s]) for s in scorers) + " |"
            )
    if report["comparison"]:
        out += ["", "## Comparison", "", comparison_sentence(report["comparison"])]
    names = [v["name"] for v in report["variants"]]
    out += [
        "",
        "## Items",
        "",
        "| id | input | " + " | ".join(f"{n} answer | {n} score" for n in names) + " |",
    ]
    out.append("|---|---|" + "---|---|" * len(names))
    for item in report["items"]:
        cells = []
        for n in names:
            r = item["variants"].get(n, {})
            answer = f"error: {r['error']}" if r.get("error") else r.get("output")
            cells += [_cell(answer, 60), fmt(r.get("score"))]
        out.append(
            f"| {_cell(item['id'], 30)} | {_cell(item['input'], 60)} | " + " | ".join(cells) + " |"
        )
    return "\n".join(out) + "\n"
