"""Start, promote, abort and describe rollouts: what the API routes and ``dockyard
rollout`` do, over the database (any process sees a change at its next refresh)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from dockyard.errors import ConflictError, InvalidRequestError, NotFoundError
from dockyard.prompts.registry import PromptRegistry
from dockyard.rollouts.board import definition
from dockyard.rollouts.check import RollbackCheck
from dockyard.settings import RolloutConfig, Settings
from dockyard.storage.alerts import AlertStore
from dockyard.storage.rollouts import RolloutRecord, RolloutStore
from dockyard.variants import CANDIDATE, STABLE


class RolloutManager:
    def __init__(
        self,
        settings: Settings,
        store: RolloutStore,
        prompts: PromptRegistry,
        alerts: AlertStore,
    ) -> None:
        self.settings = settings
        self.store = store
        self.prompts = prompts
        self.alerts = alerts

    async def get(self, name: str) -> RolloutRecord:
        found = await self.store.get(name)
        if found is None:
            known = ", ".join(r.name for r in await self.store.list()) or "none"
            raise NotFoundError(
                f"no rollout named {name!r} (rollouts: {known})", code="rollout_not_found"
            )
        return found

    async def status(self, name: str | None = None) -> list[dict[str, Any]]:
        """Each rollout (or ``name``) with its variants' numbers over its window."""
        records = [await self.get(name)] if name else await self.store.list()
        now = datetime.now(UTC)
        check = RollbackCheck(self.store, self.alerts, [])
        out = []
        for r in records:
            row = r.as_dict()
            row["variants"] = {
                v: await check.measure(r, now, variant=v) for v in (STABLE, CANDIDATE)
            }
            out.append(row)
        return out

    async def start(self, name: str, config: RolloutConfig, *, by: str) -> RolloutRecord:
        """A rollout made over the API (a config file's ones start with the process)."""
        if problem := self.settings.rollout_problem(name, config):
            raise InvalidRequestError(problem, code="invalid_rollout", param="name")
        if (ref := config.candidate.prompt_ref) is not None:
            await self.prompts.get(ref[0], version=ref[1])  # prompt_not_found when absent
        for other in await self.store.list():
            if other.name == name and other.source == "config":
                raise ConflictError(
                    f"rollout {name!r} is defined in the config file; change it there",
                    code="rollout_conflict",
                )
            if (
                other.name != name
                and other.state == "active"
                and other.assistant == config.assistant
            ):
                raise ConflictError(
                    f"assistant {config.assistant!r} already has active rollout "
                    f"{other.name!r}; promote or abort it first",
                    code="rollout_conflict",
                )
        return await self.store.start(
            name, config.assistant, definition(config), "api", datetime.now(UTC)
        )

    async def promote(self, name: str, *, by: str) -> RolloutRecord:
        """The candidate becomes the stable variant: a prompt candidate's version takes
        the stable label (a label move in the registry, undone by `prompts rollback`); a
        model candidate gets every run until the rollout is removed."""
        record = await self._active(name, "promote")
        config = RolloutConfig.model_validate(record.definition)
        details: dict[str, Any] = {}
        if (ref := config.candidate.prompt_ref) is not None:
            move = await self.prompts.set_label(ref[0], config.stable_label, ref[1], author=by)
            details = {
                "prompt": ref[0],
                "label": config.stable_label,
                "from_version": move.from_version,
                "to_version": move.to_version,
            }
        else:
            details = {"model": config.candidate.model}
        done = await self.store.set_state(
            name,
            "promoted",
            reason="promoted",
            changed_by=by,
            details=details,
            now=datetime.now(UTC),
        )
        return done or await self.get(name)

    async def abort(self, name: str, *, by: str, reason: str | None = None) -> RolloutRecord:
        """Every new run back on the stable variant."""
        await self._active(name, "abort")
        done = await self.store.set_state(
            name,
            "aborted",
            reason=reason or "aborted",
            changed_by=by,
            details={},
            now=datetime.now(UTC),
        )
        return done or await self.get(name)

    async def _active(self, name: str, what: str) -> RolloutRecord:
        record = await self.get(name)
        if record.state != "active":
            raise ConflictError(
                f"rollout {name!r} is {record.state} (since {record.updated_at}): only an "
                f"active rollout can {what}",
                code="rollout_not_active",
            )
        return record
