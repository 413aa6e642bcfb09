"""Input guardrails (``policies.input``): what a run request must pass before anything of it
is stored. The run service calls :meth:`InputGuard.check` with the request's typed
:class:`~dockyard.run_spec.RunSpec` for every run it creates (the Agent Server run routes,
batch, crons, ``/v1/chat/completions`` and ``/chat``), so no route has a branch of its own.

In order:

1. size: characters and estimated tokens of the request's text (``input_limits``) →
   413 ``input_too_large`` naming the limit. (The body's bytes are capped earlier, unread,
   by ``api/body_limit.py``: ``policies.input.max_body_bytes`` there.)
2. the graph's input schema, when it has one (``input_schema``) → 422 ``invalid_input``
   naming the field;
3. prompt-injection rules (``injection``): ``block`` → 422 ``input_rejected`` naming the
   rule, never the text; ``flag`` → the run goes ahead with the matches recorded in its
   metadata under ``dockyard_input_flags`` (``[{"rule", "at"}]``); ``off``.
"""

from __future__ import annotations

import logging
from typing import Any

from dockyard.errors import InputRejectedError, InvalidRequestError
from dockyard.policies.injection import InjectionRules
from dockyard.policies.input_limits import Text, check_size, request_texts
from dockyard.policies.input_schema import Schema, input_problem
from dockyard.run_spec import RunSpec
from dockyard.settings import InputGuardConfig

log = logging.getLogger("dockyard.policies.input")

FLAGS_KEY = "dockyard_input_flags"
"""The run metadata key under which ``flag`` records what matched: ``[{"rule", "at"}]``."""


class InputGuard:
    def __init__(self, config: InputGuardConfig) -> None:
        self.config = config
        self.rules = (
            InjectionRules.build(config.injection_rules, config.disabled_rules)
            if config.injection != "off"
            else None
        )

    @property
    def validates_schema(self) -> bool:
        return self.config.validate_schema

    def check(self, spec: RunSpec, input_schema: Schema | None = None) -> RunSpec:
        """The spec to run, or a refusal. ``input_schema``: the graph's, when it has one
        and ``validate_schema`` is on. Under ``flag`` the returned spec's metadata says
        what matched; a client's own ``dockyard_input_flags`` is never kept."""
        cfg = self.config
        texts = request_texts(spec, cfg.text_fields)
        check_size(texts, max_chars=cfg.max_chars, max_tokens=cfg.max_tokens)
        problem = input_problem(spec.input, input_schema) if input_schema is not None else None
        if problem is not None and spec.input is not None:
            field, what = problem
            raise InvalidRequestError(
                f"{field}: {what}; the graph's input schema is at "
                "GET /assistants/{assistant_id}/schemas",
                code="invalid_input",
                param=field,
            )
        flags = self._injections(texts)
        metadata: dict[str, Any] | None = None
        if flags:
            metadata = {**spec.metadata, FLAGS_KEY: flags}
        elif FLAGS_KEY in spec.metadata:
            metadata = {k: v for k, v in spec.metadata.items() if k != FLAGS_KEY}
        return spec if metadata is None else spec.replace(metadata=metadata)

    def _injections(self, texts: list[Text]) -> list[dict[str, str]]:
        scanned = [t for t in texts if t.scanned]
        if self.rules is None or not scanned:
            return []
        # Clean input, the common case, costs one pass over all of it (a match in one piece
        # is a match in the whole); the pieces are searched one by one only to say which.
        if (
            len(scanned) > 1
            and self.rules.first_match("\n\n".join(t.text for t in scanned)) is None
        ):
            return []
        flags: list[dict[str, str]] = []
        for t in scanned:
            rule = self.rules.first_match(t.text)
            if rule is None:
                continue
            if self.config.injection == "block":
                raise InputRejectedError(
                    f"the input guardrail refused the request: prompt-injection rule "
                    f"{rule.id!r} ({rule.description}) matched {t.where}; rephrase the "
                    "message",
                    rule=rule.id,
                    param=t.where,
                )
            flags.append({"rule": rule.id, "at": t.where})
        if flags:
            # Rule ids and places only: the text may be anyone's.
            log.info("run input flagged: %s", ", ".join(f"{f['rule']}@{f['at']}" for f in flags))
        return flags


__all__ = ["FLAGS_KEY", "InputGuard"]
