"""``dockyard.prompt(name, label=..., version=...)``: a registry prompt, for graphs.

Call it inside a node, where the prompt is used (not at module level: the version it
returns is the one current at the call)::

    from dockyard import prompt

    def summarize(state):
        p = prompt("ticket-summary", label="production")
        messages = p.render(ticket=state["ticket"])   # LangChain messages (chat prompt)
        return {"messages": [model.invoke(messages)]}

The prompts come from the process's ``PromptSource``: a dockyard process sets one when it
opens (``prompts/cache.py``: every version in memory, a dict lookup per call, reloaded in
the background when the registry changes). Outside a process — a unit test calling the
graph — set one yourself, e.g. ``use_source(FileSource(Path("prompts")))``
(``dockyard.prompts.files``), or ``prompt()`` says what is missing.

Inside a run whose ``config["configurable"]`` carries ``dockyard_prompt``
(``variants.PROMPT_KEY``: what ``dockyard eval --prompt`` and a rollout's candidate set),
a call for the prompt it names gets the version (or label) it gives instead of the one
the call asks for; calls for other prompts are left alone.

Inside a run, each call is recorded on the run (``usage.prompts``: name, version, label)
by the recorder the run's config carries among its LangChain callbacks; this module
finds it there and never imports the runtime.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Protocol

from dockyard.errors import ConfigError
from dockyard.prompt_template import FIELD, PromptVersion, render
from dockyard.variants import PROMPT_KEY

RECORD = "record_prompt"
"""A callback handler with this method (``name, version, label``) and a ``prompt_source``
is a run's ``Recorder`` (``runtime/prompt_uses.py``)."""


class PromptSource(Protocol):
    def lookup(self, name: str, label: str | None, version: int | None) -> PromptVersion:
        """The version of ``name`` with ``label`` (default ``latest``) or number
        ``version``; NotFoundError (``prompt_not_found``) when there is none."""
        ...


class Recorder(Protocol):
    """What a run's config carries among its callbacks: the source of the process running
    it (several dockyard apps in one Python process each serve their own), and where the
    prompts it used are noted."""

    prompt_source: PromptSource

    def record_prompt(self, name: str, version: int, label: str | None) -> None: ...


_source: PromptSource | None = None


def use_source(source: PromptSource | None) -> PromptSource | None:
    """Make ``source`` the process's prompt source; returns the one it replaces."""
    global _source
    previous, _source = _source, source
    return previous


def current_source() -> PromptSource | None:
    return _source


class Prompt:
    """One prompt version as a graph uses it."""

    __slots__ = ("label", "spec")

    def __init__(self, spec: PromptVersion, label: str | None) -> None:
        self.spec = spec
        self.label = label

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def version(self) -> int:
        return self.spec.version

    @property
    def variables(self) -> tuple[str, ...]:
        return self.spec.variables

    @property
    def config(self) -> Mapping[str, Any]:
        """The version's free-form settings (model, temperature, ...), as pushed."""
        return self.spec.config

    def render(self, **variables: Any) -> Any:
        """A text prompt's text, or a chat prompt's LangChain messages, with ``variables``
        filled in; a missing or undeclared variable raises (``prompt_variables``)."""
        out = render(self.spec, variables)
        if isinstance(out, str):
            return out
        from langchain_core.messages import convert_to_messages

        return convert_to_messages(out)

    def langchain(self) -> Any:
        """The same prompt as a LangChain ``PromptTemplate`` (text) or
        ``ChatPromptTemplate`` (chat), in f-string format, for chains that want one.
        Its checks are LangChain's (a missing variable raises, an extra one is ignored)."""
        from langchain_core.prompts import ChatPromptTemplate, PromptTemplate

        if self.spec.kind == "text":
            return PromptTemplate.from_template(_f_string(self.spec.template or ""))
        return ChatPromptTemplate.from_messages(
            [(m.role, _f_string(m.content)) for m in self.spec.messages]
        )

    def __repr__(self) -> str:
        label = f", label={self.label!r}" if self.label else ""
        return f"Prompt({self.name!r}, version={self.version}{label})"


_BRACES = re.compile(r"[{}]")


def _f_string(text: str) -> str:
    parts = FIELD.split(text)  # literal, name, literal, name, ..., literal
    return "".join(
        "{" + part + "}" if i % 2 else _BRACES.sub(lambda m: m.group(0) * 2, part)
        for i, part in enumerate(parts)
    )


def prompt(name: str, *, label: str | None = None, version: int | None = None) -> Prompt:
    """Version ``version`` of prompt ``name``, or the one ``label`` points at (default
    ``latest``, the highest version); see the module docstring."""
    if label is not None and version is not None:
        raise ConfigError(f"prompt({name!r}): give label= or version=, not both")
    config = _run_config()
    recorder = _recorder(config)
    if config is not None:
        label, version = _override(config, name, label, version)
    source = recorder.prompt_source if recorder is not None else _source
    if source is None:
        raise ConfigError(
            f"prompt({name!r}) needs a prompt source: it is set by a running dockyard "
            "process; outside one (a test), call dockyard.prompt_source.use_source("
            "FileSource(Path('prompts'))) from dockyard.prompts.files first"
        )
    spec = source.lookup(name, label, version)
    if recorder is not None:
        recorder.record_prompt(spec.name, spec.version, label)
    return Prompt(spec, label)


def _run_config() -> Mapping[str, Any] | None:
    """The running node's config, if ``prompt()`` is called inside a run."""
    from langchain_core.runnables.config import var_child_runnable_config

    config = var_child_runnable_config.get()
    return config or None


def _override(
    config: Mapping[str, Any], name: str, label: str | None, version: int | None
) -> tuple[str | None, int | None]:
    """The (label, version) the run's ``dockyard_prompt`` gives for ``name``: its own when
    it names this prompt, else what the call asked for."""
    configurable = config.get("configurable")
    chosen = configurable.get(PROMPT_KEY) if isinstance(configurable, Mapping) else None
    if not isinstance(chosen, Mapping) or chosen.get("name") != name:
        return label, version
    pinned = chosen.get("version")
    if isinstance(pinned, int) and not isinstance(pinned, bool):
        return None, pinned
    other = chosen.get("label")
    if isinstance(other, str) and other:
        return other, None
    return label, version


def _recorder(config: Mapping[str, Any] | None) -> Recorder | None:
    """The running node's run's recorder, if ``prompt()`` is called inside a run."""
    if not config:
        return None
    callbacks: Any = config.get("callbacks")
    handlers = getattr(callbacks, "handlers", callbacks)
    for handler in handlers or ():
        if hasattr(handler, RECORD):
            recorder: Recorder = handler
            return recorder
    return None


__all__ = [
    "RECORD",
    "Prompt",
    "PromptSource",
    "Recorder",
    "current_source",
    "prompt",
    "use_source",
]
