"""What a run may be told to vary, and the experiment it belongs to: the ``configurable``
and metadata keys that ``dockyard eval`` and rollouts set on a run.

A run's ``config["configurable"]`` may carry:

* ``dockyard_prompt`` (``PROMPT_KEY``): ``{"name": "ticket-summary", "version": 3}`` or
  ``{"name": ..., "label": "staging"}`` — the prompt version the run should use. A graph
  that reads prompts honours it (the prompt registry reads this key); others ignore it.
* ``dockyard_model`` (``MODEL_KEY``): a model name under ``models:``. Every
  ``chat_model(...)`` call of the run goes to that model instead of the one it names
  (a mapping ``{"default": "alt"}`` replaces only the names it lists).

A run's ``metadata`` carries ``dockyard_experiment`` (``EXPERIMENT_KEY``):
``{"id": ..., "name": ..., "variant": ...}``, so runs made by an experiment can be found
and told apart; a run a rollout assigned carries ``dockyard_rollout`` (``ROLLOUT_KEY``):
``{"name": ..., "variant": "stable" | "candidate"}``, so quality, outcomes, metrics and
usage can be split by variant.

A leaf module: the CLI, the runtime, the providers and the prompt registry all read these
keys, and none of them should import another to learn a string.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

PROMPT_KEY = "dockyard_prompt"
MODEL_KEY = "dockyard_model"
EXPERIMENT_KEY = "dockyard_experiment"
ROLLOUT_KEY = "dockyard_rollout"


def parse_prompt_ref(text: str) -> dict[str, Any]:
    """``NAME@VERSION`` (an integer version) or ``NAME@LABEL`` or ``NAME`` (label
    ``production``) as the ``dockyard_prompt`` value; ``ValueError`` when malformed."""
    name, sep, ref = text.strip().partition("@")
    if not name or (sep and not ref):
        raise ValueError(f"{text!r}: expected NAME@VERSION (e.g. ticket-summary@3) or NAME@LABEL")
    if not sep:
        return {"name": name, "label": "production"}
    if ref.isdigit():
        return {"name": name, "version": int(ref)}
    return {"name": name, "label": ref}


STABLE = "stable"
CANDIDATE = "candidate"
NO_VARIANT = "none"


def rollout_of(metadata: Mapping[str, Any] | None) -> tuple[str, str] | None:
    """(rollout name, variant) of a run a rollout assigned, from its metadata."""
    found = metadata.get(ROLLOUT_KEY) if metadata else None
    if not isinstance(found, Mapping):
        return None
    name, variant = found.get("name"), found.get("variant")
    if isinstance(name, str) and variant in (STABLE, CANDIDATE):
        return name, variant
    return None


def variant_of(metadata: Mapping[str, Any] | None) -> str:
    """``stable``, ``candidate`` or ``none``: a bounded label for metrics."""
    found = rollout_of(metadata)
    return found[1] if found else NO_VARIANT


def model_override(configurable: Mapping[str, Any] | None, name: str) -> str:
    """The model a ``chat_model(name)`` call goes to under the run's ``dockyard_model``."""
    if not configurable:
        return name
    chosen = configurable.get(MODEL_KEY)
    if isinstance(chosen, str) and chosen:
        return chosen
    if isinstance(chosen, Mapping):
        other = chosen.get(name)
        if isinstance(other, str) and other:
            return other
    return name
