"""The deep agent: deepagents' ``create_deep_agent`` on dockyard's models, store and policies.

What it has, and where each piece comes from:

* **planning**: LangChain's ``TodoListMiddleware`` (the ``write_todos`` tool; the plan is
  in the thread's state under ``todos``).
* **files**: deepagents' file tools (``ls``, ``read_file``, ``write_file``, ``edit_file``,
  ``glob``, ``grep``) over a ``CompositeBackend``: paths under ``/memories/`` go to a
  ``StoreBackend`` on dockyard's store (the run's ``get_store()``: SQLite or PostgreSQL,
  under the caller's tenant), so they outlive the thread; every other path is scratch in
  the thread's state (``files``), checkpointed with it.
* **execute**: ``ScratchShell`` (``shell.py``), a few file commands over those same files;
  nothing runs on the host.
* **sub-agents**: ``task`` hands a job to ``researcher`` (searches the production guide's
  notes, ``guide.py``) or to deepagents' ``general-purpose`` agent; both get the same
  approval rules.
* **approval**: ``DeepApproval`` (``approval.py``): ``write_file``, ``edit_file`` and
  dangerous ``execute`` commands pause the run (``policies.approval`` overrides); resume
  with ``Command(resume={"decisions": [{"type": "approve" | "edit" | "reject", ...}]})``.
* **platform policies**: ``dockyard.middleware()`` (summarization, call limits, PII guards)
  as configured in ``policies:``; the instructions from the prompt registry
  (``RegistryPrompt``: prompt ``deep-agent`` when the project has it).

The model is ``chat_model("default")``: the project's ``models.default``, else Claude or
GPT-4o mini when their key is set; when none of these is, the run uses ``offline:deep``
(``DeepOfflineModel``), which plays the whole flow deterministically (``OfflineDeep``).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from deepagents import create_deep_agent
from deepagents.backends import CompositeBackend, StoreBackend
from deepagents.middleware.subagents import GENERAL_PURPOSE_SUBAGENT, SubAgent
from langchain.agents.middleware import AgentMiddleware, TodoListMiddleware
from langchain.agents.middleware.types import ModelCallResult, ModelRequest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import SystemMessage
from langchain_core.tools import tool
from langgraph.config import get_config
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime

from dockyard.agents.deep.approval import MEMORIES, DeepApproval
from dockyard.agents.deep.guide import search_notes
from dockyard.agents.deep.shell import ScratchShell
from dockyard.errors import ConfigError, NotFoundError
from dockyard.prompt_source import prompt
from dockyard.providers import load_chat_model
from dockyard.providers.agent_middleware import middleware as platform_middleware
from dockyard.providers.approval import ConfiguredApproval
from dockyard.providers.offline.deep import DeepOfflineModel
from dockyard.providers.registry import DEFAULT, OFFLINE_DEFAULT, RegistryChatModel, chat_model
from dockyard.providers.registry import run_registry as _run_registry
from dockyard.variants import model_override

PROMPT = "deep-agent"
"""The registry prompt (a text prompt, label ``production``) that replaces ``SYSTEM_PROMPT``
when the project has it (``examples/deep-agent/prompts/deep-agent.yaml``)."""

MEMORY_NAMESPACE = "deep_agent"
"""First part of the store namespace of the agent's memories: ``(MEMORY_NAMESPACE, user)``
where ``user`` is the run's ``configurable.user_id`` (default ``"shared"``)."""

SYSTEM_PROMPT = """\
You are a deep research-and-writing agent for a platform team running LLM agents in
production.
- Plan first: call write_todos with the steps, and keep it up to date as you go.
- Delegate research to the `researcher` sub-agent with the task tool; it searches the
  production deployment guide. Write only what it found.
- Write deliverables as files (a report goes to /report.md). Scratch files live only in
  this conversation; anything worth remembering across conversations goes under
  /memories/ (for example /memories/<topic>.md with the key points).
- A human reviews every file write or edit and every destructive command before it runs.
  If they reject one, do not retry it: say what was not done and why.
- execute runs a small shell over your own files (ls, cat, head, wc, grep, echo, rm, pwd).
- Finish with a short answer saying what you did and where the files are."""

RESEARCHER_PROMPT = """\
You research one question for the main agent. Call search_guide with the key words of
the question, then answer with the findings as a short list, citing nothing that the
search did not return. If nothing matches, say so."""

_USER = re.compile(r"^[A-Za-z0-9\-_.@+:~]{1,64}$")


@tool
def search_guide(query: str) -> str:
    """Search the production deployment guide for Deep Agents (checkpointing, caching,
    backends, human approval, sandboxes, observability, scaling, cost) by key words."""
    notes = search_notes(query)
    if not notes:
        return "The guide has nothing on that."
    return "\n".join(f"- {note}" for note in notes)


def _memory_namespace(_runtime: Runtime[Any]) -> tuple[str, ...]:
    user = (get_config().get("configurable") or {}).get("user_id")
    if not isinstance(user, str) or not _USER.match(user):
        user = "shared"
    return (MEMORY_NAMESPACE, user)


def make_backend() -> CompositeBackend:
    """Scratch files (and ``execute``) in the thread's state; ``/memories/`` in the store."""
    shell = ScratchShell()
    backend = CompositeBackend(
        default=shell, routes={MEMORIES: StoreBackend(namespace=_memory_namespace)}
    )
    shell.attach(backend)
    return backend


class OfflineDeep(AgentMiddleware[Any, Any]):
    """When a ``chat_model(...)`` call would go to ``offline:support`` (no model configured
    and no provider key, or that model named outright), answers with ``offline:deep``
    instead: the support model knows nothing of this agent's tools. Any other model is
    left alone. The calls keep the run's callbacks (usage, traces); the PII guards of
    ``dockyard.middleware()`` cover the offline model as they cover any model outside
    the registry."""

    def __init__(self) -> None:
        super().__init__()
        self._offline = DeepOfflineModel(model_name="offline-deep")

    def _model(self, request: ModelRequest[Any]) -> ModelRequest[Any]:
        if not isinstance(request.model, RegistryChatModel):
            return request
        # The name this call goes to: `default`, or what a rollout or `dockyard eval
        # --model` puts in its place.
        name = model_override(get_config().get("configurable"), request.model.key)
        spec = _run_registry().spec(name)
        if spec is None or spec.model != OFFLINE_DEFAULT:
            return request
        return request.override(model=self._offline)

    def wrap_model_call(
        self, request: ModelRequest[Any], handler: Callable[[ModelRequest[Any]], ModelCallResult]
    ) -> ModelCallResult:
        return handler(self._model(request))

    async def awrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], Awaitable[ModelCallResult]],
    ) -> ModelCallResult:
        return await handler(self._model(request))


class RegistryPrompt(AgentMiddleware[Any, Any]):
    """The agent's instructions from the prompt registry: prompt ``PROMPT`` (label
    ``production``) in place of ``SYSTEM_PROMPT``, looked up on every model call so a label
    moved while the server runs is used by the next call, and recorded on the run
    (``usage.prompts``). A project without that prompt gets ``SYSTEM_PROMPT``. Only the
    agent's own part changes: what deepagents adds after it (the file system's notes)
    stays."""

    def _request(self, request: ModelRequest[Any]) -> ModelRequest[Any]:
        current = request.system_message
        if current is None or not current.text.startswith(SYSTEM_PROMPT):
            return request
        try:
            text = prompt(PROMPT, label="production").render()
        except (NotFoundError, ConfigError):  # no such prompt, or no registry (a unit test)
            return request
        if not isinstance(text, str):
            return request  # a chat prompt: not one system text; keep the built-in one
        replaced = text.rstrip("\n") + current.text[len(SYSTEM_PROMPT) :]
        return request.override(system_message=SystemMessage(replaced))

    def wrap_model_call(
        self, request: ModelRequest[Any], handler: Callable[[ModelRequest[Any]], ModelCallResult]
    ) -> ModelCallResult:
        return handler(self._request(request))

    async def awrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], Awaitable[ModelCallResult]],
    ) -> ModelCallResult:
        return await handler(self._request(request))


def _policies() -> list[AgentMiddleware[Any, Any]]:
    # The approval policy comes in as DeepApproval (with the agent's defaults) instead.
    return [m for m in platform_middleware() if not isinstance(m, ConfiguredApproval)]


def _subagents() -> list[SubAgent]:
    researcher: SubAgent = {
        "name": "researcher",
        "description": "Researches one question in the production deployment guide and "
        "returns the findings as a short list.",
        "system_prompt": RESEARCHER_PROMPT,
        "tools": [search_guide],
        "middleware": [OfflineDeep(), *_policies(), DeepApproval()],
    }
    general: SubAgent = {
        **GENERAL_PURPOSE_SUBAGENT,
        "middleware": [OfflineDeep(), *_policies(), DeepApproval()],
    }
    return [researcher, general]


def make_graph(
    *, model: BaseChatModel | str | None = None
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """Build the deep agent on ``model`` (a ``"provider:model"`` string or a chat model;
    default ``chat_model("default")``)."""
    if isinstance(model, str):
        model = load_chat_model(model)
    return create_deep_agent(
        model if model is not None else chat_model(DEFAULT),
        system_prompt=SYSTEM_PROMPT,
        middleware=[
            TodoListMiddleware(),
            RegistryPrompt(),
            OfflineDeep(),
            *_policies(),
            DeepApproval(),
        ],
        subagents=_subagents(),
        backend=make_backend(),
        name="deep_agent",
    )
