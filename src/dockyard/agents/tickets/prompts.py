"""The summarizer's prompt: the registry's ``anthropic_ticket_view`` when the project has it
(``examples/tickets/prompts/anthropic_ticket_view.yaml``, pushed on start), else this
built-in copy. Read on every ticket, so a version pushed or rolled back with ``dockyard
prompts`` reaches the next ticket without a restart, and each run records the version
it used (``usage.prompts``); ``dockyard eval --prompt NAME@VERSION`` picks one per run.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from dockyard import prompt
from dockyard.agents.tickets.schema import SUMMARY_SCHEMA
from dockyard.errors import ConfigError, NotFoundError

log = logging.getLogger("dockyard.agents.tickets")

NAME = "anthropic_ticket_view"
"""The guide's template name (its rollback list: ``anthropic_ticket_view``)."""
LABEL = "production"

SYSTEM = """\
You summarize help-desk tickets for the support team. Read the ticket (subject,
description, the conversation between the customer and our agents, the attachments by
name and type) and answer with ONE JSON object and nothing else, valid under this JSON
Schema:
{{ schema }}
- problem: what is wrong, in one or two sentences.
- customer_impact: who or what is affected and how badly.
- actions_taken: what our agents already did, one item each (empty when nothing).
- current_status: where the ticket stands now.
- next_steps: what should happen next, one item each.
- sentiment: the customer's mood: positive, neutral, negative or mixed.
- attachments_worth_opening: the attachments an engineer should open first, with why.
Use only what the ticket says. Write the values in {{ language }}. Keep it under
{{ max_words }} words. Personal data in the ticket is masked; never guess it."""

USER = """\
Priority: {{ priority }}. Tags: {{ tags }}.

{{ ticket }}"""


def variables(ticket_text: str, *, priority: str, tags: list[str], korean: bool) -> dict[str, Any]:
    """The template's variables for one ticket."""
    return {
        "ticket": ticket_text,
        "priority": priority,
        "tags": ", ".join(tags) or "-",
        "language": "Korean" if korean else "English",
        "max_words": 250,
        "schema": json.dumps(SUMMARY_SCHEMA, ensure_ascii=False),
    }


def _builtin(values: dict[str, Any]) -> list[BaseMessage]:
    def fill(text: str) -> str:
        for key, value in values.items():
            text = text.replace("{{ " + key + " }}", str(value))
        return text

    return [SystemMessage(fill(SYSTEM)), HumanMessage(fill(USER))]


def messages(values: dict[str, Any]) -> list[BaseMessage]:
    """The rendered prompt: the registry's version at ``LABEL``, else the built-in one."""
    try:
        found: Any = prompt(NAME, label=LABEL).render(**values)
    except (NotFoundError, ConfigError) as e:
        # No such prompt, or no registry (outside a dockyard process): the built-in text.
        log.debug("prompt %s: built-in text (%s)", NAME, e)
        return _builtin(values)
    if isinstance(found, str):
        return [SystemMessage(found), HumanMessage(_builtin(values)[1].text)]
    return list(found)
