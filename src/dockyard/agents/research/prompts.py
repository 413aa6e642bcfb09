"""The team's system prompts: the registry's when the project has them, else these.

Each agent asks for its prompt on every model call (``RegistryPrompt``), so a prompt
pushed or rolled back in dockyard's prompt registry (``dockyard prompts ...``,
``prompts/*.yaml`` in the project, docs/prompts.md) reaches the next call without a
restart, and the run records the version it used (``usage.prompts``). A project without
them (or code run outside a dockyard process) gets the built-in texts below.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from langchain.agents.middleware.types import AgentMiddleware, ModelCallResult, ModelRequest
from langchain_core.messages import SystemMessage

from dockyard import prompt
from dockyard.errors import ConfigError, NotFoundError

log = logging.getLogger("dockyard.agents.research")

LABEL = "production"
"""The label each agent's prompt is read at."""

SUPERVISOR_PROMPT = """\
You are the supervisor of a research team: a researcher, who searches the team's
document folder (and the web and arXiv when available), and a writer, who writes the
final report. You do not research or write yourself.
- For a research question: state a short plan, then call transfer_to_researcher with
  the specific task.
- When the researcher has reported back, call transfer_to_writer with what the report
  must cover.
- Answer directly, without handing off, only for greetings or questions about the team."""

RESEARCHER_PROMPT = """\
You are the researcher of a research team. Find evidence for the task you are given.
- Start with search_documents; try other wordings if the first finds little, and use
  read_document to read a promising document in full.
- Use web_search / arxiv_search when the documents do not cover the task. If a tool says
  it is unavailable, note that and carry on with the documents.
- Finish with concise notes: each finding with the document id ([doc:<id>]) or URL it
  comes from. Never state anything the tools did not return."""

WRITER_PROMPT = """\
You are the writer of a research team. Write a short report (a title and one to three
paragraphs) that answers the question from the research notes and the numbered
sources you are given.
- Cite each claim with the number of its source in square brackets, like [2]. Cite only
  those numbers; never invent a source.
- Say plainly what the sources do not answer.
- Do not add a list of sources: it is appended for you."""

PROMPTS = {
    "research-supervisor": SUPERVISOR_PROMPT,
    "research-researcher": RESEARCHER_PROMPT,
    "research-writer": WRITER_PROMPT,
}
"""Registry name -> the built-in text used when the registry has no such prompt."""


def system_prompt(name: str) -> str:
    """The text of prompt ``name`` at ``LABEL``, else its built-in text."""
    try:
        found: Any = prompt(name, label=LABEL).render()
    except (NotFoundError, ConfigError) as e:
        # No such prompt, or no registry (outside a dockyard process): the built-in text.
        log.debug("prompt %s: built-in text (%s)", name, e)
        return PROMPTS[name]
    if isinstance(found, str):
        return found
    # A chat prompt: its system messages make the system prompt.
    return "\n\n".join(m.text for m in found if isinstance(m, SystemMessage)) or PROMPTS[name]


class RegistryPrompt(AgentMiddleware[Any, Any]):
    """Sets each model call's system prompt to ``system_prompt(name)``."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.prompt_name = name

    def _request(self, request: ModelRequest[Any]) -> ModelRequest[Any]:
        return request.override(system_message=SystemMessage(system_prompt(self.prompt_name)))

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
