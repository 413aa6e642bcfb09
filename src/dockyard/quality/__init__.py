"""Quality scorers: each takes an answer (with its source and what was expected) and
returns a ``Score`` in 0..1 with reasons and parts. ``dockyard eval`` scores dataset
items with them; the quality gate scores live answers with the same ones.

    from dockyard.quality import Sample, build_scorer, parse_specs

    scorer = build_scorer(parse_specs([
        {"type": "contains", "values": ["refund"]},
        {"type": "length", "max_words": 120, "weight": 0.5},
    ]))
    score = await scorer.score(Sample(answer="…", source="the ticket"))
    score.value, score.reasons, score.parts

Kinds (one module each): ``match`` (exact, contains, regex), ``schema`` (JSON Schema),
``rules`` (length, required fields or sections, forbidden phrases, PII leak, overlap
with the source), ``language`` (a script heuristic), ``judge`` (an LLM with a rubric),
``custom`` (a Python ``module:function``); ``combine`` weighs them; ``specs`` declares
them as data. docs/evals.md has the reference.
"""

from dockyard.quality.base import RuleScorer, Sample, Score, Scorer, clamp, text_of
from dockyard.quality.combine import CombinedScorer
from dockyard.quality.custom import CallableScorer
from dockyard.quality.judge import JudgeScorer, parse_verdict
from dockyard.quality.language import LanguageScorer, script_ratios
from dockyard.quality.match import ContainsScorer, ExactScorer, RegexScorer
from dockyard.quality.rules import (
    ForbiddenScorer,
    LengthScorer,
    OverlapScorer,
    PiiLeakScorer,
    RequiredScorer,
)
from dockyard.quality.schema import JsonSchemaScorer, parse_json_answer
from dockyard.quality.specs import ScorerSpec, build_scorer, load_specs, parse_specs

__all__ = [
    "CallableScorer",
    "CombinedScorer",
    "ContainsScorer",
    "ExactScorer",
    "ForbiddenScorer",
    "JsonSchemaScorer",
    "JudgeScorer",
    "LanguageScorer",
    "LengthScorer",
    "OverlapScorer",
    "PiiLeakScorer",
    "RegexScorer",
    "RequiredScorer",
    "RuleScorer",
    "Sample",
    "Score",
    "Scorer",
    "ScorerSpec",
    "build_scorer",
    "clamp",
    "load_specs",
    "parse_json_answer",
    "parse_specs",
    "parse_verdict",
    "script_ratios",
    "text_of",
]
