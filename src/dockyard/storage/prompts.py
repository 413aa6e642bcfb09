"""The prompt registry's storage protocol (``prompts/registry.py`` decides what may be
written; ``docs/prompts.md``).

A prompt is a name with immutable, numbered versions (1, 2, ...). Labels point at one
version each (``production`` → 3); every move of a label is kept (who, when, from which
version to which), so that a rollback can move it back. ``latest`` is no stored label:
it is the highest version. Every write raises the registry's ``revision``, a counter the
processes' prompt caches poll to know when to reload (one cheap read per poll).
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from dockyard.prompt_template import Message, PromptKind, PromptVersion

MoveKind = Literal["set", "rollback"]


@dataclass(frozen=True, slots=True)
class LabelMove:
    """``label`` of ``name`` moved from ``from_version`` (None: it was new) to
    ``to_version`` by ``author`` at ``at``; ``kind`` rollback: moved back by a rollback."""

    name: str
    label: str
    from_version: int | None
    to_version: int
    kind: MoveKind
    author: str
    at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "from_version": self.from_version,
            "to_version": self.to_version,
            "kind": self.kind,
            "author": self.author,
            "at": self.at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Every version and label, as of ``revision``: what a process's cache holds."""

    revision: int
    versions: tuple[PromptVersion, ...]
    labels: Mapping[tuple[str, str], int]


class PromptStore(Protocol):
    async def create_version(
        self,
        name: str,
        *,
        kind: PromptKind,
        template: str | None,
        messages: Sequence[Message],
        variables: Sequence[str],
        sample: Mapping[str, Any] | None,
        config: Mapping[str, Any],
        message: str,
        author: str,
        now: datetime,
        if_changed: bool = False,
    ) -> tuple[PromptVersion, bool]:
        """Store the next version of ``name`` (1 for a new name); concurrent creates get
        distinct numbers. With ``if_changed``, when the latest version has the same
        content (``PromptVersion.content``), that one is returned and nothing is stored;
        the bool says whether a version was created."""
        ...

    async def get(self, name: str, version: int | None = None) -> PromptVersion | None:
        """Version ``version`` of ``name``, or its latest; None when there is none."""
        ...

    async def versions(self, name: str) -> builtins.list[PromptVersion]:
        """Every stored version of ``name``, oldest first."""
        ...

    async def names(self) -> builtins.list[str]:
        """Every prompt name with at least one version, sorted."""
        ...

    async def labels(self, name: str) -> dict[str, int]:
        """The stored labels of ``name`` (never ``latest``) and their versions."""
        ...

    async def move_label(
        self,
        name: str,
        label: str,
        version: int,
        *,
        kind: MoveKind,
        author: str,
        now: datetime,
        expect: int | Literal["any"] | None = "any",
    ) -> LabelMove | None:
        """Point ``label`` at ``version`` and record the move. With ``expect`` (a version,
        or None for a label that must not exist yet) the move happens only if the label
        still points there: None when it did not (another move came first)."""
        ...

    async def history(self, name: str, label: str | None = None) -> builtins.list[LabelMove]:
        """The label moves of ``name`` (of one ``label``), oldest first."""
        ...

    async def snapshot(self) -> Snapshot: ...

    async def revision(self) -> int:
        """Raised by every write; 0 for an empty registry."""
        ...

    async def delete_unlabeled(self, older_than: datetime) -> int:
        """Remove versions created before ``older_than`` that no label points at and that
        are not their prompt's latest; returns how many went."""
        ...


__all__ = ["LabelMove", "MoveKind", "PromptStore", "Snapshot"]
