"""The request-level policies a run's typed spec passes before anything of it is stored:
the run service calls :meth:`Admission.admit` for every run it creates or validates."""

from __future__ import annotations

import asyncio
import logging

from dockyard.policies.budget import Budgets
from dockyard.policies.input_guard import InputGuard
from dockyard.policies.input_schema import Schema
from dockyard.rollouts import RolloutBoard, assign
from dockyard.run_spec import RunSpec
from dockyard.runtime.assistants import configured_assistant_id
from dockyard.runtime.graph_schemas import graph_schemas
from dockyard.runtime.graphs import GraphRegistry
from dockyard.settings import Settings
from dockyard.storage.base import Assistant

log = logging.getLogger("dockyard.runtime")


class Admission:
    def __init__(
        self,
        settings: Settings,
        registry: GraphRegistry,
        budgets: Budgets | None = None,
        rollouts: RolloutBoard | None = None,
    ) -> None:
        config = settings.policies.input
        # Built now: a rule that cannot be used stops start-up.
        self.input_guard = InputGuard(config) if config is not None else None
        # Assistants of `assistants:` whose input block is their own (None: off for them).
        self.assistant_guards: dict[str, InputGuard | None] = {}
        for name, own in settings.assistants.items():
            if "input" in own.policies.model_fields_set:
                guard = own.policies.input
                self.assistant_guards[configured_assistant_id(name)] = (
                    InputGuard(guard) if guard is not None else None
                )
        self.registry = registry
        self.budgets = budgets
        # The rollouts' board: a run of an assistant with a rollout gets its variant.
        self.rollouts = rollouts
        self._schemas: dict[str, Schema | None] = {}

    def guard_for(self, assistant_id: str) -> InputGuard | None:
        """The input guard of ``assistant_id``'s runs."""
        return self.assistant_guards.get(assistant_id, self.input_guard)

    async def admit(
        self, spec: RunSpec, assistant: Assistant, thread_id: str | None = None
    ) -> RunSpec:
        """The spec to run (a policy may annotate it, a rollout assign its variant), or
        the policy's refusal."""
        if self.budgets is not None:
            spec = self.budgets.admit_spec(spec)
        guard = self.guard_for(assistant["assistant_id"])
        if guard is not None:
            schema = None
            if guard.validates_schema and spec.input is not None:
                schema = await self._input_schema(assistant["graph_id"])
            spec = guard.check(spec, schema)
        if self.rollouts is not None:
            spec = assign(
                self.rollouts, spec, assistant.get("name"), assistant["graph_id"], thread_id
            )
        return spec

    async def hold(self, run_id: str, spec: RunSpec) -> bool:
        """Hold the run's estimated cost on its caller's budgets (``BudgetExceededError``
        when one has no room); True when something is held, to settle or ``release``."""
        if self.budgets is None:
            return False
        return await self.budgets.hold_for_run(run_id, spec)

    async def release(self, run_id: str) -> None:
        """The run was not created (or ended without an attempt): its hold goes."""
        if self.budgets is not None:
            await self.budgets.release(run_id)

    async def _input_schema(self, graph_id: str) -> Schema | None:
        # Per graph name: a factory's graph is built anew for each run, its schema is not.
        if graph_id in self._schemas:
            return self._schemas[graph_id]
        try:
            graph = await self.registry.get(graph_id)
        except Exception as exc:  # a factory that needs a run's config: no schema to check
            log.debug("input schema of graph %r: %s: %s", graph_id, type(exc).__name__, exc)
            schema = None
        else:
            # Describing LangChain's message types takes pydantic a tenth of a second.
            schema = (await asyncio.to_thread(graph_schemas, graph))["input_schema"]
        self._schemas[graph_id] = schema
        return schema
