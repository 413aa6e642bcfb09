"""The answer as JSON, checked against a JSON Schema (the ``jsonschema`` package, imported
when a schema scorer is built: nothing else needs it)."""

from __future__ import annotations

import json
import re
from typing import Any

from dockyard.quality.base import RuleScorer, Sample, Score

_FENCE = re.compile(r"```(?:json)?\s*\n(.*?)\n?```", re.DOTALL)
MAX_REASONS = 5


def parse_json_answer(text: str) -> tuple[bool, Any]:
    """(parsed, value): the answer as JSON, the way models give it — bare, in a fenced
    block, or as the outermost ``{...}`` / ``[...]`` with prose around it."""
    candidates = [text.strip()]
    candidates += [m.group(1).strip() for m in _FENCE.finditer(text)]
    for open_, close in (("{", "}"), ("[", "]")):
        start, end = text.find(open_), text.rfind(close)
        if 0 <= start < end:
            candidates.append(text[start : end + 1])
    for candidate in candidates:
        try:
            return True, json.loads(candidate)
        except ValueError:
            continue
    return False, None


class JsonSchemaScorer(RuleScorer):
    """1 when the answer is JSON valid under ``schema`` (the item's ``metadata["schema"]``
    when none is given); 0 otherwise, with the first few violations as reasons. Parts:
    ``json`` (it parses) and ``schema`` (it validates)."""

    def __init__(self, schema: dict[str, Any] | None = None, *, name: str = "json_schema") -> None:
        import jsonschema

        self._jsonschema = jsonschema
        if schema is not None:
            jsonschema.validators.validator_for(schema).check_schema(schema)
        self.schema = schema
        self._validator = self._make(schema) if schema is not None else None
        self.name = name

    def _make(self, schema: dict[str, Any]) -> Any:
        cls = self._jsonschema.validators.validator_for(schema)
        return cls(schema)

    def check(self, sample: Sample) -> Score:
        validator = self._validator
        if validator is None:
            schema = sample.metadata.get("schema")
            if not isinstance(schema, dict):
                return Score(0.0, ["no JSON schema given (scorer setting or metadata.schema)"])
            validator = self._make(schema)
        parsed, value = parse_json_answer(sample.answer)
        if not parsed:
            return Score(0.0, ["answer is not JSON"], {"json": 0.0, "schema": 0.0})
        errors = sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
        if not errors:
            return Score(1.0, [], {"json": 1.0, "schema": 1.0})
        reasons = [
            f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}"
            for e in errors[:MAX_REASONS]
        ]
        if len(errors) > MAX_REASONS:
            reasons.append(f"and {len(errors) - MAX_REASONS} more violations")
        return Score(0.0, reasons, {"json": 1.0, "schema": 0.0})
