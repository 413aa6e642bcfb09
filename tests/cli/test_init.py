"""`dockyard init`: the generated project serves an agent that runs and pauses for approval."""

from __future__ import annotations

from pathlib import Path

from langgraph_sdk import get_client
from typer.testing import CliRunner

from dockyard.cli.main import app
from tests.conftest import LiveServer

runner = CliRunner()
FILES = ("dockyard.yaml", "agent.py", "README.md", ".gitignore")


async def test_init_creates_a_project_that_serves_and_interrupts(tmp_path: Path) -> None:
    project = tmp_path / "my-agent"
    result = runner.invoke(app, ["init", str(project)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in project.iterdir()) == sorted(FILES)
    assert f"cd {project} && dockyard serve" in result.stdout
    assert ".dockyard/" in (project / ".gitignore").read_text().split()

    server = LiveServer(tmp_path / "data", config=project / "dockyard.yaml").start()
    client = get_client(url=server.url, timeout=30)
    try:
        thread_id = (await client.threads.create())["thread_id"]
        await client.runs.wait(
            thread_id,
            "agent",
            input={"messages": [{"role": "user", "content": "I want to talk to a human"}]},
        )
        thread = await client.threads.get(thread_id)
        assert thread["status"] == "interrupted"
        [interrupt] = next(iter(thread["interrupts"].values()))
        [action] = interrupt["value"]["action_requests"]
        assert action["name"] == "create_ticket"

        result = await client.runs.wait(
            thread_id, "agent", command={"resume": {"decisions": [{"type": "approve"}]}}
        )
        assert isinstance(result, dict)
        assert "Ticket T-" in result["messages"][-1]["content"]
        assert (await client.threads.get(thread_id))["status"] == "idle"

        lookup = await client.runs.wait(
            None,
            "agent",
            input={"messages": [{"role": "user", "content": "where is order B2042?"}]},
        )
        assert isinstance(lookup, dict)
        assert "B2042 has shipped" in lookup["messages"][-1]["content"]
    finally:
        await client.aclose()
        server.stop()


def test_init_refuses_to_overwrite(tmp_path: Path) -> None:
    (tmp_path / "agent.py").write_text("mine = True\n")
    result = runner.invoke(app, ["init", str(tmp_path)])
    assert result.exit_code == 1
    assert "refusing to overwrite agent.py" in result.stderr
    assert (tmp_path / "agent.py").read_text() == "mine = True\n"
    assert not (tmp_path / "dockyard.yaml").exists()
    assert not (tmp_path / ".gitignore").exists()


def test_init_twice_fails_the_second_time(tmp_path: Path) -> None:
    assert runner.invoke(app, ["init", str(tmp_path / "p")]).exit_code == 0
    before = (tmp_path / "p" / "agent.py").read_text()
    again = runner.invoke(app, ["init", str(tmp_path / "p")])
    assert again.exit_code == 1
    assert "dockyard.yaml, agent.py, README.md" in again.stderr
    assert (tmp_path / "p" / "agent.py").read_text() == before


def test_init_keeps_an_existing_gitignore(tmp_path: Path) -> None:
    (tmp_path / ".gitignore").write_text("node_modules/")
    result = runner.invoke(app, ["init", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / ".gitignore").read_text() == "node_modules/\n.dockyard/\n"


def test_init_into_a_file_fails(tmp_path: Path) -> None:
    target = tmp_path / "taken"
    target.write_text("")
    result = runner.invoke(app, ["init", str(target)])
    assert result.exit_code == 1
    assert "it is a file" in result.stderr
