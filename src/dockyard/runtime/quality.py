"""The quality gate, wired: scorers from ``quality/`` into the model chain's gate
(``policies/quality_gate.py``), and each scored run into the metric and the alert store.

``install`` runs when the models are built (``runtime.graphs.load_registry``): it checks
every ``quality`` block's scorers (a bad one stops start-up, naming where it is), gives
the chain the grader factory and the cache its quality hook. A judge's model is the
run's (``models:`` name, under the assistant's policies), its call hidden from the
run's ``messages`` stream; a judge's ``rubric_prompt`` is read from the prompt registry
when it scores (``NAME@LABEL`` follows the label).

``QualityRecorder`` is a run observer: the run's usage tally noted the score the gate
marked on its last scored answer (``usage.quality``); when the run ends the score goes to
``dockyard_quality_score`` and to ``quality_scores`` (the quality alert rule, rollouts).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import cast

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage
from langgraph.constants import TAG_NOSTREAM

from dockyard.errors import ConfigError
from dockyard.observability.metrics import Metrics
from dockyard.observability.run_metrics import OTHER, observe_quality
from dockyard.policies.chain import ModelChain
from dockyard.policies.quality_gate import Graded, Grader, SyncGrader, marked_score
from dockyard.prompt_source import prompt
from dockyard.providers.registry import run_registry
from dockyard.quality import CombinedScorer, Sample, build_scorer, parse_specs, text_of
from dockyard.quality.specs import JudgeSpec, RulesSpec, ScorerSpec
from dockyard.runtime.observers import Outcome, RunObserver
from dockyard.runtime.usage import Usage
from dockyard.settings import QualityConfig, Settings
from dockyard.storage.alerts import AlertStore
from dockyard.storage.base import Run
from dockyard.variants import ROLLOUT_KEY, parse_prompt_ref

log = logging.getLogger("dockyard.quality")


def quality_blocks(settings: Settings) -> list[tuple[str, QualityConfig]]:
    """Every ``quality`` block in effect, with where it is set."""
    out = [("policies.quality", settings.policies.quality)]
    out += [
        (f"assistants.{name}.policies.quality", a.policies.quality)
        for name, a in settings.assistants.items()
        if "quality" in a.policies.model_fields_set
    ]
    return [(where, q) for where, q in out if q is not None]


def install(chain: ModelChain, settings: Settings) -> None:
    """Check every quality block now; give ``chain`` (and its assistants' chains) the
    grader factory and the cache the gate's marks as its quality hook."""
    for where, config in quality_blocks(settings):
        build(config, settings, where)
    chain.set_grader(lambda config: build(config, settings, "quality"))
    chain.set_quality(marked_score)


def build(
    config: QualityConfig, settings: Settings, where: str
) -> tuple[Grader, SyncGrader | None]:
    """The grader of ``config``: async, and sync when every scorer is a rule."""
    try:
        specs = parse_specs(config.scorers, f"{where}.scorers")
        for ref in _rubric_refs(specs):
            parse_prompt_ref(ref)
        scorer = build_scorer(
            specs, base=settings.project_dir, models=_judge_model, rubrics=_rubric_text
        )
    except ValueError as e:
        raise ConfigError(f"{where}: {e}", code="invalid_quality") from None
    return _grader(scorer), _checker(scorer) if scorer.is_rules else None


def _rubric_refs(specs: Sequence[ScorerSpec]) -> list[str]:
    out: list[str] = []
    for spec in specs:
        if isinstance(spec, JudgeSpec) and spec.rubric_prompt is not None:
            out.append(spec.rubric_prompt)
        elif isinstance(spec, RulesSpec):
            out += _rubric_refs(spec.rules)
    return out


def _sample(text: str, messages: Sequence[BaseMessage]) -> Sample:
    # The source an answer is about: what the user (or the graph, as a human message)
    # last gave the model, e.g. the ticket to summarize.
    source = next((m for m in reversed(messages) if isinstance(m, HumanMessage)), None)
    return Sample(answer=text, source=text_of(source) if source else "", messages=messages)


def _grader(scorer: CombinedScorer) -> Grader:
    async def grade(text: str, messages: Sequence[BaseMessage]) -> Graded:
        return await scorer.score(_sample(text, messages))

    return grade


def _checker(scorer: CombinedScorer) -> SyncGrader:
    def check(text: str, messages: Sequence[BaseMessage]) -> Graded:
        return scorer.check(_sample(text, messages))

    return check


def _judge_model(name: str) -> BaseChatModel:
    # The run's model under its assistant's policies; its tokens are not the answer's,
    # so LangGraph does not stream them to the client.
    model = run_registry().get(name).with_config(tags=[TAG_NOSTREAM])
    return cast(BaseChatModel, model)  # only ainvoke is called on it


def _rubric_text(ref: str) -> str:
    """A registry prompt's text as a rubric: a text prompt's template, a chat prompt's
    messages one after another (placeholders such as ``{answer}`` are the judge's)."""
    parsed = parse_prompt_ref(ref)
    spec = prompt(parsed["name"], label=parsed.get("label"), version=parsed.get("version")).spec
    if spec.template is not None:
        return spec.template
    return "\n\n".join(m.content for m in spec.messages)


class QualityRecorder(RunObserver):
    """Each ended run's score into the metric and ``quality_scores``."""

    def __init__(
        self, store: AlertStore, metrics: Metrics | None, assistants: Mapping[str, str]
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.assistants = dict(assistants)
        self._tasks: set[asyncio.Task[None]] = set()

    def on_ended(self, run: Run, outcome: Outcome, usage: Usage) -> None:
        quality = usage.quality
        if quality is None or outcome.rollback:
            return
        score = float(quality["score"])
        observe_quality(self.metrics, self.assistants.get(run["assistant_id"], OTHER), score)
        rollout = run["metadata"].get(ROLLOUT_KEY)
        variant = rollout.get("variant") if isinstance(rollout, dict) else None
        task = asyncio.create_task(
            self._record(run, score, variant if isinstance(variant, str) else None)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _record(self, run: Run, score: float, variant: str | None) -> None:
        try:
            await self.store.record_quality(
                run["run_id"], run["assistant_id"], score, datetime.now(UTC), variant=variant
            )
        except Exception:
            log.exception("quality score of run %s not recorded", run["run_id"])

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def recorder_needed(settings: Settings) -> bool:
    return bool(quality_blocks(settings))


__all__ = ["QualityRecorder", "build", "install", "quality_blocks", "recorder_needed"]
