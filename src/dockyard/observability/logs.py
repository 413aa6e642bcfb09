"""Every log line of a dockyard process as one JSON object on stdout (structlog).

Two roads lead to the same line. The stdlib ``logging`` that dockyard, uvicorn, LangChain
and the graphs use goes through one root handler with structlog's ``ProcessorFormatter``;
structlog's own loggers (``structlog.get_logger()`` in a graph) render with the same
processors and write to stdout directly. Either way a line carries ``timestamp`` (ISO 8601,
UTC), ``level``, ``event``, ``logger``, what the request or run bound in context
(``request_id``, ``trace_id``, ``run_id``, ``thread_id``, ``assistant``, ``tenant``) and
the record's own fields (a stdlib record's ``extra``, a structlog call's keywords).

The PII redactor of the logs (``policies/pii/logs.py``) is the last step before rendering,
on every string of the line, the rendered traceback included: the record factory it
installs redacts stdlib records, but the formatter renders ``exc_info`` afresh, and
structlog's own calls make no record at all.

structlog's own calls take the direct road rather than a stdlib record because the record
factory turns a record's message into a string when it redacts it, where
``ProcessorFormatter`` needs structlog's event dict.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from typing import Any, Literal, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from dockyard.caller import ids as caller_ids
from dockyard.observability.origin import of_run, trace_id
from dockyard.policies.pii.detect import Scanner
from dockyard.policies.pii.logs import log_scanner, redact_text
from dockyard.settings import PiiConfig, Settings
from dockyard.storage.base import Run

Format = Literal["json", "console"]


def _tidy(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """``timestamp``, ``level``, ``event`` first (a reader scans them); dropped: uvicorn's
    ANSI copy of its message, and what another handler's formatter left on the record."""
    for key in ("color_message", "message", "asctime"):
        event_dict.pop(key, None)
    head = {k: event_dict.pop(k) for k in ("timestamp", "level", "event") if k in event_dict}
    return {**head, **event_dict}


# Fields dockyard itself fills, with nothing personal in them (the timestamp's digits
# would make the scanner look at it).
_OURS = frozenset({"timestamp", "level", "logger"})


class Redact:
    """The last processor before rendering: every string in the line, redacted."""

    def __init__(self, scanner: Scanner) -> None:
        self.scanner = scanner

    def __call__(self, _: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
        for key, value in event_dict.items():
            if key not in _OURS:
                event_dict[key] = self._clean(value)
        return event_dict

    def _clean(self, value: Any) -> Any:
        if isinstance(value, str):
            return redact_text(self.scanner, value) if value else value
        if value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, Mapping):
            return {str(k): self._clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [self._clean(v) for v in value]
        # Rendered as its text anyway (JSON would fall back to repr): redacted as such.
        return redact_text(self.scanner, str(value))


class _StdoutHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The root handler dockyard installs (found again by its type to be replaced). It
    writes to ``sys.stdout`` as it is when the line is written: a test runner swaps it,
    and a handler bound to the old one would write to a closed file."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return sys.stdout

    @stream.setter
    def stream(self, _: TextIO) -> None:
        pass


class _StdoutLogger:
    """structlog's logger for its own calls: one line per call, on the current stdout."""

    def msg(self, message: str) -> None:
        out = sys.stdout
        out.write(message + "\n")
        out.flush()

    log = debug = info = warn = warning = error = critical = exception = fatal = msg


def _stdout_logger(*_: Any) -> _StdoutLogger:
    return _StdoutLogger()


def _renderer(fmt: Format) -> Processor:
    if fmt == "console":
        return structlog.dev.ConsoleRenderer(colors=sys.stdout.isatty())
    return structlog.processors.JSONRenderer()


def configure_logging(
    level: str = "info", fmt: Format = "json", pii: PiiConfig | None = None
) -> None:
    """Route every log line of this process through structlog, to stdout. Called again,
    it replaces what it installed before (tests build many apps in one process)."""
    redact = Redact(log_scanner(pii))
    stamp = structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp")
    common: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        stamp,
    ]
    # Tracebacks rendered as text first, so that the redactor sees them.
    tail: list[Processor] = [
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
        redact,
        _tidy,
        _renderer(fmt),
    ]
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            *common,
            structlog.stdlib.add_logger_name,
            structlog.stdlib.ExtraAdder(),
        ],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *tail],
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _StdoutHandler)]:
        root.removeHandler(old)
    handler = _StdoutHandler()
    handler.setFormatter(formatter)
    root.addHandler(handler)
    number = logging.getLevelName(level.upper())
    root.setLevel(number)
    structlog.configure(
        processors=[*common, *tail],
        wrapper_class=structlog.make_filtering_bound_logger(number),
        logger_factory=_stdout_logger,
        cache_logger_on_first_use=False,
    )


def configure_from(settings: Settings, default_format: Format = "json") -> None:
    """``configure_logging`` as ``settings`` say, unless ``observability.logs.enabled``
    is off. ``default_format``: the command's own (``dockyard dev``: console)."""
    logs = settings.observability.logs
    if not logs.enabled:
        return
    configure_logging(
        logs.level or settings.log_level, logs.format or default_format, settings.policies.pii
    )


def run_fields(run: Run) -> dict[str, Any]:
    """The context fields of a run's lines: ids, and the request that made it."""
    tenant, _ = caller_ids(run["metadata"])
    origin = of_run(run["kwargs"])
    return {
        "request_id": origin.get("request_id"),
        "trace_id": trace_id(origin.get("traceparent")),
        "run_id": run["run_id"],
        "thread_id": run["thread_id"],
        "assistant": run["assistant_id"],
        "tenant": tenant,
    }


class RunLogContext:
    """A run observer: the lines an attempt logs carry its run's fields (its task's
    context; a worker's run gets the request id of the request that made it)."""

    def on_created(self, run: Run) -> None:
        return None

    def run_callbacks(self, run: Run, usage: Any) -> tuple[()]:
        return ()

    def on_ended(self, run: Run, outcome: Any, usage: Any) -> None:
        return None

    def on_started(self, run: Run) -> None:
        fields = run_fields(run)
        absent = [k for k, v in fields.items() if v is None]
        structlog.contextvars.unbind_contextvars(*absent)
        structlog.contextvars.bind_contextvars(**{k: v for k, v in fields.items() if v is not None})
