"""Logs are redacted always, whatever ``policies.pii`` says: e-mail addresses, phone
numbers, Korean RRNs, card numbers and the custom ``policies.pii.patterns`` become
``[REDACTED_<ENTITY>]`` in every log record of the process (dockyard's, uvicorn's, the
libraries' and the graph's own), in its message, its arguments and its traceback.

IP addresses are left in: the logs name the database, Redis and webhook hosts the
process talks to, which an operator needs, and dockyard logs no client address (uvicorn's
access log is off below ``log_level: debug``).

It works as a log record factory, so it holds for records of every logger and for any
handler added later (uvicorn configures its own after the app is built). A
``logging.Filter`` on the handlers would miss those; a filter on a logger misses the
records its children propagate to it.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any

from dockyard.policies.pii.detect import (
    CREDIT_CARD,
    EMAIL,
    KR_RRN,
    PHONE,
    Detector,
    Scanner,
    builtin_detectors,
    regex_detector,
)
from dockyard.policies.pii.policy import redact_findings
from dockyard.settings import PiiConfig

LOG_ENTITIES = (EMAIL, PHONE, KR_RRN, CREDIT_CARD)


def log_scanner(config: PiiConfig | None = None) -> Scanner:
    """The detectors the logs are redacted with: ``LOG_ENTITIES`` (an RRN with or without
    its check digit: a log line is no place to be strict) and ``config``'s patterns."""
    every = builtin_detectors(rrn_checksum=False)
    detectors: dict[str, Detector] = {name: every[name] for name in LOG_ENTITIES}
    patterns = config.patterns if config is not None else {}
    for name, pattern in patterns.items():
        detectors[name] = regex_detector(re.compile(pattern))
    return Scanner(detectors, custom=bool(patterns))


def redact_text(scanner: Scanner, text: str) -> str:
    findings = scanner.scan(text)
    return redact_findings(text, findings) if findings else text


def redact_record(scanner: Scanner, record: logging.LogRecord) -> None:
    """Redact ``record`` in place. Its ``args`` keep their shape where that is enough
    (uvicorn's access formatter reads them by position); otherwise the message is
    formatted here and stored without arguments."""
    try:
        message = record.getMessage()
    except Exception:  # logging reports the bad call itself, with the values: redact them
        record.msg, record.args = redact_text(scanner, repr(record.msg)), ()
    else:
        if scanner.scan(message):
            args = record.args
            if (
                isinstance(args, tuple)
                and not scanner.scan(str(record.msg))
                and not any(not isinstance(a, str) and scanner.scan(str(a)) for a in args)
            ):
                record.args = tuple(
                    redact_text(scanner, a) if isinstance(a, str) else a for a in args
                )
            else:
                record.msg, record.args = redact_text(scanner, message), ()
    if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
        text = logging.Formatter().formatException(record.exc_info)
        redacted = redact_text(scanner, text)
        if redacted != text:  # else the handler formats it its own way
            record.exc_text = redacted
    if record.stack_info:
        record.stack_info = redact_text(scanner, record.stack_info)


class PiiLogFilter(logging.Filter):
    """The same redaction as a filter, for a handler of your own (the process-wide
    factory already covers every record dockyard's processes log)."""

    def __init__(self, config: PiiConfig | None = None) -> None:
        super().__init__()
        self.scanner = log_scanner(config)

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(self.scanner, record)
        return True


class RedactingRecordFactory:
    """Wraps the log record factory in place and redacts every record it makes."""

    def __init__(self, inner: Any, scanner: Scanner) -> None:
        self.inner = inner
        self.scanner = scanner

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record: logging.LogRecord = self.inner(*args, **kwargs)
        redact_record(self.scanner, record)
        return record


_lock = threading.Lock()


def install_log_redaction(config: PiiConfig | None = None) -> RedactingRecordFactory:
    """Redact every log record of this process from now on. Called by every dockyard
    process at start (``create_app``, ``dockyard worker``); calling it again only swaps
    the custom patterns."""
    with _lock:
        current = logging.getLogRecordFactory()
        scanner = log_scanner(config)
        if isinstance(current, RedactingRecordFactory):
            current.scanner = scanner
            return current
        factory = RedactingRecordFactory(current, scanner)
        logging.setLogRecordFactory(factory)
        return factory
