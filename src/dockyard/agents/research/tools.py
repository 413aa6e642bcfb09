"""The researcher's tools: the local documents (BM25), the web and arXiv.

Each tool answers the model in text and hands the graph a list of ``Source`` records as
its artifact (``response_format="content_and_artifact"``): the researcher node collects
them into the run's numbered source list, which the writer cites and the report lists.
A search that cannot run answers "web search unavailable: <why>" (and logs it), so the
model reports that instead of results it never saw.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

from langchain_core.tools import BaseTool, StructuredTool

from dockyard.agents.research.corpus import Corpus
from dockyard.providers.offline.research import (
    ARXIV_SEARCH,
    READ_DOCUMENT,
    SEARCH_DOCUMENTS,
    WEB_SEARCH,
)
from dockyard.providers.search import SearchAdapter, SearchUnavailable, describe_unavailable

READ_LIMIT = 4000  # characters of a document read_document returns


class Source(TypedDict):
    """A document, web page or paper the researcher found; ``ref`` identifies it."""

    kind: Literal["document", "web", "arxiv"]
    ref: str  # the document's path in the corpus, or the URL
    title: str
    excerpt: str


def _document_tools(corpus: Corpus, k: int) -> list[BaseTool]:
    def search_documents(query: str) -> tuple[str, list[Source]]:
        hits = corpus.search(query, k)
        if not hits:
            return f"No document in the folder matches {query!r}.", []
        blocks, sources = [], []
        for hit in hits:
            doc, text = hit.passage.doc, hit.passage.text
            blocks.append(f"[doc:{doc.doc_id}] {doc.title} ({doc.path})\n{text}")
            sources.append(Source(kind="document", ref=doc.path, title=doc.title, excerpt=text))
        return "\n\n".join(blocks), sources

    def read_document(doc_id: str) -> tuple[str, list[Source]]:
        doc = corpus.documents.get(doc_id.removeprefix("doc:").strip())
        if doc is None:
            known = ", ".join(sorted(corpus.documents))
            return f"There is no document {doc_id!r}; the folder holds: {known}.", []
        text = doc.text[:READ_LIMIT]
        first = corpus.search(doc.title, 1)
        excerpt = first[0].passage.text if first else text[:600]
        return f"[doc:{doc.doc_id}] {doc.title} ({doc.path})\n{text}", [
            Source(kind="document", ref=doc.path, title=doc.title, excerpt=excerpt)
        ]

    return [
        StructuredTool.from_function(
            search_documents,
            name=SEARCH_DOCUMENTS,
            description=(
                "Search the team's local document folder (BM25 over paragraphs). Returns the "
                "best passages, each headed [doc:<id>] with its title and path."
            ),
            response_format="content_and_artifact",
        ),
        StructuredTool.from_function(
            read_document,
            name=READ_DOCUMENT,
            description="Read one document of the folder in full, by its id (from [doc:<id>]).",
            response_format="content_and_artifact",
        ),
    ]


def _search_tool(adapter: SearchAdapter, name: str, description: str, k: int) -> BaseTool:
    kind: Literal["web", "arxiv"] = "arxiv" if name == ARXIV_SEARCH else "web"

    async def run(query: str) -> tuple[str, list[Source]]:
        try:
            hits = await adapter.search(query, k)
        except SearchUnavailable as e:
            return describe_unavailable(e), []
        if not hits:
            return f"{adapter.name} found nothing for {query!r}.", []
        blocks = [f"[{kind}] {h.title} ({h.url})\n{h.snippet}" for h in hits]
        sources = [Source(kind=kind, ref=h.url, title=h.title, excerpt=h.snippet) for h in hits]
        return "\n\n".join(blocks), sources

    return StructuredTool.from_function(
        coroutine=run, name=name, description=description, response_format="content_and_artifact"
    )


def research_tools(
    corpus: Corpus,
    web: SearchAdapter | None,
    arxiv: SearchAdapter | None,
    *,
    k: int = 4,
) -> list[BaseTool]:
    """``search_documents`` and ``read_document``; ``web_search`` / ``arxiv_search`` when
    an adapter is given (each says on every call whether it could search)."""
    tools = _document_tools(corpus, k)
    if web is not None:
        tools.append(
            _search_tool(
                web,
                WEB_SEARCH,
                "Search the web. Returns page titles, URLs and passages, or says why web "
                "search is unavailable.",
                k,
            )
        )
    if arxiv is not None:
        tools.append(
            _search_tool(
                arxiv,
                ARXIV_SEARCH,
                "Search arXiv for papers. Returns titles, arXiv URLs and abstracts, or says "
                "why arXiv search is unavailable.",
                k,
            )
        )
    return tools


def sources_of(artifacts: list[Any]) -> list[Source]:
    """The ``Source`` records in tool artifacts, each once (by ``ref``), in order."""
    out: list[Source] = []
    seen: set[str] = set()
    for artifact in artifacts:
        for source in artifact if isinstance(artifact, list) else []:
            if isinstance(source, dict) and source.get("ref") and source["ref"] not in seen:
                seen.add(source["ref"])
                out.append(source)  # type: ignore[arg-type]
    return out
