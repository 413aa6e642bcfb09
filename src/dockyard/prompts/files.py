"""Prompts as YAML files: the project's ``prompts/*.yaml`` (pushed on start), ``dockyard
prompts push|export|import``, and ``FileSource`` for graphs tested outside a process.

One prompt per file::

    name: ticket-summary          # default: the file's name without .yaml
    type: chat                    # or text, with `template:` instead of `messages:`
    messages:
      - role: system
        content: Summarize support tickets in {{ max_words }} words.
      - role: user
        content: "{{ ticket }}"
    variables: [ticket, max_words]  # default: the names the text uses
    sample: {ticket: "The app crashes on login", max_words: 50}
    labels: [production]
    message: shorter summaries    # the commit message of the version this creates
    config: {temperature: 0.2}    # free-form, returned with the prompt
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from dockyard.errors import ConfigError, DockyardError, NotFoundError
from dockyard.prompt_template import LATEST, PromptVersion, check_version
from dockyard.prompts.registry import Draft, PromptRegistry, Pushed, check_name

_FIELDS = {"name", "type", "template", "messages", "variables", "sample", "labels", "message"}
_FIELDS |= {"config"}


def prompt_files(path: Path) -> list[Path]:
    """``path`` itself, or the ``*.yaml`` / ``*.yml`` files in it, sorted."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise ConfigError(f"{path}: no such file or directory")
    return sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


def read_draft(path: Path) -> Draft:
    """The prompt in ``path``; ConfigError naming the file and the problem."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"{path}: cannot read it as YAML ({e})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping (name, type, template or messages, ...)")
    if unknown := sorted(set(data) - _FIELDS):
        raise ConfigError(f"{path}: unknown field(s) {', '.join(unknown)}")
    labels = data.get("labels") or []
    if isinstance(labels, str):
        labels = [labels]
    for key, kind, what in (
        ("labels", list, "a list of label names"),
        ("variables", list, "a list of variable names"),
        ("messages", list, "a list of {role, content}"),
        ("sample", dict, "a mapping of variable names to values"),
        ("config", dict, "a mapping"),
    ):
        value = labels if key == "labels" else data.get(key)
        if value is not None and not isinstance(value, kind):
            raise ConfigError(f"{path}: `{key}` must be {what}")
    draft = Draft(
        name=str(data.get("name") or path.stem),
        kind=str(data.get("type") or ("chat" if "messages" in data else "text")),
        template=data.get("template"),
        messages=data.get("messages"),
        variables=data.get("variables"),
        sample=data.get("sample"),
        config=data.get("config"),
        labels=tuple(str(label) for label in labels),
        message=str(data.get("message") or ""),
    )
    try:
        check_name(draft.name)
        check_version(draft.kind, draft.template, draft.messages, draft.variables)
    except DockyardError as e:
        raise ConfigError(f"{path}: {e.message}") from None
    return draft


def as_file(version: PromptVersion, labels: list[str]) -> dict[str, Any]:
    """``version`` in the file format (``labels``: those pointing at it)."""
    out: dict[str, Any] = {"name": version.name, "type": version.kind}
    if version.kind == "text":
        out["template"] = version.template
    else:
        out["messages"] = [{"role": m.role, "content": m.content} for m in version.messages]
    out["variables"] = list(version.variables)
    if version.sample is not None:
        out["sample"] = dict(version.sample)
    if version.config:
        out["config"] = dict(version.config)
    if labels:
        out["labels"] = labels
    if version.message:
        out["message"] = version.message
    return out


def dump(data: Mapping[str, Any]) -> str:
    return yaml.safe_dump(dict(data), sort_keys=False, allow_unicode=True, width=100)


async def push_path(
    registry: PromptRegistry,
    path: Path,
    *,
    author: str,
    message: str | None = None,
    labels: tuple[str, ...] = (),
) -> list[Pushed]:
    """Push every prompt file under ``path``; a version only where the content changed.
    Every file is read (and checked) before anything is written."""
    drafts = [read_draft(p) for p in prompt_files(path)]
    out = []
    for d in drafts:
        draft = Draft(
            name=d.name,
            kind=d.kind,
            template=d.template,
            messages=d.messages,
            variables=d.variables,
            sample=d.sample,
            config=d.config,
            labels=tuple(dict.fromkeys((*d.labels, *labels))),
            message=message or d.message or f"pushed from {path.name or path}",
        )
        out.append(await registry.push(draft, author=author, if_changed=True))
    return out


async def export(registry: PromptRegistry, name: str | None = None) -> dict[str, str]:
    """Each prompt's latest version (with the labels on it) in the file format, by file
    name (``<name>.yaml``); ``name``: only that prompt."""
    names = [name] if name is not None else await registry.store.names()
    out = {}
    for n in names:
        version = await registry.get(n)
        labels = [
            label
            for label, v in sorted((await registry.store.labels(n)).items())
            if v == version.version
        ]
        out[f"{n}.yaml"] = dump(as_file(version, labels))
    return out


class FileSource:
    """A ``PromptSource`` reading prompt files, for graphs run outside a dockyard process
    (unit tests): each file is version 1 of its prompt, with ``latest`` and its labels."""

    def __init__(self, path: Path) -> None:
        self._versions: dict[str, PromptVersion] = {}
        self._labels: dict[tuple[str, str], PromptVersion] = {}
        for draft in (read_draft(p) for p in prompt_files(path)):
            messages, variables = check_version(
                draft.kind, draft.template, draft.messages, draft.variables
            )
            version = PromptVersion(
                name=draft.name,
                version=1,
                kind=draft.kind,  # type: ignore[arg-type]  # checked by check_version
                template=draft.template,
                messages=messages,
                variables=variables,
                sample=draft.sample,
                message=draft.message,
                author="file",
                created_at=datetime.now(UTC),
                config=dict(draft.config or {}),
            )
            self._versions[draft.name] = version
            for label in (*draft.labels, LATEST):
                self._labels[(draft.name, label)] = version

    def lookup(self, name: str, label: str | None, version: int | None) -> PromptVersion:
        if version is not None:
            found = self._versions.get(name) if version == 1 else None
        else:
            found = self._labels.get((name, label or LATEST))
        if found is None:
            raise NotFoundError(f"no prompt {name!r} with that label or version in the files")
        return found

    def __iter__(self) -> Iterator[PromptVersion]:
        return iter(self._versions.values())
