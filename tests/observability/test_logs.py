"""JSON log lines as a unit: both roads (stdlib logging, structlog's own calls), the
context fields, redaction of every string (tracebacks included), levels, the console
format, the run observer's fields."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import structlog

from dockyard.observability.logs import RunLogContext, configure_logging, run_fields
from dockyard.policies.pii import install_log_redaction
from dockyard.settings import PiiConfig

EMAIL, RRN = "hong.gildong@example.com", "900101-1234568"
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.fixture
def lines(capsys: pytest.CaptureFixture[str]) -> Iterator[Any]:
    """Configure dockyard's logging; the fixture's value reads stdout's lines as JSON."""
    root = logging.getLogger()
    level = root.level
    install_log_redaction()
    configure_logging("info", "json", PiiConfig(patterns={"ticket": r"TCK-\d{4}"}))
    structlog.contextvars.clear_contextvars()

    def read() -> list[dict[str, Any]]:
        return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]

    try:
        yield read
    finally:
        structlog.contextvars.clear_contextvars()
        root.setLevel(level)
        structlog.reset_defaults()


def test_a_stdlib_line_is_json_with_its_fields(lines: Any) -> None:
    structlog.contextvars.bind_contextvars(request_id="r-1", run_id="run-1")
    logging.getLogger("some.library").warning(
        "user %s asked about %s", EMAIL, "TCK-0042", extra={"attempt": 2, "who": EMAIL}
    )
    logging.getLogger("some.library").debug("below the level")
    (line,) = lines()
    assert list(line)[:3] == ["timestamp", "level", "event"]
    assert line["event"] == "user [REDACTED_EMAIL] asked about [REDACTED_TICKET]"
    assert line["level"] == "warning" and line["logger"] == "some.library"
    assert line["request_id"] == "r-1" and line["run_id"] == "run-1"
    assert line["attempt"] == 2 and line["who"] == "[REDACTED_EMAIL]"
    stamp = datetime.fromisoformat(line["timestamp"])
    assert stamp.utcoffset() == UTC.utcoffset(None)  # ISO 8601, UTC


def test_a_structlog_call_is_redacted_too(lines: Any) -> None:
    log = structlog.get_logger("graph")
    log.info("lookup", email=EMAIL, nested={"rrn": RRN, "list": [EMAIL, 3]}, n=1)
    log.debug("below the level")
    (line,) = lines()
    assert line["event"] == "lookup" and line["level"] == "info"
    assert line["email"] == "[REDACTED_EMAIL]"
    assert line["nested"] == {"rrn": "[REDACTED_KR_RRN]", "list": ["[REDACTED_EMAIL]", 3]}
    assert line["n"] == 1


def test_tracebacks_are_rendered_and_redacted(lines: Any) -> None:
    try:
        raise ValueError(f"no account for {EMAIL} / {RRN}")
    except ValueError:
        logging.getLogger("dockyard.runtime").exception("lookup failed")
        structlog.get_logger().exception("lookup failed again")
    first, second = lines()
    for line in (first, second):
        assert (
            "ValueError: no account for [REDACTED_EMAIL] / [REDACTED_KR_RRN]" in (line["exception"])
        )
        assert EMAIL not in json.dumps(line) and RRN not in json.dumps(line)
    assert first["level"] == second["level"] == "error"


def test_console_format_and_level(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    level = root.level
    try:
        configure_logging("warning", "console")
        logging.getLogger("x").info("quiet")
        logging.getLogger("x").warning("mail %s", "to me")
        out = capsys.readouterr().out
        assert "quiet" not in out
        assert "mail to me" in out and not out.lstrip().startswith("{")
        # Configured again: one handler of dockyard's, not two.
        configure_logging("info", "json")
        logging.getLogger("x").warning("once")
        (line,) = capsys.readouterr().out.splitlines()
        assert json.loads(line)["event"] == "once" and "message" not in json.loads(line)
    finally:
        root.setLevel(level)
        structlog.reset_defaults()


def test_a_run_binds_its_fields(lines: Any) -> None:
    run: Any = {
        "run_id": "run-9",
        "thread_id": "thread-9",
        "assistant_id": "asst-9",
        "metadata": {"dockyard_tenant": "acme", "dockyard_key_id": "key-1"},
        "kwargs": {"input": None, "origin": {"request_id": "req-9", "traceparent": TRACEPARENT}},
    }
    assert run_fields(run) == {
        "request_id": "req-9",
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "run_id": "run-9",
        "thread_id": "thread-9",
        "assistant": "asst-9",
        "tenant": "acme",
    }
    structlog.contextvars.bind_contextvars(request_id="the-executor's", tenant="other")
    RunLogContext().on_started({**run, "metadata": {}, "kwargs": {}})
    logging.getLogger("dockyard.runtime").warning("step")
    (line,) = lines()
    # A run of no request and no tenant: nothing left over from the task's context.
    assert "request_id" not in line and "tenant" not in line and "trace_id" not in line
    assert line["run_id"] == "run-9" and line["assistant"] == "asst-9"
    assert "key-1" not in json.dumps(line)
