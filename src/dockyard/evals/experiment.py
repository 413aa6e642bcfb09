"""One evaluation from start to report: store the experiment, run and score every item
under every variant, store the results and the summary."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dockyard.evals.dataset import Item, fingerprint
from dockyard.evals.html import report_html
from dockyard.evals.report import build_report, report_json, report_markdown
from dockyard.evals.runner import Experiment, ProgressHook, Variant, run_items
from dockyard.quality import CombinedScorer
from dockyard.storage.base import EvalExperiment, EvalResult, EvalStore


async def run_experiment(
    store: EvalStore,
    target: Any,
    items: Sequence[Item],
    *,
    dataset: str,
    assistant: str,
    variants: Sequence[Variant],
    scorer: CombinedScorer,
    scorer_specs: Sequence[dict[str, Any]],
    name: str | None = None,
    concurrency: int = 4,
    on_result: ProgressHook | None = None,
) -> tuple[EvalExperiment, list[EvalResult]]:
    experiment_id = str(uuid.uuid4())
    now = datetime.now(UTC)
    row = EvalExperiment(
        experiment_id=experiment_id,
        name=name or f"{assistant}-{now:%Y%m%d-%H%M%S}",
        assistant=assistant,
        dataset=dataset,
        dataset_hash=fingerprint(items),
        items=len(items),
        variants=[v.as_dict() for v in variants],
        scorers=list(scorer_specs),
        status="running",
        summary=None,
        created_at=now,
        finished_at=None,
    )
    await store.create(row)
    try:
        results = await run_items(
            Experiment(experiment_id, row["name"], assistant, variants),
            items,
            target,
            scorer,
            concurrency=concurrency,
            on_result=on_result,
        )
        await store.add_results(results)
    except BaseException:
        await store.finish(
            experiment_id, status="failed", summary=None, finished_at=datetime.now(UTC)
        )
        raise
    report = build_report({**row, "status": "done"}, results)
    summary = {"variants": report["variants"], "comparison": report["comparison"]}
    done = await store.finish(
        experiment_id, status="done", summary=summary, finished_at=datetime.now(UTC)
    )
    return done, results


def write_reports(report: dict[str, Any], out: Path, *, png: bool = True) -> list[Path]:
    """report.json, report.md, report.html (and the PNG charts) in ``out``."""
    from dockyard.evals.charts import write_pngs

    out.mkdir(parents=True, exist_ok=True)
    written = []
    for file, text in (
        ("report.json", report_json(report)),
        ("report.md", report_markdown(report)),
        ("report.html", report_html(report)),
    ):
        path = out / file
        path.write_text(text, encoding="utf-8")
        written.append(path)
    if png:
        written += write_pngs(report, out)
    return written


def mean_scores(report: dict[str, Any]) -> dict[str, float]:
    return {v["name"]: v["score"]["mean"] or 0.0 for v in report["variants"]}


__all__ = ["build_report", "mean_scores", "run_experiment", "write_reports"]
