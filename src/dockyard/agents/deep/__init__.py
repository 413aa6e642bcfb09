"""A deep agent (deepagents' ``create_deep_agent``): planning, files that outlive the thread
under ``/memories/``, sub-agents, and a human's approval before it writes, edits or runs
anything dangerous. Serve it with ``graphs: {deep: dockyard.agents.deep:graph}`` (see
``examples/deep-agent``); it runs with no API key on the offline ``offline:deep`` model.

Needs the ``deepagents`` package: ``pip install 'dockyard[deepagents]'``. The pieces are in
``agent.py`` (the graph), ``approval.py`` (which calls wait for a human), ``shell.py`` (the
``execute`` tool's shell) and ``guide.py`` (what the researcher sub-agent searches).
"""

from dockyard.extras import require_extra

require_extra("deepagents", "dockyard.agents.deep")

from dockyard.agents.deep.agent import (  # noqa: E402 - after the check that names the extra
    MEMORY_NAMESPACE,
    SYSTEM_PROMPT,
    OfflineDeep,
    make_backend,
    make_graph,
    search_guide,
)
from dockyard.agents.deep.approval import (  # noqa: E402
    DANGEROUS_COMMANDS,
    MEMORIES,
    DeepApproval,
)
from dockyard.agents.deep.shell import ScratchShell  # noqa: E402

__all__ = [
    "DANGEROUS_COMMANDS",
    "MEMORIES",
    "MEMORY_NAMESPACE",
    "SYSTEM_PROMPT",
    "DeepApproval",
    "OfflineDeep",
    "ScratchShell",
    "graph",
    "make_backend",
    "make_graph",
    "search_guide",
]

graph = make_graph()
"""The agent on ``chat_model("default")``; what ``examples/deep-agent`` serves."""
