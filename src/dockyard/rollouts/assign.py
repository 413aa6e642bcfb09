"""Which variant a new run gets, and what that changes on its spec.

A run of an assistant with a rollout gets ``metadata.dockyard_rollout = {"name", "variant"}``
(``variants.ROLLOUT_KEY``); a candidate run also gets the candidate in its
``config.configurable``: ``dockyard_prompt`` (``{"name", "version"}``) or
``dockyard_model``, which ``prompt()`` and ``chat_model()`` honour. A stable run is left
as it is. A run that already names a prompt or model there (``dockyard eval --prompt``) is
pinned: no rollout touches it.

The variant is sticky: a hash of the rollout's name and the run's subject (the user, or
the thread with ``sticky: thread``) below ``share`` gets the candidate, so the same user
gets the same variant on every run and every thread, and raising ``share`` only moves
users from stable to candidate. The user is, first found: ``metadata.user_id``,
``configurable.user_id``, the user of the project's auth handler, the API key; without
any, the thread (and a stateless run without one is drawn at random).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from typing import Any

from dockyard import caller
from dockyard.rollouts.board import RolloutBoard, Steering
from dockyard.run_spec import RunSpec
from dockyard.settings import RolloutConfig
from dockyard.variants import CANDIDATE, MODEL_KEY, PROMPT_KEY, ROLLOUT_KEY, STABLE

USER_KEY = "user_id"
OPENAI_USER_KEY = "user"  # where /v1/chat/completions keeps the request's `user`


def bucket(rollout: str, subject: str) -> float:
    """A stable number in [0, 1) for ``subject`` under ``rollout`` (another rollout
    draws another sample of users)."""
    digest = hashlib.sha256(f"{rollout}\0{subject}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def choose(
    name: str,
    config: RolloutConfig,
    *,
    user: str | None,
    keys: tuple[str, ...] = (),
    thread_id: str | None = None,
) -> str:
    """``candidate`` or ``stable`` for a run of ``user`` (named keys and users always get
    the candidate)."""
    if user is not None and user in config.users:
        return CANDIDATE
    if any(k in config.keys for k in keys):
        return CANDIDATE
    subject = (thread_id or user) if config.sticky == "thread" else (user or thread_id)
    if subject is None:
        subject = uuid.uuid4().hex
    return CANDIDATE if bucket(name, subject) < config.share else STABLE


def _user(metadata: Mapping[str, Any], configurable: Mapping[str, Any]) -> str | None:
    for found in (
        metadata.get(USER_KEY),
        configurable.get(USER_KEY),
        metadata.get(OPENAI_USER_KEY),
    ):
        if isinstance(found, str | int) and not isinstance(found, bool) and str(found):
            return str(found)
    who = caller.current()
    if who is None:
        return None
    identity = getattr(who.user, "identity", None)
    if isinstance(identity, str) and identity:
        return identity
    return who.key_id


def _keys() -> tuple[str, ...]:
    who = caller.current()
    if who is None:
        return ()
    return tuple(k for k in (who.name, who.key_id) if k)


def assign(
    board: RolloutBoard,
    spec: RunSpec,
    assistant_name: str | None,
    graph_id: str,
    thread_id: str | None,
) -> RunSpec:
    """``spec`` with its rollout variant, or as it is when no rollout applies."""
    steering = board.for_assistant(assistant_name, graph_id)
    if steering is None:
        return spec
    config = dict(spec.config or {})
    configurable = dict(config.get("configurable") or {})
    metadata = dict(spec.metadata)
    # Only an assignment says which variant a run is: a client's own key goes.
    forged = metadata.pop(ROLLOUT_KEY, None) is not None
    if PROMPT_KEY in configurable or MODEL_KEY in configurable:
        # Pinned by the caller (an eval's variant).
        return spec.replace(metadata=metadata) if forged else spec
    if steering.state == "promoted":
        variant = CANDIDATE  # a promoted model rollout: every run, not split any more
    else:
        user = _user(spec.metadata, configurable)
        variant = choose(
            steering.name, steering.config, user=user, keys=_keys(), thread_id=thread_id
        )
    if steering.state == "active":
        metadata[ROLLOUT_KEY] = {"name": steering.name, "variant": variant}
    if variant == CANDIDATE:
        _steer(steering, configurable)
        config["configurable"] = configurable
        return spec.replace(config=config, metadata=metadata)
    return spec.replace(metadata=metadata)


def _steer(steering: Steering, configurable: dict[str, Any]) -> None:
    candidate = steering.config.candidate
    if (ref := candidate.prompt_ref) is not None:
        configurable[PROMPT_KEY] = {"name": ref[0], "version": ref[1]}
    else:
        configurable[MODEL_KEY] = candidate.model
