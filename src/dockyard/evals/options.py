"""What ``dockyard eval``'s options mean: the scorer specs (files, ``--scorer``) and the
variants (``--prompt``, ``--model``, ``--compare``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from dockyard.evals.runner import Variant
from dockyard.quality import load_specs, parse_specs
from dockyard.variants import parse_prompt_ref

DEFAULT_SCORERS = [{"type": "exact"}]


def scorer_specs(files: list[Path], inline: list[str]) -> list[dict[str, Any]]:
    """Scorer specs as plain dicts (stored with the experiment): from files, then each
    ``--scorer`` (a JSON/YAML object, or just a type such as ``exact``)."""
    specs: list[Any] = []
    for path in files:
        specs += load_specs(path)
    for text in inline:
        data = yaml.safe_load(text) if text.lstrip().startswith(("{", "[")) else {"type": text}
        specs += parse_specs(data, f"--scorer {text!r}")
    if not specs:
        specs = parse_specs(DEFAULT_SCORERS)
    return [s.model_dump(exclude_defaults=True, by_alias=True) | {"type": s.type} for s in specs]


def parse_variants(prompt: str | None, model: str | None, compare: str | None) -> list[Variant]:
    """Variant A from ``--prompt`` / ``--model``; with ``--compare``, variant B: A with
    what ``compare`` changes (``prompt:NAME@REF``, ``model:NAME``, comma-separated, or a
    bare value). ``ValueError`` when malformed or the same as A."""
    base_prompt = parse_prompt_ref(prompt) if prompt else None
    a = Variant("A", base_prompt, model)
    if compare is None:
        return [a]
    b_prompt, b_model = base_prompt, model
    for part in compare.split(","):
        kind, sep, value = part.strip().partition(":")
        if not sep:
            # Bare: the kind the baseline was given; with neither, NAME@REF is a prompt.
            value = part.strip()
            if prompt or model:
                kind = "model" if model and not prompt else "prompt"
            else:
                kind = "prompt" if "@" in value else "model"
        if kind == "prompt":
            b_prompt = parse_prompt_ref(value)
        elif kind == "model":
            b_model = value.strip()
        else:
            raise ValueError(f"--compare {compare!r}: use prompt:NAME@VERSION and/or model:NAME")
    b = Variant("B", b_prompt, b_model)
    if (b.prompt, b.model) == (a.prompt, a.model):
        raise ValueError(f"--compare {compare!r} is the same as the baseline")
    return [a, b]
