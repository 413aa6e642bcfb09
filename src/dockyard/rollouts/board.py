"""One process's copy of the rollouts, and the config file's rollouts put in the database.

The copy is what a run's assignment reads (no query per run): every rollout that still
steers runs, by the assistant (name or graph) it applies to, swapped whole on each
``refresh`` so a reader sees the old copy or the new one. A state change made by any
process (a rollback, ``dockyard rollout abort``) is seen here at the next refresh.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import ValidationError

from dockyard.settings import RolloutConfig, Settings
from dockyard.storage.rollouts import RolloutRecord, RolloutState, RolloutStore

log = logging.getLogger("dockyard.rollouts")


@dataclass(frozen=True, slots=True)
class Steering:
    """A rollout as the assignment applies it."""

    name: str
    config: RolloutConfig
    state: RolloutState


def steering(record: RolloutRecord) -> Steering | None:
    """What ``record`` does to new runs: an active rollout splits them; a promoted model
    rollout sends them all to the candidate model (until the rollout is removed from the
    config; a promoted prompt's stable label already points at the candidate); anything
    else leaves them alone."""
    config = RolloutConfig.model_validate(record.definition)
    if record.state == "active" or (record.state == "promoted" and config.candidate.model):
        return Steering(record.name, config, record.state)
    return None


class RolloutBoard:
    def __init__(self, store: RolloutStore) -> None:
        self.store = store
        self.records: tuple[RolloutRecord, ...] = ()
        self._by_target: Mapping[str, Steering] = {}
        self._unreadable: set[str] = set()

    def install(self, records: list[RolloutRecord]) -> None:
        by_target: dict[str, Steering] = {}
        usable = []
        for record in records:
            try:
                found = steering(record)
            except ValidationError as e:
                # Written by another version of dockyard: left alone, said once.
                if record.name not in self._unreadable:
                    self._unreadable.add(record.name)
                    log.warning("rollout %s cannot be read, ignored: %s", record.name, e)
                continue
            usable.append(record)
            if found is not None:
                by_target[found.config.assistant] = found
        self.records, self._by_target = tuple(usable), by_target

    async def refresh(self) -> None:
        self.install(await self.store.list())

    def for_assistant(self, name: str | None, graph_id: str) -> Steering | None:
        """The rollout steering runs of an assistant named ``name`` of graph ``graph_id``:
        one for the assistant by name first, else one for its graph."""
        if not self._by_target:
            return None
        return (self._by_target.get(name) if name else None) or self._by_target.get(graph_id)

    def active(self) -> list[RolloutRecord]:
        return [r for r in self.records if r.state == "active"]


def definition(config: RolloutConfig) -> dict[str, object]:
    return config.model_dump(mode="json")


async def sync_config(settings: Settings, store: RolloutStore) -> list[str]:
    """Put ``rollouts:`` of the config in the database: a new rollout, or one whose
    definition changed, starts (active); an unchanged one keeps its state (a rollout
    rolled back stays so across restarts); a config rollout no longer in the file is
    removed. The names started."""
    now = datetime.now(UTC)
    stored = {r.name: r for r in await store.list()}
    started = []
    for name, config in settings.rollouts.items():
        wanted = definition(config)
        old = stored.get(name)
        if old is None or old.definition != wanted:
            await store.start(name, config.assistant, wanted, "config", now)
            started.append(name)
    for name, old in stored.items():
        if old.source == "config" and name not in settings.rollouts:
            await store.delete(name)
    return started
