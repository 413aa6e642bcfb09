"""What may be written to the prompt registry, one place for the API, the CLI and the
project files: new versions (checked), labels (only on a version that renders with its
sample), rollbacks (a label back to where it was before its last move), diffs, renders.
"""

from __future__ import annotations

import difflib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dockyard.errors import ConflictError, DockyardError, InvalidRequestError, NotFoundError
from dockyard.prompt_template import (
    LABEL,
    LATEST,
    NAME,
    PromptVersion,
    check_version,
    render,
)
from dockyard.prompts.cache import PromptCache
from dockyard.storage.prompts import LabelMove, PromptStore


@dataclass(frozen=True, slots=True)
class Draft:
    """A version to push, as a file, a request body or the CLI gives it."""

    name: str
    kind: str
    template: str | None = None
    messages: Sequence[Mapping[str, Any]] | None = None
    variables: Sequence[str] | None = None
    sample: Mapping[str, Any] | None = None
    config: Mapping[str, Any] | None = None
    labels: Sequence[str] = ()
    message: str = ""


@dataclass(frozen=True, slots=True)
class Pushed:
    version: PromptVersion
    created: bool  # False: the content was the latest version's already
    labelled: tuple[str, ...]


def check_name(name: str) -> None:
    if not isinstance(name, str) or not NAME.match(name):
        raise InvalidRequestError(
            f"prompt name {name!r}: letters, digits, '_', '.', '-' (up to 128, not starting "
            "with '.', '_' or '-')",
            code="invalid_prompt",
            param="name",
        )


def check_label(label: str) -> None:
    if label == LATEST:
        raise InvalidRequestError(
            "`latest` is always the highest version and cannot be set by hand",
            code="label_reserved",
            param="label",
        )
    if not isinstance(label, str) or not LABEL.match(label):
        raise InvalidRequestError(
            f"label {label!r}: lower-case letters, digits, '_' and '-' (up to 64, starting "
            "with a letter)",
            code="invalid_label",
            param="label",
        )


def unified_diff(a: PromptVersion, b: PromptVersion) -> str:
    """``b`` against ``a`` as a unified diff of their text (templates or messages), then
    of their declared variables and sample when those changed."""

    def lines(v: PromptVersion) -> list[str]:
        out = v.source().splitlines(keepends=True)
        out[-1:] = [out[-1] + "\n"] if out and not out[-1].endswith("\n") else out[-1:]
        out.append(f"# variables: {', '.join(v.variables)}\n")
        if v.sample is not None:
            out.append(f"# sample: {dict(v.sample)}\n")
        return out

    return "".join(
        difflib.unified_diff(
            lines(a), lines(b), fromfile=f"{a.name}@{a.version}", tofile=f"{b.name}@{b.version}"
        )
    )


def _check_renders(version: PromptVersion, label: str) -> None:
    """A version takes a label only once it renders with its own sample variables."""
    try:
        render(version, version.sample or {})
    except DockyardError as e:
        sample = "its sample" if version.sample is not None else "no sample (none stored)"
        raise ConflictError(
            f"prompt {version.name!r} version {version.version} cannot take label {label!r}: "
            f"it does not render with {sample}: {e.message}. Push a version with a `sample` "
            "that gives every declared variable",
            code="prompt_render_failed",
        ) from None


class PromptRegistry:
    """The registry's rules over a ``PromptStore``. ``cache``: the process's, reloaded after
    each write, so that its own next ``prompt()`` sees the change at once."""

    def __init__(self, store: PromptStore, cache: PromptCache | None = None) -> None:
        self.store = store
        self.cache = cache
        # Tells the other processes (runtime/prompt_notices.py, with Redis); they poll too.
        self.notify: Callable[[], Awaitable[None]] | None = None

    async def _after_write(self) -> None:
        if self.cache is not None:
            await self.cache.refresh()
        if self.notify is not None:
            await self.notify()

    # -- reads ------------------------------------------------------------------------------

    async def get(
        self, name: str, *, label: str | None = None, version: int | None = None
    ) -> PromptVersion:
        """The version ``label`` points at (``latest`` by default) or number ``version``."""
        if label is not None and version is not None:
            raise InvalidRequestError("give label or version, not both", param="label")
        if label is not None and label != LATEST:
            version = (await self.store.labels(name)).get(label)
            if version is None:
                raise NotFoundError(
                    f"prompt {name!r} has no label {label!r}", code="prompt_not_found"
                )
        found = await self.store.get(name, version)
        if found is None:
            which = f" version {version}" if version is not None else ""
            raise NotFoundError(f"prompt {name!r}{which} not found", code="prompt_not_found")
        return found

    async def summary(self, name: str) -> dict[str, Any]:
        versions = await self.store.versions(name)
        if not versions:
            raise NotFoundError(f"prompt {name!r} not found", code="prompt_not_found")
        last = versions[-1]
        labels = {**await self.store.labels(name), LATEST: last.version}
        return {
            "name": name,
            "kind": last.kind,
            "latest": last.version,
            "versions": [v.version for v in versions],
            "labels": dict(sorted(labels.items())),
            "updated_at": last.created_at.isoformat(),
        }

    async def overview(self) -> list[dict[str, Any]]:
        return [await self.summary(name) for name in await self.store.names()]

    async def diff(self, name: str, a: int, b: int) -> str:
        return unified_diff(await self.get(name, version=a), await self.get(name, version=b))

    async def render(
        self,
        name: str,
        variables: Mapping[str, Any],
        *,
        label: str | None = None,
        version: int | None = None,
    ) -> tuple[PromptVersion, str | list[dict[str, str]]]:
        found = await self.get(name, label=label, version=version)
        return found, render(found, variables)

    # -- writes -----------------------------------------------------------------------------

    async def push(self, draft: Draft, *, author: str, if_changed: bool = False) -> Pushed:
        """Store ``draft`` as the next version (with ``if_changed``: only when its content
        differs from the latest's), then put its labels on it. A label is put on an
        unchanged version only when the prompt has no such label yet: a project file
        pushed again at each start does not undo a rollback."""
        check_name(draft.name)
        for label in draft.labels:
            check_label(label)
        messages, variables = check_version(
            draft.kind, draft.template, draft.messages, draft.variables
        )
        sample = dict(draft.sample) if draft.sample is not None else None
        if draft.labels:
            # Refused before anything is stored: no unlabelled version is left behind.
            planned = PromptVersion(
                name=draft.name,
                version=0,
                kind=draft.kind,  # type: ignore[arg-type]  # checked by check_version
                template=draft.template,
                messages=messages,
                variables=variables,
                sample=sample,
                message=draft.message,
                author=author,
                created_at=datetime.now(UTC),
            )
            _check_renders(planned, draft.labels[0])
        version, created = await self.store.create_version(
            draft.name,
            kind=draft.kind,  # type: ignore[arg-type]  # checked by check_version
            template=draft.template,
            messages=messages,
            variables=variables,
            sample=sample,
            config=dict(draft.config or {}),
            message=draft.message,
            author=author,
            now=datetime.now(UTC),
            if_changed=if_changed,
        )
        labelled = []
        existing = await self.store.labels(draft.name) if draft.labels else {}
        for label in draft.labels:
            if not created and label in existing:
                continue
            # A label that was absent is set only if it still is: processes starting
            # together push the same files, and one of them sets it.
            if await self.store.move_label(
                draft.name,
                label,
                version.version,
                kind="set",
                author=author,
                now=datetime.now(UTC),
                expect="any" if created else None,
            ):
                labelled.append(label)
        if created or labelled:
            await self._after_write()
        return Pushed(version, created, tuple(labelled))

    async def set_label(
        self, name: str, label: str, version: int, *, author: str, kind: str = "set"
    ) -> LabelMove:
        """Point ``label`` at ``version``, once that version renders with its sample."""
        check_label(label)
        target = await self.get(name, version=version)
        _check_renders(target, label)
        if (await self.store.labels(name)).get(label) == version:
            # Already there: no move to record (a rollback would undo nothing).
            return LabelMove(name, label, version, version, "set", author, datetime.now(UTC))
        move = await self.store.move_label(
            name,
            label,
            version,
            kind="rollback" if kind == "rollback" else "set",
            author=author,
            now=datetime.now(UTC),
        )
        assert move is not None  # no `expect`: the move always happens
        await self._after_write()
        return move

    async def rollback(self, name: str, label: str, *, author: str) -> LabelMove:
        """Move ``label`` back to the version it had before its last move (a second
        rollback goes one further back, not forward again)."""
        check_label(label)
        history = await self.store.history(name, label)
        if not history:
            raise NotFoundError(
                f"prompt {name!r} has no label {label!r} to roll back", code="prompt_not_found"
            )
        # The label's earlier positions: each move stacks where it came from, each
        # rollback unstacks it.
        stack: list[int | None] = []
        for move in history:
            if move.kind == "rollback":
                if stack:
                    stack.pop()
            else:
                stack.append(move.from_version)
        current = history[-1].to_version
        target = stack[-1] if stack else None
        if target is None:
            raise ConflictError(
                f"label {label!r} of prompt {name!r} has no earlier version to roll back to "
                f"(it was first set on version {current})",
                code="label_conflict",
            )
        if await self.store.get(name, target) is None:
            raise ConflictError(
                f"prompt {name!r} version {target} (where {label!r} was before) was removed "
                "by retention; set the label with `prompts label` instead",
                code="label_conflict",
            )
        moved = await self.store.move_label(
            name,
            label,
            target,
            kind="rollback",
            author=author,
            now=datetime.now(UTC),
            expect=current,
        )
        if moved is None:
            raise ConflictError(
                f"label {label!r} of prompt {name!r} moved while rolling back; look at "
                "`prompts show` and try again",
                code="label_conflict",
            )
        await self._after_write()
        return moved
