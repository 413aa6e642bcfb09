"""Gradual rollouts' storage: each rollout's definition and where it stands.

One protocol (``RolloutStore``), one SQL implementation for SQLite and PostgreSQL
(``storage.sql.rollouts``). What a rollout does (assignment, the rollback check, promote)
lives in ``dockyard.rollouts``; docs/rollouts.md.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

RolloutState = Literal["active", "promoted", "aborted", "rolled_back"]
ROLLOUT_STATES: tuple[RolloutState, ...] = ("active", "promoted", "aborted", "rolled_back")


@dataclass(frozen=True, slots=True)
class RolloutRecord:
    name: str
    assistant: str
    # The rollout's settings as `rollouts.<name>` takes them (settings.RolloutConfig).
    definition: dict[str, Any]
    source: str  # config | api
    state: RolloutState
    reason: str | None
    changed_by: str | None
    details: dict[str, Any] = field(default_factory=dict)
    started_at: datetime | None = None
    updated_at: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        def iso(t: datetime | None) -> str | None:
            return None if t is None else t.isoformat()

        return {
            "name": self.name,
            "assistant": self.assistant,
            "definition": self.definition,
            "source": self.source,
            "state": self.state,
            "reason": self.reason,
            "changed_by": self.changed_by,
            "details": self.details,
            "started_at": iso(self.started_at),
            "updated_at": iso(self.updated_at),
        }


class RolloutStore(Protocol):
    async def list(self) -> builtins.list[RolloutRecord]:
        """Every rollout, by name."""
        ...

    async def get(self, name: str) -> RolloutRecord | None: ...

    async def start(
        self, name: str, assistant: str, definition: dict[str, Any], source: str, now: datetime
    ) -> RolloutRecord:
        """Rollout ``name`` with this definition, active from ``now`` (a stored one of
        the same name is replaced: a new definition starts over)."""
        ...

    async def set_state(
        self,
        name: str,
        state: RolloutState,
        *,
        reason: str,
        changed_by: str,
        details: dict[str, Any],
        now: datetime,
    ) -> RolloutRecord | None:
        """Move an active rollout to ``state``; None when it is not active (any more):
        of a rollback and an abort racing, one wins."""
        ...

    async def delete(self, name: str) -> bool: ...


__all__ = ["ROLLOUT_STATES", "RolloutRecord", "RolloutState", "RolloutStore"]
