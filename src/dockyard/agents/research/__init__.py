"""A research team: a supervisor that plans and delegates to a researcher and a writer.

Serve it from a project whose graph module builds it over a document folder
(``examples/research/agent.py``)::

    from dockyard.agents.research import make_graph
    graph = make_graph(Path(__file__).parent / "docs")

* ``graph``: the supervisor, researcher and writer (``graph.make_graph``), each a
  ``create_agent`` subgraph, streamed with ``stream_subgraphs=True``;
* ``corpus``: BM25 over the folder's Markdown / text paragraphs;
* ``tools``: ``search_documents``, ``read_document``, ``web_search`` (Tavily, on when
  ``TAVILY_API_KEY`` is set) and ``arxiv_search`` (on when arXiv can be reached), each
  saying so in its result when it cannot search;
* the run's state ends with ``report``: the text with its sources list and the sources
  it cites.

With no API key every role runs on ``offline:research``
(``dockyard.providers.offline.research``), scripted per role.
"""

from dockyard.agents.research.corpus import Corpus
from dockyard.agents.research.graph import Report, ResearchState, make_graph, make_report
from dockyard.agents.research.tools import Source, research_tools

__all__ = [
    "Corpus",
    "Report",
    "ResearchState",
    "Source",
    "make_graph",
    "make_report",
    "research_tools",
]
