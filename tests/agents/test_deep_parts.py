"""The deep agent's parts on their own: the shell behind ``execute``, the commands the
approval defaults call dangerous, the offline preset, approval inside a sub-agent, and the
instructions from the prompt registry."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from deepagents.backends.protocol import DeleteResult, FileDownloadResponse, FileInfo, LsResult
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.store.memory import InMemoryStore
from langgraph.types import Command

from dockyard.agents.deep import DANGEROUS_COMMANDS, SYSTEM_PROMPT, ScratchShell, make_graph
from dockyard.prompt_source import use_source
from dockyard.prompts.files import FileSource
from dockyard.providers import load_chat_model
from dockyard.providers.offline.base import FakeChatModelBase, ToolSpec, tool_name
from dockyard.providers.offline.deep import DeepOfflineModel


class Files:
    """Just enough of a deepagents backend for the shell: a dict of path -> text."""

    def __init__(self, files: dict[str, str]) -> None:
        self.files = files

    def download_files(self, paths: list[str]) -> list[FileDownloadResponse]:
        return [
            FileDownloadResponse(p, self.files[p].encode(), None)
            if p in self.files
            else FileDownloadResponse(p, None, "file_not_found")
            for p in paths
        ]

    def ls(self, path: str) -> LsResult:
        entries = [FileInfo(path=p) for p in self.files if p.startswith(path)]
        return LsResult(entries=entries)

    def delete(self, path: str) -> DeleteResult:
        if self.files.pop(path, None) is None:
            return DeleteResult(error=f"File '{path}' not found")
        return DeleteResult(path=path)


@pytest.fixture
def shell() -> tuple[ScratchShell, Files]:
    files = Files({"/report.md": "# Report\n\nsome words here\n", "/memories/a.md": "kept\n"})
    sh = ScratchShell()
    sh.attach(files)  # type: ignore[arg-type]
    return sh, files


@pytest.mark.parametrize(
    ("command", "output", "code"),
    [
        ("ls /", "/memories/a.md\n/report.md", 0),
        ("cat /memories/a.md", "kept", 0),
        ("wc -w /report.md", "5 /report.md", 0),
        ("head -n 1 /report.md", "# Report", 0),
        ("grep words /report.md", "/report.md:some words here", 0),
        ("echo 'a  b'", "a  b", 0),
        ("cat /nope.md", "cat: /nope.md: No such file", 1),
        ("python -c 'import os'", "python: command not found", 127),
        ("cat /report.md | wc -l", "pipes, redirection", 2),
        ("echo $(id)", "pipes, redirection", 2),
        ("ls; rm /report.md", "pipes, redirection", 2),
    ],
)
def test_the_shell_runs_its_commands_over_the_agents_files(
    shell: tuple[ScratchShell, Files], command: str, output: str, code: int
) -> None:
    result = shell[0].execute(command)
    assert result.exit_code == code
    assert result.output.startswith(output), result.output


def test_rm_deletes_from_the_agents_files_only(shell: tuple[ScratchShell, Files]) -> None:
    sh, files = shell
    assert sh.execute("rm /report.md").exit_code == 0
    assert set(files.files) == {"/memories/a.md"}
    assert sh.execute("rm /report.md").exit_code == 1
    assert sh.execute("rm -f /report.md").exit_code == 0


@pytest.mark.parametrize(
    "command",
    ["rm -rf /x", "sudo rm x", "mv /a /b", "truncate -s 0 f", "psql -c 'DROP TABLE t'", "`rm x`"],
)
def test_dangerous_commands(command: str) -> None:
    assert re.search(DANGEROUS_COMMANDS, command)


@pytest.mark.parametrize(
    "command", ["wc -w /report.md", "ls /", "cat /memories/rm-notes.md", "grep firmware /x"]
)
def test_harmless_commands(command: str) -> None:
    assert not re.search(DANGEROUS_COMMANDS, command)


def test_offline_deep_is_a_preset() -> None:
    model = load_chat_model("offline:deep")
    assert isinstance(model, DeepOfflineModel) and model.model_name == "offline-deep"


class Delegating(FakeChatModelBase):
    """The main agent hands "write /x.md" to the general-purpose sub-agent, which writes."""

    def _reply(self, messages: list[BaseMessage], tools: list[ToolSpec]) -> AIMessage:
        last = messages[-1]
        if "task" in {tool_name(t) for t in tools}:  # the main agent
            if isinstance(last, HumanMessage):
                args = {"subagent_type": "general-purpose", "description": "write /x.md"}
                return AIMessage("", tool_calls=[{"name": "task", "args": args, "id": None}])
            return AIMessage(f"main: {last.text}")
        if isinstance(last, HumanMessage):
            args = {"file_path": "/x.md", "content": "hi"}
            return AIMessage("", tool_calls=[{"name": "write_file", "args": args, "id": None}])
        return AIMessage(f"sub-agent: {last.text}")


async def test_a_sub_agents_write_waits_for_approval_too() -> None:
    graph = make_graph(model=Delegating())
    graph.checkpointer, graph.store = InMemorySaver(), InMemoryStore()
    config: RunnableConfig = {"configurable": {"thread_id": "t"}}
    paused = await graph.ainvoke({"messages": [{"role": "user", "content": "go"}]}, config)
    (interrupt,) = paused["__interrupt__"]
    assert interrupt.value["action_requests"][0]["args"]["file_path"] == "/x.md"
    assert "/x.md" not in paused.get("files", {})
    done = await graph.ainvoke(Command(resume={"decisions": [{"type": "approve"}]}), config)
    assert "__interrupt__" not in done
    assert done["files"]["/x.md"]["content"] == "hi"
    assert done["messages"][-1].text == "main: sub-agent: Updated file /x.md"


class Recording(FakeChatModelBase):
    """Answers at once, keeping the system message of each call."""

    systems: list[str] = []

    def _reply(self, messages: list[BaseMessage], tools: list[ToolSpec]) -> AIMessage:
        self.systems.append(messages[0].text if messages[0].type == "system" else "")
        return AIMessage("ok")


async def test_the_instructions_come_from_the_prompt_registry_when_it_has_them(
    tmp_path: Path,
) -> None:
    (tmp_path / "deep-agent.yaml").write_text(
        "type: text\ntemplate: Be brief.\nlabels: [production]\n"
    )
    model = Recording(systems=[])
    graph = make_graph(model=model)
    hi = {"messages": [{"role": "user", "content": "hi"}]}
    previous = use_source(FileSource(tmp_path))
    try:
        await graph.ainvoke(hi)
        use_source(None)
        await graph.ainvoke(hi)  # no registry at all: the built-in instructions
    finally:
        use_source(previous)
    with_registry, without = model.systems
    assert with_registry.startswith("Be brief.") and SYSTEM_PROMPT not in with_registry
    assert without.startswith(SYSTEM_PROMPT)
    # What deepagents adds after the agent's own instructions is kept either way.
    assert with_registry[len("Be brief.") :] == without[len(SYSTEM_PROMPT) :]
