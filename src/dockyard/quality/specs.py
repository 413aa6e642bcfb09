"""Scorers declared as data: one pydantic model per kind, told apart by ``type``, so a
YAML or JSON file (``dockyard eval --scorers``) or dockyard.yaml can list them::

    - {type: contains, values: [refund], weight: 0.5}
    - {type: regex, pattern: "^\\\\d{4}-\\\\d{2}-\\\\d{2}$", name: date}
    - {type: length, max_words: 120}
    - {type: language, language: ko}
    - {type: judge, model: default, rubric: "Is the summary faithful?", weight: 2}
    - {type: python, function: "my_scorers:polite"}

``build_scorer`` turns a list into a ``CombinedScorer``. Unknown keys are errors.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from dockyard.policies.pii.detect import ENTITIES
from dockyard.quality.base import Scorer
from dockyard.quality.combine import CombinedScorer
from dockyard.quality.custom import CallableScorer
from dockyard.quality.judge import JudgeScorer, ModelLookup
from dockyard.quality.language import LANGUAGES, LanguageScorer
from dockyard.quality.match import ContainsScorer, ExactScorer, RegexScorer
from dockyard.quality.rules import (
    ForbiddenScorer,
    LengthScorer,
    OverlapScorer,
    PiiLeakScorer,
    RequiredScorer,
)
from dockyard.quality.schema import JsonSchemaScorer

RubricLookup = Callable[[str], str | Awaitable[str]]
"""Text of a rubric prompt by reference (``NAME@LABEL``): given by who owns the prompt
registry; without one, ``rubric_prompt`` is refused."""


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = None
    """Its label in reports and combinations (default: its type)."""
    weight: float = Field(default=1.0, ge=0)


class ExactSpec(_Spec):
    type: Literal["exact"]
    value: str | None = None
    case_sensitive: bool = True
    collapse_space: bool = True


class ContainsSpec(_Spec):
    type: Literal["contains"]
    values: list[str] | None = None
    mode: Literal["all", "any"] = "all"
    case_sensitive: bool = False


class RegexSpec(_Spec):
    type: Literal["regex"]
    pattern: str
    must_match: bool = True
    ignore_case: bool = False


class JsonSchemaSpec(_Spec):
    type: Literal["json_schema"]
    json_schema: dict[str, Any] | None = Field(default=None, alias="schema")


class LengthSpec(_Spec):
    type: Literal["length"]
    min_chars: int | None = Field(default=None, ge=0)
    max_chars: int | None = Field(default=None, ge=1)
    min_words: int | None = Field(default=None, ge=0)
    max_words: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _some_bound(self) -> LengthSpec:
        if all(v is None for v in (self.min_chars, self.max_chars, self.min_words, self.max_words)):
            raise ValueError("length: give min_chars, max_chars, min_words or max_words")
        return self


class RequiredSpec(_Spec):
    type: Literal["required"]
    fields: list[str] = Field(default_factory=list)
    sections: list[str] = Field(default_factory=list)


class LanguageSpec(_Spec):
    type: Literal["language"]
    language: str
    min_ratio: float = Field(default=0.6, gt=0, le=1)

    @model_validator(mode="after")
    def _known(self) -> LanguageSpec:
        if self.language not in LANGUAGES:
            raise ValueError(f"language {self.language!r}: known {', '.join(sorted(LANGUAGES))}")
        return self


class ForbiddenSpec(_Spec):
    type: Literal["forbidden"]
    phrases: list[str] = Field(min_length=1)
    case_sensitive: bool = False


class PiiSpec(_Spec):
    type: Literal["pii"]
    entities: list[Literal["email", "phone", "kr_rrn", "credit_card", "ip"]] = Field(
        default_factory=lambda: list(ENTITIES)  # type: ignore[arg-type]
    )
    allow_from_source: bool = True


class OverlapSpec(_Spec):
    type: Literal["overlap"]
    min_ratio: float = Field(default=0.3, ge=0, le=1)
    max_ratio: float | None = Field(default=None, ge=0, le=1)


class JudgeSpec(_Spec):
    type: Literal["judge"]
    model: str = "default"
    rubric: str | None = None
    rubric_file: Path | None = None
    rubric_prompt: str | None = None
    """A prompt of the registry, ``NAME@LABEL`` or ``NAME@VERSION``."""
    scale: float = Field(default=1.0, gt=0)

    @model_validator(mode="after")
    def _one_rubric(self) -> JudgeSpec:
        given = [x for x in (self.rubric, self.rubric_file, self.rubric_prompt) if x is not None]
        if len(given) != 1:
            raise ValueError("judge: give exactly one of rubric, rubric_file, rubric_prompt")
        return self


class PythonSpec(_Spec):
    type: Literal["python"]
    function: str


class RulesSpec(_Spec):
    """A named set of scorers combined by their weights, scored as one part."""

    type: Literal["rules"]
    rules: list[ScorerSpec] = Field(min_length=1)


ScorerSpec = Annotated[
    ExactSpec
    | ContainsSpec
    | RegexSpec
    | JsonSchemaSpec
    | LengthSpec
    | RequiredSpec
    | LanguageSpec
    | ForbiddenSpec
    | PiiSpec
    | OverlapSpec
    | JudgeSpec
    | PythonSpec
    | RulesSpec,
    Field(discriminator="type"),
]
RulesSpec.model_rebuild()
_SPECS: TypeAdapter[list[ScorerSpec]] = TypeAdapter(list[ScorerSpec])


def parse_specs(data: Any, where: str = "scorers") -> list[ScorerSpec]:
    """Specs from parsed YAML/JSON: a list, or ``{"scorers": [...]}``; ``ValueError``
    naming the bad entry otherwise."""
    if isinstance(data, dict) and "scorers" in data:
        data = data["scorers"]
    if isinstance(data, dict):
        data = [data]
    try:
        return _SPECS.validate_python(data)
    except ValidationError as e:
        problems = [
            f"{where}[{'.'.join(str(p) for p in err['loc'])}]: {err['msg']}" for err in e.errors()
        ]
        raise ValueError("; ".join(problems[:5])) from None


def load_specs(path: Path) -> list[ScorerSpec]:
    """Scorer specs from a YAML or JSON file."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ValueError(f"{path}: {e}") from None
    return parse_specs(data, str(path))


def _one(
    spec: ScorerSpec, base: Path, models: ModelLookup | None, rubrics: RubricLookup | None
) -> Scorer:
    name = spec.name or spec.type
    match spec:
        case ExactSpec():
            return ExactScorer(
                spec.value,
                case_sensitive=spec.case_sensitive,
                collapse_space=spec.collapse_space,
                name=name,
            )
        case ContainsSpec():
            return ContainsScorer(
                spec.values, mode=spec.mode, case_sensitive=spec.case_sensitive, name=name
            )
        case RegexSpec():
            return RegexScorer(
                spec.pattern, must_match=spec.must_match, ignore_case=spec.ignore_case, name=name
            )
        case JsonSchemaSpec():
            return JsonSchemaScorer(spec.json_schema, name=name)
        case LengthSpec():
            return LengthScorer(
                min_chars=spec.min_chars,
                max_chars=spec.max_chars,
                min_words=spec.min_words,
                max_words=spec.max_words,
                name=name,
            )
        case RequiredSpec():
            return RequiredScorer(fields=spec.fields, sections=spec.sections, name=name)
        case LanguageSpec():
            return LanguageScorer(spec.language, min_ratio=spec.min_ratio, name=name)
        case ForbiddenSpec():
            return ForbiddenScorer(spec.phrases, case_sensitive=spec.case_sensitive, name=name)
        case PiiSpec():
            return PiiLeakScorer(
                entities=spec.entities, allow_from_source=spec.allow_from_source, name=name
            )
        case OverlapSpec():
            return OverlapScorer(min_ratio=spec.min_ratio, max_ratio=spec.max_ratio, name=name)
        case JudgeSpec():
            return JudgeScorer(
                _rubric(spec, base, rubrics),
                model=spec.model,
                models=models,
                scale=spec.scale,
                name=name,
            )
        case PythonSpec():
            return CallableScorer(spec.function, name=name)
        case RulesSpec():
            return build_scorer(spec.rules, base=base, models=models, rubrics=rubrics, name=name)
    raise AssertionError(spec)  # pragma: no cover - the union is exhaustive


def _rubric(spec: JudgeSpec, base: Path, rubrics: RubricLookup | None) -> Any:
    if spec.rubric is not None:
        return spec.rubric
    if spec.rubric_file is not None:
        path = spec.rubric_file if spec.rubric_file.is_absolute() else base / spec.rubric_file
        try:
            return path.read_text()
        except OSError as e:
            raise ValueError(f"judge rubric_file {path}: {e.strerror}") from None
    ref = spec.rubric_prompt
    assert ref is not None
    if rubrics is None:
        raise ValueError(
            f"judge rubric_prompt {ref!r}: no prompt registry to read it from here; "
            "give the rubric as text (rubric) or a file (rubric_file)"
        )
    return lambda: rubrics(ref)


def build_scorer(
    specs: Sequence[ScorerSpec],
    *,
    base: Path = Path("."),
    models: ModelLookup | None = None,
    rubrics: RubricLookup | None = None,
    name: str = "combined",
) -> CombinedScorer:
    """The scorers of ``specs`` combined by their weights. ``base``: the folder relative
    paths are read from; ``models``: the judge's model lookup; ``rubrics``: the prompt
    registry's text lookup for ``rubric_prompt``."""
    return CombinedScorer([(_one(s, base, models, rubrics), s.weight) for s in specs], name=name)
