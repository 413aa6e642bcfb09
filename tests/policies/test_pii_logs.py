"""Logs are redacted always: the record factory as a unit, then the log of a real
``dockyard serve`` process whose run input holds personal data, as an operator reads it."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from langgraph_sdk import get_client

from dockyard.policies.pii import PiiLogFilter, install_log_redaction
from dockyard.policies.pii.logs import RedactingRecordFactory
from dockyard.settings import PiiConfig
from tests.conftest import eventually, free_port, guarded

EMAIL, PHONE, RRN, CARD = (
    "hong.gildong@example.com",
    "010-2345-6789",
    "900101-1234568",
    "4111 1111 1111 1111",
)
SECRETS = (EMAIL, PHONE, RRN, CARD, "2345-6789", "1234568", "4111 1111")


@pytest.fixture
def log_text() -> Iterator[io.StringIO]:
    """What a handler on the root logger writes, formatted, tracebacks included."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield out
    finally:
        root.removeHandler(handler)


def test_every_record_is_redacted(log_text: io.StringIO) -> None:
    factory = install_log_redaction(PiiConfig(patterns={"ticket": r"TCK-\d{4}"}))
    assert logging.getLogRecordFactory() is factory
    assert install_log_redaction() is factory  # once per process; patterns swapped
    install_log_redaction(PiiConfig(patterns={"ticket": r"TCK-\d{4}"}))
    log = logging.getLogger("some.library")
    log.warning("user %s called from %s about %s", EMAIL, PHONE, "TCK-0042")
    log.warning(f"inline {RRN} and {CARD}")  # a careless f-string
    log.warning("card as a number: %d", int(CARD.replace(" ", "")))
    log.warning("a mapping: %(who)s", {"who": EMAIL})
    try:
        raise ValueError(f"cannot parse {EMAIL}")
    except ValueError:
        log.exception("failed")
    log.warning("nothing personal; host 10.0.0.5")
    text = log_text.getvalue()
    for secret in (*SECRETS, "TCK-0042", "4111111111111111"):
        assert secret not in text, secret
    assert "user [REDACTED_EMAIL] called from [REDACTED_PHONE] about [REDACTED_TICKET]" in text
    assert "inline [REDACTED_KR_RRN] and [REDACTED_CREDIT_CARD]" in text
    assert "ValueError: cannot parse [REDACTED_EMAIL]" in text  # the traceback too
    assert "host 10.0.0.5" in text  # addresses stay: the operator needs them


def test_args_keep_their_shape() -> None:
    """uvicorn's access formatter reads ``record.args`` by position."""
    factory = install_log_redaction()
    assert isinstance(factory, RedactingRecordFactory)
    record = logging.getLogger("uvicorn.access").makeRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", f"/lookup?mail={EMAIL}", "1.1", 200),
        None,
    )
    assert record.args == ("127.0.0.1:5000", "GET", "/lookup?mail=[REDACTED_EMAIL]", "1.1", 200)


def test_filter_for_your_own_handler() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "to %s", (EMAIL,), None)
    assert PiiLogFilter().filter(record) is True
    assert record.getMessage() == "to [REDACTED_EMAIL]"


GRAPH = """
import logging

from langgraph.graph import END, START, MessagesState, StateGraph

log = logging.getLogger("support_agent")


def handle(state: MessagesState) -> dict:
    text = state["messages"][-1].content
    log.warning("customer wrote: %s", text)
    log.warning(f"routing ticket for {text}")
    try:
        raise LookupError(f"no account for {text}")
    except LookupError:
        log.exception("lookup failed")
    if "fail" in text:
        raise ValueError(f"cannot handle {text}")
    return {"messages": [("ai", "noted")]}


graph = (
    StateGraph(MessagesState).add_node(handle).add_edge(START, "handle").add_edge("handle", END)
).compile()
"""


def logged(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """``dockyard serve --log-level debug`` on a project whose graph logs what it is
    given; its stdout and stderr go to a file: (url, log file)."""
    (tmp_path / "agent.py").write_text(textwrap.dedent(GRAPH))
    (tmp_path / "dockyard.yaml").write_text("graphs:\n  support: ./agent.py:graph\n")
    port = free_port()
    log_path = tmp_path / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}
    env["DOCKYARD_DATA_DIR"] = str(tmp_path / "data")
    args = ["serve", "-c", str(tmp_path / "dockyard.yaml"), "--port", str(port)]
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dockyard", *args, "--log-level", "debug"],
            env=guarded(env),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )
    try:
        yield f"http://127.0.0.1:{port}", log_path
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert proc.returncode is not None


async def test_server_logs_hold_no_personal_data(served: tuple[str, Path]) -> None:
    url, log_path = served

    async def up() -> bool:
        try:
            async with httpx.AsyncClient() as h:
                return (await h.get(f"{url}/ok")).status_code == 200
        except httpx.TransportError:
            return False

    await eventually(up, timeout=60)
    client = get_client(url=url, timeout=30)
    text = f"I am {EMAIL}, call {PHONE}, RRN {RRN}, card {CARD}"
    ok = await client.runs.wait(None, "support", input={"messages": [("user", text)]})
    assert ok["messages"][-1]["content"] == "noted"  # type: ignore[index, call-overload]
    thread = await client.threads.create()
    run = await client.runs.create(
        thread["thread_id"], "support", input={"messages": [("user", f"fail {text}")]}
    )
    done = await client.runs.join(thread["thread_id"], run["run_id"])
    assert "__error__" in done  # type: ignore[operator]
    await client.aclose()
    # dockyard logs the failure itself ("run ... failed: ValueError: ...")
    await eventually(lambda: "cannot handle" in logged(log_path))
    out = logged(log_path)
    assert "customer wrote: I am [REDACTED_EMAIL], call [REDACTED_PHONE]" in out
    assert "[REDACTED_KR_RRN]" in out and "[REDACTED_CREDIT_CARD]" in out
    assert "LookupError: no account for I am [REDACTED_EMAIL]" in out  # a traceback
    assert "ValueError: cannot handle fail I am [REDACTED_EMAIL]" in out
    for secret in SECRETS:
        assert secret not in out, f"{secret!r} in the server's log:\n{out}"


async def test_a_worker_installs_it_first(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from dockyard.errors import ConfigError
    from dockyard.runtime.worker import run_worker
    from dockyard.settings import load_settings

    monkeypatch.delenv("DOCKYARD_CONFIG_FILE", raising=False)
    settings = load_settings(None, project_dir=tmp_path, data_dir=tmp_path / "data")
    before = logging.getLogRecordFactory()
    logging.setLogRecordFactory(logging.LogRecord)
    try:
        with pytest.raises(ConfigError):  # the embedded layout has no workers
            await run_worker(settings)
        assert isinstance(logging.getLogRecordFactory(), RedactingRecordFactory)
    finally:
        logging.setLogRecordFactory(before)
