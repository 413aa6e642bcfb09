"""What ``--prompt``, ``--model``, ``--compare`` and ``--scorer`` turn into."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.evals.options import parse_variants, scorer_specs
from dockyard.variants import model_override, parse_prompt_ref


def test_prompt_refs() -> None:
    assert parse_prompt_ref("summary@3") == {"name": "summary", "version": 3}
    assert parse_prompt_ref("summary@staging") == {"name": "summary", "label": "staging"}
    assert parse_prompt_ref("summary") == {"name": "summary", "label": "production"}
    for bad in ("@3", "summary@", ""):
        with pytest.raises(ValueError, match="NAME@VERSION"):
            parse_prompt_ref(bad)


def test_model_override_key() -> None:
    assert model_override({"dockyard_model": "alt"}, "default") == "alt"
    assert model_override({"dockyard_model": {"default": "alt"}}, "judge") == "judge"
    assert model_override({"dockyard_model": {"default": "alt"}}, "default") == "alt"
    assert model_override({}, "default") == "default" and model_override(None, "x") == "x"


@pytest.mark.parametrize(
    ("prompt", "model", "compare", "b"),
    [
        ("s@1", None, "s@2", ({"name": "s", "version": 2}, None)),
        (None, "default", "alt", (None, "alt")),
        ("s@1", "default", "model:alt", ({"name": "s", "version": 1}, "alt")),
        (None, None, "prompt:s@2,model:alt", ({"name": "s", "version": 2}, "alt")),
        (None, None, "s@2", ({"name": "s", "version": 2}, None)),
        (None, None, "alt", (None, "alt")),
    ],
)
def test_compare_builds_variant_b_from_a(
    prompt: str | None, model: str | None, compare: str, b: tuple[object, object]
) -> None:
    a_variant, b_variant = parse_variants(prompt, model, compare)
    assert (a_variant.name, b_variant.name) == ("A", "B")
    assert (b_variant.prompt, b_variant.model) == b
    assert b_variant.configurable() == {
        k: v for k, v in (("dockyard_prompt", b[0]), ("dockyard_model", b[1])) if v is not None
    }


def test_compare_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="same as the baseline"):
        parse_variants("s@1", None, "s@1")
    with pytest.raises(ValueError, match="use prompt:NAME@VERSION"):
        parse_variants(None, None, "colour:red")
    assert [v.name for v in parse_variants(None, None, None)] == ["A"]


def test_scorer_options(tmp_path: Path) -> None:
    assert scorer_specs([], []) == [{"type": "exact"}]
    path = tmp_path / "s.json"
    path.write_text('[{"type": "json_schema", "schema": {"type": "object"}, "weight": 2}]')
    specs = scorer_specs([path], ["contains", '{"type": "regex", "pattern": "x", "name": "r"}'])
    assert specs == [
        {"type": "json_schema", "schema": {"type": "object"}, "weight": 2.0},
        {"type": "contains"},
        {"type": "regex", "pattern": "x", "name": "r"},
    ]
    with pytest.raises(ValueError, match="--scorer 'nope'"):
        scorer_specs([], ["nope"])
