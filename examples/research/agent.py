"""The research team over this folder's documents (``docs/``).

Web search switches on with ``TAVILY_API_KEY`` (in the environment, or in ``.env`` next
to this file with ``env: .env`` in dockyard.yaml); arXiv search whenever arXiv can be
reached. Otherwise each says so in its tool result and in the server's log.
"""

from pathlib import Path

from dockyard.agents.research import make_graph

graph = make_graph(Path(__file__).parent / "docs")
