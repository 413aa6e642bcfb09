"""The research team's parts on their own: BM25 over the example's documents, the report's
citation check, and the web / arXiv adapters against a local stand-in."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from dockyard.agents.research import Corpus, Source, make_graph, make_report, research_tools
from dockyard.agents.research.corpus import tokens
from dockyard.errors import ConfigError
from dockyard.providers.registry import ModelRegistry
from dockyard.providers.search import ArxivSearch, SearchUnavailable, TavilySearch
from dockyard.testing import ScriptedChatModel
from tests.agents.search_mock import SearchMock
from tests.conftest import free_port

DOCS = Path(__file__).resolve().parents[2] / "examples" / "research" / "docs"


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return Corpus(DOCS)


@pytest.fixture(scope="module")
def search_mock() -> Iterator[SearchMock]:
    with SearchMock() as mock:
        yield mock


def test_bm25_ranks_the_document_that_answers_first(corpus: Corpus) -> None:
    hits = corpus.search("recursion limit for loops", 3)
    assert hits[0].passage.doc.path == "token-budgets.md"
    assert "recursion limit" in hits[0].passage.text
    # One passage per document, best first.
    assert len({h.passage.doc.doc_id for h in hits}) == len(hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert corpus.search("pgvector sqlite-vec", 1)[0].passage.doc.doc_id == "vector-databases"
    assert corpus.search("zebra quantum", 3) == []
    korean = corpus.search("검색 결과를 캐싱해야 하나요?", 3)
    assert [h.passage.doc.doc_id for h in korean] == ["operations-cost-ko"]


def test_hangul_words_match_with_another_particle() -> None:
    assert {"예산", "산은"} <= set(tokens("예산은")) and "예산" in tokens("예산을")
    assert tokens("The limit of a run") == ["limit", "run"]


def test_a_missing_folder_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist; create it"):
        Corpus(tmp_path / "nope")


def _source(ref: str) -> Source:
    return Source(kind="document", ref=ref, title=ref.upper(), excerpt="...")


def test_the_report_lists_exactly_the_sources_it_cites() -> None:
    sources = [_source("a.md"), _source("b.md"), _source("c.md")]
    report = make_report("q", "Claim [3]. Another [1] and [3]. Made up [7].", sources)
    assert [c["ref"] for c in report["citations"]] == ["a.md", "c.md"]
    assert report["uncited"] == ["b.md"]
    assert report["unknown_citations"] == [7]
    assert report["text"].endswith("## Sources\n\n[1] A.MD: a.md\n[3] C.MD: c.md")
    # Nothing cited: no sources list to append.
    assert make_report("q", "No evidence.", sources)["text"] == "No evidence."


async def test_web_search_is_off_without_a_key_and_says_so(
    monkeypatch: pytest.MonkeyPatch, corpus: Corpus, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("TAVILY_API_KEY", raising=False)
    web = TavilySearch(base_url="http://127.0.0.1:9")
    tool = next(t for t in research_tools(corpus, web, None) if t.name == "web_search")
    with caplog.at_level(logging.WARNING, logger="dockyard.search"):
        text = await tool.ainvoke({"query": "agent loops"})
    assert text.startswith("web search unavailable: no TAVILY_API_KEY is set")
    assert "Only the local documents were searched" in text
    assert any(r.getMessage().startswith("web search unavailable") for r in caplog.records)
    assert [t.name for t in research_tools(corpus, None, None)] == [
        "search_documents",
        "read_document",
    ]


async def test_web_search_switches_on_with_the_key(
    monkeypatch: pytest.MonkeyPatch, search_mock: SearchMock
) -> None:
    monkeypatch.setenv("TAVILY_API_KEY", "tvly-test")  # read on each call
    web = TavilySearch(base_url=search_mock.tavily_url)
    assert web.status() is None
    (hit,) = await web.search("agent loops", 3)
    assert (hit.title, hit.url, hit.source) == (
        "Runaway agents and how to stop them",
        "https://example.com/runaway-agents",
        "web",
    )
    sent = search_mock.requests[-1]
    assert sent["body"] == {"query": "agent loops", "max_results": 3, "search_depth": "basic"}
    assert sent["auth"] == "Bearer tvly-test"


async def test_web_search_refused_or_unreachable_says_why(search_mock: SearchMock) -> None:
    wrong = TavilySearch(api_key=SecretStr("tvly-wrong"), base_url=search_mock.tavily_url)
    with pytest.raises(SearchUnavailable) as refused:
        await wrong.search("x")
    assert str(refused.value) == (
        "web search unavailable: Tavily refused the key in TAVILY_API_KEY (HTTP 401)"
    )
    assert "tvly-wrong" not in str(refused.value)
    closed = TavilySearch(api_key=SecretStr("k"), base_url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(SearchUnavailable, match=r"^web search unavailable: network unreachable"):
        await closed.search("x")


async def test_arxiv_search_reads_the_atom_feed(search_mock: SearchMock) -> None:
    hits = await ArxivSearch(base_url=search_mock.arxiv_url).search("agent loops", 2)
    assert [(h.title, h.url) for h in hits] == [
        ("Bounding Agent Loops", "http://arxiv.org/abs/2401.00001v1"),
        ("Budgeted Tool Use", "http://arxiv.org/abs/2401.00002v2"),
    ]
    assert hits[0].snippet == "We study step limits for LLM agents. Limits stop loops early."
    assert search_mock.requests[-1]["query"]["search_query"] == ["all:agent loops"]
    offline = ArxivSearch(base_url=f"http://127.0.0.1:{free_port()}/api/query")
    with pytest.raises(SearchUnavailable, match=r"^arxiv search unavailable: network unreachable"):
        await offline.search("x")


# -- which model the agents run on (in process, no server) -------------------------------


def _ask(text: str) -> dict[str, list[dict[str, str]]]:
    return {"messages": [{"role": "user", "content": text}]}


async def test_a_configured_model_is_used_as_is_and_may_answer_without_handing_off() -> None:
    model = ScriptedChatModel(responses=["Hello! Ask me a research question."])
    graph = make_graph(DOCS, web=TavilySearch(api_key=None, key_env_var="NO_SUCH_KEY"))
    registry = ModelRegistry({"default": model})
    state = await graph.ainvoke(_ask("hi"), registry.run_config())
    assert state["messages"][-1].text == "Hello! Ask me a research question."
    assert state["report"] is None and state["sources"] == []
    (call,) = model.calls
    # The supervisor's built-in prompt (no prompt registry outside a dockyard process).
    assert call[0].text.startswith("You are the supervisor of a research team")


async def test_with_no_model_and_no_key_the_roles_are_the_offline_script(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "TAVILY_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    graph = make_graph(DOCS, arxiv=ArxivSearch(base_url=f"http://127.0.0.1:{free_port()}/q"))
    registry = ModelRegistry()  # default: offline:support, which the team swaps out
    question = "Any papers on how an agent loop is stopped by a recursion limit?"
    state = await graph.ainvoke(_ask(question), registry.run_config())
    tools = [m.name for m in state["messages"] if m.type == "tool"]
    assert tools == ["transfer_to_researcher", "transfer_back_to_supervisor", "transfer_to_writer"]
    assert "token-budgets.md" in [c["ref"] for c in state["report"]["citations"]]
    notes = next(m.text for m in state["messages"] if m.name == "researcher" and m.text)
    # "papers": arXiv was tried too, and its answer made the notes.
    assert "arxiv_search: arxiv search unavailable: network unreachable" in notes
