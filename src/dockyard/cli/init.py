"""``dockyard init [DIR]``: a new project that serves an agent with no API key."""

from __future__ import annotations

import shlex
from pathlib import Path

import typer

GITIGNORE_LINE = ".dockyard/"

DOCKYARD_YAML = """\
# dockyard project. `dockyard serve` in this folder serves the graphs below on
# http://127.0.0.1:8123 (API docs at /docs); data goes to ./.dockyard/ (SQLite).
# It asks every request for an API key: make one with `dockyard keys create --tenant me`
# (send it as `x-api-key`); `dockyard dev` runs open, for trying things out.
graphs:
  agent: ./agent.py:graph

# The models graphs ask for with chat_model("<name>"). "offline:support" needs no API key;
# for a real model use e.g. anthropic:claude-sonnet-4-6 (with ANTHROPIC_API_KEY set) or
# openai:gpt-4o-mini (with OPENAI_API_KEY set).
models:
  default: offline:support

# Every key can also be set with a DOCKYARD_* environment variable, e.g. DOCKYARD_PORT=9000.
# runs:
#   max_concurrency: 16      # the default
#   timeout_seconds: 300     # no timeout unless set
"""

AGENT_PY = '''\
"""The project's agent: a LangChain `create_agent` graph that dockyard serves.

It runs on the model named `default` under `models:` in dockyard.yaml, as the server
gives it to each run. That is dockyard's offline rule-based model ("offline:support"),
which needs no API key: a message naming an order id calls `lookup_order`; asking for a
human calls `create_ticket`, which pauses for approval first. Point `default` at a real
model in dockyard.yaml to use one; this file does not change.
"""

from __future__ import annotations

import zlib

from dockyard import chat_model
from langchain.agents import create_agent
from langchain.agents.middleware import HumanInTheLoopMiddleware
from langchain_core.tools import tool


@tool
def lookup_order(order_id: str) -> str:
    """Look up an order's status by its id."""
    return f"Order {order_id.upper()} has shipped and arrives within 3 business days."


@tool
def create_ticket(summary: str) -> str:
    """Open a ticket for the human support team. A person approves each ticket first."""
    ticket = zlib.crc32(summary.encode()) % 10_000
    return f"Ticket T-{ticket:04d} opened; the team replies within one business day."


graph = create_agent(
    chat_model("default"),
    tools=[lookup_order, create_ticket],
    system_prompt="You are a friendly support agent. Use the tools; never invent facts.",
    # The run stops before create_ticket executes; resume it with
    # {"decisions": [{"type": "approve"}]} or {"decisions": [{"type": "reject"}]}.
    middleware=[
        HumanInTheLoopMiddleware(
            interrupt_on={"create_ticket": {"allowed_decisions": ["approve", "reject"]}}
        )
    ],
)
'''

README_MD = """\
# {name}

A dockyard project: `agent.py` is a LangChain `create_agent` graph, served behind
LangGraph's Agent Server API.

```bash
dockyard keys create --tenant me   # an API key, printed once
dockyard serve                     # http://127.0.0.1:8123, API docs at /docs; asks for the key
dockyard dev                       # open (no key), reloading when agent.py changes
```

Talk to it with `langgraph-sdk`:

```python
from langgraph_sdk import get_client

# api_key: the key `dockyard keys create` printed (not needed under `dockyard dev`)
client = get_client(url="http://127.0.0.1:8123", api_key="dk_...")
thread = await client.threads.create()
run = await client.runs.wait(
    thread["thread_id"], "agent",
    input={{"messages": [{{"role": "user", "content": "I need to talk to a human"}}]}},
)
# create_ticket waits for approval: the thread is "interrupted". Approve it:
run = await client.runs.wait(
    thread["thread_id"], "agent",
    command={{"resume": {{"decisions": [{{"type": "approve"}}]}}}},
)
print(run["messages"][-1]["content"])
```
"""

_FILES = ("dockyard.yaml", "agent.py", "README.md")


def init_project(directory: Path) -> None:
    """Write a new project into ``directory``; exit 1 rather than overwrite a file."""
    if directory.exists() and not directory.is_dir():
        typer.echo(f"cannot create a project in {directory}: it is a file", err=True)
        raise typer.Exit(1)
    existing = [name for name in _FILES if (directory / name).exists()]
    if existing:
        typer.echo(
            f"refusing to overwrite {', '.join(existing)} in {directory}; "
            "move them away or choose another folder (nothing was written)",
            err=True,
        )
        raise typer.Exit(1)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        name = directory.resolve().name or "agent"
        contents = {
            "dockyard.yaml": DOCKYARD_YAML,
            "agent.py": AGENT_PY,
            "README.md": README_MD.format(name=name),
        }
        for filename, text in contents.items():
            # "x": never clobber a file that appeared since the check above.
            with (directory / filename).open("x", encoding="utf-8") as f:
                f.write(text)
        gitignore = _ensure_gitignore(directory / ".gitignore")
    except OSError as e:
        typer.echo(f"cannot write the project into {directory}: {e}", err=True)
        raise typer.Exit(1) from None

    typer.echo(f"Created {', '.join([*_FILES, gitignore])} in {directory}")
    where = (
        ""
        if directory.resolve() == Path.cwd().resolve()
        else f"cd {shlex.quote(str(directory))} && "
    )
    typer.echo("Next steps:")
    typer.echo(f"  {where}dockyard serve")
    typer.echo("  with a key from `dockyard keys create --tenant me` (or `dockyard dev`: open)")
    typer.echo("  then open http://127.0.0.1:8123/docs, or see README.md for a client")


def _ensure_gitignore(path: Path) -> str:
    """Create ``.gitignore`` or add ``.dockyard/`` to it; returns what was done."""
    if not path.exists():
        path.write_text(f"{GITIGNORE_LINE}\n__pycache__/\n", encoding="utf-8")
        return ".gitignore"
    text = path.read_text(encoding="utf-8")
    if GITIGNORE_LINE in text.split():
        return ".gitignore (unchanged)"
    separator = "" if not text or text.endswith("\n") else "\n"
    path.write_text(f"{text}{separator}{GITIGNORE_LINE}\n", encoding="utf-8")
    return ".gitignore (added .dockyard/)"
