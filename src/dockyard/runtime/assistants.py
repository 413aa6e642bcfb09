"""The assistants of ``assistants:`` in dockyard.yaml: created at start, run by their name.

Each ``assistants.<name>`` is an assistant of its graph with the same id in every process
(``configured_assistant_id``), so the runs of any API process or worker find its policies
(``Settings.assistant_policies``): the run attempt hands the graph the assistant's model
registry (``GraphRegistry.models_for``), and admission checks its input guard.
"""

from __future__ import annotations

import uuid

from dockyard.settings import Settings
from dockyard.storage.base import AssistantStore

# Not the graphs' default assistants' namespace: a graph and an assistant may not share a
# name (Settings refuses it), and their ids must not meet either.
_CONFIGURED_NS = uuid.UUID("4c1d7d6e-3c55-5a2e-9f52-5d0c2f0a7e11")

CONFIG_METADATA_KEY = "dockyard_assistant"
"""The metadata key of a configured assistant: its name under ``assistants:``."""


def configured_assistant_id(name: str) -> str:
    return str(uuid.uuid5(_CONFIGURED_NS, name))


def configured_ids(settings: Settings) -> dict[str, str]:
    """Name under ``assistants:`` -> its assistant id."""
    return {name: configured_assistant_id(name) for name in settings.assistants}


async def ensure_configured_assistants(settings: Settings, store: AssistantStore) -> None:
    """Create each configured assistant that does not exist; one whose graph or
    description changed in the file is updated (the file is their source; an update
    makes a new version, as over the API)."""
    for name, spec in settings.assistants.items():
        assistant_id = configured_assistant_id(name)
        metadata = {"created_by": "system", CONFIG_METADATA_KEY: name}
        current = await store.get(assistant_id)
        if current is None:
            await store.create(
                assistant_id=assistant_id,
                graph_id=spec.graph,
                config={},
                context={},
                metadata=metadata,
                name=name,
                description=spec.description,
                if_exists="do_nothing",
            )
        elif current["graph_id"] != spec.graph or (
            spec.description is not None and current["description"] != spec.description
        ):
            await store.update(
                assistant_id,
                graph_id=spec.graph,
                description=spec.description,
            )
