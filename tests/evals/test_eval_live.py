"""``dockyard eval`` as a user runs it: a project whose graph calls ``chat_model`` against
the mock OpenAI / Anthropic servers (they echo the last message), a live server (SQLite,
and PostgreSQL), the CLI run against it with ``--url`` and without (the project's own
server started in process).

The graph reads the run's ``dockyard_prompt``: version 2 puts "Answer: " before the
echo, so an exact scorer gives version 1 full marks and version 2 none, and a "crash"
item fails its run under every variant.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from langgraph_sdk import get_sync_client
from typer.testing import CliRunner

from dockyard.cli.main import app
from dockyard.testing import MockAnthropicServer, MockOpenAIServer
from tests.conftest import LiveServer, make_key
from tests.evals.browser import open_page
from tests.pg import fresh_database_sync

pytestmark = pytest.mark.timeout(300)

AGENT = """
from langchain_core.messages import HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.graph import START, MessagesState, StateGraph

from dockyard import chat_model

model = chat_model("default")
PREFIX = {1: "", 2: "Answer: "}


async def answer(state: MessagesState, config: RunnableConfig):
    prompt = config["configurable"].get("dockyard_prompt") or {}
    text = state["messages"][-1].content
    if text == "crash":
        raise RuntimeError("the graph broke on purpose")
    reply = await model.ainvoke([HumanMessage(PREFIX.get(prompt.get("version"), "") + text)])
    return {"messages": [reply]}


_g = StateGraph(MessagesState)
_g.add_node("answer", answer)
_g.add_edge(START, "answer")
graph = _g.compile()
"""

DOCKYARD_YAML = """
graphs:
  answer: ./agent.py:graph
models:
  default: {{model: "openai:gpt-4o-mini", base_url: {openai!r}, api_key_file: key, max_retries: 0}}
  alt:
    {{model: "anthropic:claude-sonnet-4-6", base_url: {anthropic!r}, api_key_file: key,
     max_retries: 0}}
"""

QUESTIONS = [
    "where is order A1",
    "refund please",
    "reset my password",
    "cancel order B7",
    "hello",
    "thanks",
]


@dataclass
class Project:
    root: Path
    url: str
    openai: MockOpenAIServer
    anthropic: MockAnthropicServer
    env: dict[str, str]

    @property
    def config(self) -> Path:
        return self.root / "dockyard.yaml"

    def cli(self, *args: str) -> Any:
        result = CliRunner().invoke(
            app, [*args, "--config", str(self.config)], env={"COLUMNS": "200", **self.env}
        )
        return result


def write_project(root: Path, openai: MockOpenAIServer, anthropic: MockAnthropicServer) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "key").write_text("test-key")
    (root / "agent.py").write_text(AGENT)
    (root / "dockyard.yaml").write_text(
        DOCKYARD_YAML.format(openai=openai.base_url, anthropic=anthropic.base_url)
    )
    lines = [
        json.dumps({"id": f"q{i}", "input": q, "expected": q}) for i, q in enumerate(QUESTIONS)
    ]
    lines.append(json.dumps({"id": "boom", "input": "crash", "expected": "never"}))
    (root / "tickets.jsonl").write_text("\n".join(lines) + "\n")


@pytest.fixture
def mocks() -> Iterator[tuple[MockOpenAIServer, MockAnthropicServer]]:
    with MockOpenAIServer() as oa, MockAnthropicServer() as an:
        yield oa, an


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def project(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Project]:
    root = tmp_path_factory.mktemp(f"eval-{request.param}")
    with contextlib.ExitStack() as stack:
        # Mock servers of this project's own (new ports): a provider SDK caches its HTTP
        # client per base URL and process, bound to the event loop of the server that
        # made it, which the other backend's server does not share.
        oa = stack.enter_context(MockOpenAIServer())
        an = stack.enter_context(MockAnthropicServer())
        write_project(root, oa, an)
        env: dict[str, str] = {}
        if request.param == "postgres":
            env["DOCKYARD_DATABASE_URL"] = stack.enter_context(fresh_database_sync())
        # The CLI finds the same database: the project's default data_dir, or the URL.
        server = LiveServer(
            root / ".dockyard",
            config=root / "dockyard.yaml",
            database_url=env.get("DOCKYARD_DATABASE_URL"),
        )
        stack.callback(server.start().stop)
        yield Project(root, server.url, oa, an, env)


def read_report(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "report.json").read_text())  # type: ignore[no-any-return]


def test_eval_runs_scores_stores_and_reports(project: Project) -> None:
    out = project.root / "report-one"
    result = project.cli(
        "eval",
        str(project.root / "tickets.jsonl"),
        "--assistant",
        "answer",
        "--prompt",
        "summary@1",
        "--concurrency",
        "3",
        "--url",
        project.url,
        "--scorer",
        "exact",
        "--scorer",
        '{"type": "length", "max_words": 3, "name": "short"}',
        "--out",
        str(out),
        "--name",
        "first",
    )
    assert result.exit_code == 0, result.output
    for name in (
        "report.json",
        "report.md",
        "report.html",
        "scores.png",
        "latency.png",
        "cost.png",
    ):
        assert (out / name).stat().st_size > 0, name
    assert (out / "scores.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = read_report(out)
    [a] = report["variants"]
    assert a["prompt"] == {"name": "summary", "version": 1} and a["n"] == 7 and a["errors"] == 1
    items = {i["id"]: i["variants"]["A"] for i in report["items"]}
    assert [i["id"] for i in report["items"]] == [*(f"q{n}" for n in range(6)), "boom"]
    assert items["q0"]["output"] == "where is order A1"
    # exact 1, short: 4 words over 3 -> 1 - 1/3.
    assert items["q0"]["parts"] == pytest.approx({"exact": 1.0, "short": 2 / 3})
    assert items["q0"]["score"] == pytest.approx((1 + 2 / 3) / 2)
    assert items["q4"]["score"] == 1.0
    assert "the graph broke on purpose" in items["boom"]["error"] and items["boom"]["score"] == 0
    # Usage and cost from the runs (gpt-4o-mini has a shipped price).
    assert items["q0"]["input_tokens"] > 0 and items["q0"]["output_tokens"] > 0
    assert items["q0"]["cost_usd"] > 0 and a["cost_usd"] == pytest.approx(
        sum(i["cost_usd"] for k, i in items.items() if k != "boom")
    )
    assert items["q0"]["latency_ms"] > 0
    # The runs are the server's own runs, tagged with the experiment and the variant.
    client = get_sync_client(url=project.url)
    run = client.runs.get(items["q1"]["thread_id"], items["q1"]["run_id"])
    tag = run["metadata"]["dockyard_experiment"]
    assert tag == {"id": report["experiment"]["id"], "name": "first", "variant": "A"}
    assert run["kwargs"]["config"]["configurable"]["dockyard_prompt"] == {  # type: ignore[typeddict-item]
        "name": "summary",
        "version": 1,
    }
    md = (out / "report.md").read_text()
    assert "| A | prompt summary@1 |" in md and "the graph broke on purpose" in md
    html = (out / "report.html").read_text()
    assert "<svg" in html and "http://" not in html.replace(
        'xmlns="http://www.w3.org/2000/svg"', ""
    )
    assert "<script" not in html

    # Stored: listed and shown from the configured database.
    listed = project.cli("eval", "list", "--json")
    assert listed.exit_code == 0, listed.output
    [row] = [
        e for e in json.loads(listed.stdout) if e["experiment_id"] == report["experiment"]["id"]
    ]
    assert row["status"] == "done" and row["items"] == 7
    shown = project.cli("eval", "show", report["experiment"]["id"], "--json")
    assert shown.exit_code == 0, shown.output
    again = json.loads(shown.stdout)
    assert again["variants"] == report["variants"] and again["items"] == report["items"]
    missing = project.cli("eval", "show", "no-such-id")
    assert missing.exit_code == 2 and "no experiment no-such-id" in missing.output


def test_compare_prompt_versions_reports_a_paired_test(project: Project) -> None:
    out = project.root / "report-compare"
    result = project.cli(
        "eval",
        str(project.root / "tickets.jsonl"),
        "--assistant",
        "answer",
        "--prompt",
        "summary@1",
        "--compare",
        "summary@2",
        "--url",
        project.url,
        "--out",
        str(out),
        "--no-png",
    )
    assert result.exit_code == 0, result.output
    report = read_report(out)
    a, b = report["variants"]
    assert (a["prompt"]["version"], b["prompt"]["version"]) == (1, 2)
    assert a["score"]["mean"] == pytest.approx(6 / 7) and b["score"]["mean"] == 0.0
    c = report["comparison"]
    # Six pairs differ by -1, the crash item ties: the exact test gives 2 / 2^6.
    assert (c["n"], c["wins_a"], c["wins_b"], c["ties"]) == (7, 6, 0, 1)
    assert c["p_value"] == pytest.approx(2 / 64) and c["mean_diff"] == pytest.approx(-6 / 7)
    assert c["effect_size"] < -1.5
    assert "p = 0.0312" in (out / "report.md").read_text()
    assert "p = 0.0312" in (out / "report.html").read_text()
    # The page as a browser shows it: it renders, and logs nothing to the console.
    shot = out / "report.png"
    assert open_page(out / "report.html", shot) == []
    assert shot.stat().st_size > 20_000  # a 1280x2000 page with tables and charts
    assert "p = 0.0312" in result.stdout
    assert not (out / "scores.png").exists()
    items = {i["id"]: i for i in report["items"]}
    assert items["q4"]["variants"]["B"]["output"] == "Answer: hello"


def test_model_override_reaches_the_other_provider(project: Project) -> None:
    before = len(project.anthropic.requests)
    out = project.root / "report-model"
    result = project.cli(
        "eval",
        str(project.root / "tickets.jsonl"),
        "--assistant",
        "answer",
        "--model",
        "default",
        "--compare",
        "alt",
        "--url",
        project.url,
        "--out",
        str(out),
        "--no-png",
    )
    assert result.exit_code == 0, result.output
    report = read_report(out)
    a, b = report["variants"]
    assert (a["model"], b["model"]) == ("default", "alt")
    # Both echo: same scores, no difference to find.
    assert a["score"]["mean"] == b["score"]["mean"] and report["comparison"]["p_value"] == 1.0
    calls = [r for r in project.anthropic.requests[before:] if r.path.endswith("/messages")]
    assert len(calls) == 6  # the six items that reach the model, under variant B only
    assert {r.model for r in calls} == {"claude-sonnet-4-6"}


@pytest.mark.parametrize(("threshold", "code"), [("0.9", 1), ("0.8", 0)])
def test_min_score_sets_the_exit_code(project: Project, threshold: str, code: int) -> None:
    result = project.cli(
        "eval",
        str(project.root / "tickets.jsonl"),
        "-a",
        "answer",
        "--url",
        project.url,
        "--min-score",
        threshold,
        "--out",
        str(project.root / f"report-min-{threshold}"),
        "--no-png",
    )
    # The mean is 6/7 = 0.857: below 0.9, above 0.8.
    assert result.exit_code == code, result.output
    assert ("below --min-score" in result.output) == (code == 1)


def test_dataset_from_past_runs(project: Project) -> None:
    client = get_sync_client(url=project.url)
    made = []
    for text in ("my parcel is late", "wrong size shipped"):
        thread = client.threads.create()
        client.runs.wait(
            thread["thread_id"], "answer", input={"messages": [{"role": "user", "content": text}]}
        )
        made.append(thread["thread_id"])
    path = project.root / "from-runs.jsonl"
    result = project.cli(
        "eval", "dataset", "from-runs", "--assistant", "answer", "--limit", "50", "-o", str(path)
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    by_input = {r["input"]: r for r in rows}
    # Our two runs, newest first, with their answers; no run made by an experiment.
    assert [r["input"] for r in rows[:2]] == ["wrong size shipped", "my parcel is late"]
    assert by_input["my parcel is late"]["expected"] == "my parcel is late"
    assert by_input["wrong size shipped"]["metadata"]["thread_id"] == made[1]
    assert not any(q in by_input for q in QUESTIONS)
    unknown = project.cli("eval", "dataset", "from-runs", "--assistant", "nobody", "-o", str(path))
    assert unknown.exit_code == 2 and "no assistant 'nobody'" in unknown.output


def test_bad_dataset_line_is_named(project: Project) -> None:
    bad = project.root / "bad.jsonl"
    bad.write_text('{"input": "ok"}\n{"input": "x", "answr": 1}\n')
    result = project.cli("eval", str(bad), "--assistant", "answer", "--url", project.url)
    assert result.exit_code == 2
    assert "bad.jsonl:2: unknown field(s) answr" in result.output


def test_without_url_the_project_is_served_in_process(
    tmp_path: Path, mocks: tuple[MockOpenAIServer, MockAnthropicServer]
) -> None:
    write_project(tmp_path, *mocks)
    project = Project(tmp_path, "", *mocks, {})
    out = tmp_path / "report"
    result = project.cli(
        "eval",
        str(tmp_path / "tickets.jsonl"),
        "--assistant",
        "answer",
        "--out",
        str(out),
        "--no-png",
    )
    assert result.exit_code == 0, result.output
    report = read_report(out)
    assert report["variants"][0]["score"]["mean"] == pytest.approx(6 / 7)
    listed = project.cli("eval", "list", "--json")
    assert [e["experiment_id"] for e in json.loads(listed.stdout)] == [report["experiment"]["id"]]


def test_a_server_with_keys_needs_one(tmp_path: Path) -> None:
    with MockOpenAIServer() as oa, MockAnthropicServer() as an:
        write_project(tmp_path, oa, an)
        server = LiveServer(
            tmp_path / ".dockyard", config=tmp_path / "dockyard.yaml", auth={"required": True}
        ).start()
        try:
            project = Project(tmp_path, server.url, oa, an, {})
            (tmp_path / "api-key").write_text(make_key(server) + "\n")
            args = ["eval", str(tmp_path / "tickets.jsonl"), "-a", "answer", "--url", server.url]
            args += ["--no-png", "--out"]
            keyed = project.cli(
                *args, str(tmp_path / "keyed"), "--api-key-file", str(tmp_path / "api-key")
            )
            assert keyed.exit_code == 0, keyed.output
            assert read_report(tmp_path / "keyed")["variants"][0]["errors"] == 1  # the crash
            # Without the key every run is refused, and the report says why.
            refused = project.cli(*args, str(tmp_path / "refused"), "--min-score", "0.1")
            assert refused.exit_code == 1
            report = read_report(tmp_path / "refused")
            assert report["variants"][0]["errors"] == 7
            assert "an API key is required" in report["items"][0]["variants"]["A"]["error"]
        finally:
            server.stop()
