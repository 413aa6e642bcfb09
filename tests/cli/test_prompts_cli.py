"""``dockyard prompts``: a round trip through every command, on a project's SQLite
database (push, list, show, diff, label, rollback, export, import)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dockyard.cli.main import app

runner = CliRunner()

V1 = """\
type: chat
messages:
  - role: system
    content: Summarize support tickets in {{ max_words }} words.
  - role: user
    content: "{{ ticket }}"
sample: {ticket: "The app crashes", max_words: 50}
labels: [production]
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "dockyard.yaml").write_text("graphs: {}\ndata_dir: data\n")
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "ticket-summary.yaml").write_text(V1)
    return tmp_path


def cli(project: Path, *args: str, code: int = 0) -> str:
    # An in-process server of an earlier test in this process may have left JSON log lines
    # going to stdout (a real `dockyard prompts` process configures no logging): the output
    # looked at here is the command's own.
    logging.disable(logging.CRITICAL)
    try:
        result = runner.invoke(app, ["prompts", *args, "-c", str(project / "dockyard.yaml")])
    finally:
        logging.disable(logging.NOTSET)
    assert result.exit_code == code, result.output
    return result.output


def test_round_trip(project: Path) -> None:
    out = cli(project, "push", str(project / "prompts"), "-m", "first")
    assert "ticket-summary@1 (new version) → production" in out
    assert "(unchanged)" in cli(project, "push", str(project / "prompts"))
    path = project / "prompts" / "ticket-summary.yaml"
    path.write_text(V1.replace("in {{ max_words }} words", "in at most {{ max_words }} words"))
    out = cli(project, "push", str(path), "-m", "tighter", "--label", "staging", "--json")
    assert json.loads(out) == [
        {
            "name": "ticket-summary",
            "version": 2,
            "created": True,
            "labels": ["production", "staging"],
        }
    ]

    rows = json.loads(cli(project, "list", "--json"))
    assert rows[0]["labels"] == {"latest": 2, "production": 2, "staging": 2}

    shown = json.loads(cli(project, "show", "ticket-summary@1", "--json"))
    assert shown["version"] == 1 and shown["message"] == "first" and shown["labels"] == []
    assert shown["variables"] == ["max_words", "ticket"]
    assert "at most" in cli(project, "show", "ticket-summary:production")

    diff = cli(project, "diff", "ticket-summary", "1", "2")
    assert "-Summarize support tickets in {{ max_words }} words." in diff
    assert "+Summarize support tickets in at most {{ max_words }} words." in diff

    assert "production 2 → 1" in cli(project, "label", "ticket-summary", "1", "production")
    assert "rolled back 1 → 2" in cli(project, "rollback", "ticket-summary")
    # staging was first set on version 2: there is nowhere to roll it back to
    out = cli(project, "rollback", "ticket-summary", "--label", "staging", code=1)
    assert "label_conflict" in out

    out_dir = project / "exported"
    cli(project, "export", "-o", str(out_dir))
    exported = (out_dir / "ticket-summary.yaml").read_text()
    assert "at most" in exported and "- production\n- staging" in exported

    # import into another project's database: the latest content, with its labels
    other = project / "other"
    other.mkdir()
    (other / "dockyard.yaml").write_text("graphs: {}\ndata_dir: data\n")
    assert "ticket-summary@1 (new version)" in cli(other, "import", str(out_dir))
    rows = json.loads(cli(other, "list", "--json"))
    assert rows[0]["labels"] == {"latest": 1, "production": 1, "staging": 1}


def test_errors_exit_non_zero_with_the_code(project: Path) -> None:
    cli(project, "push", str(project / "prompts"))
    out = cli(project, "show", "nope", code=1)
    assert "prompt_not_found" in out
    out = cli(project, "label", "ticket-summary", "1", "latest", code=1)
    assert "label_reserved" in out
    bad = project / "bad.yaml"
    bad.write_text("type: text\ntemplate: Hi {{ who }}\nvariables: [name]\n")
    out = cli(project, "push", str(bad), code=1)
    assert "bad.yaml" in out and "who" in out


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("type: text\ntemplate: x\nsample: [1]\n", "`sample` must be a mapping"),
        ("type: chat\nmessages: [hello]\n", "messages[0]"),
        ("type: text\ntemplate: x\nextra: 1\n", "unknown field(s) extra"),
        ("- not a mapping\n", "expected a mapping"),
    ],
)
def test_a_bad_file_is_named_and_nothing_is_pushed(project: Path, content: str, says: str) -> None:
    (project / "prompts" / "zz-bad.yaml").write_text(content)
    out = cli(project, "push", str(project / "prompts"), code=1).replace("\n", "")
    assert "zz-bad.yaml" in out and says in out, out
    assert (
        "no prompts"
        in runner.invoke(app, ["prompts", "list", "-c", str(project / "dockyard.yaml")]).output
    )
