"""What ``policies.pii`` does with what the detectors find: mask, redact, hash or block."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

from dockyard.errors import PiiBlockedError
from dockyard.policies.pii.detect import (
    CREDIT_CARD,
    EMAIL,
    PHONE,
    Detector,
    Finding,
    Scanner,
    builtin_detectors,
    regex_detector,
)
from dockyard.settings import PiiConfig, PiiStage

Action = Literal["mask", "redact", "hash", "block"]
_SEEN_MAX_CHARS = 4_000_000  # the texts whose findings are kept, at most (then forgotten)

_WHERE: dict[str, str] = {
    "input": "the model input holds personal data ({}) and policies.pii.action is 'block': "
    "remove it and send again",
    "output": "the model's answer held personal data ({}) and policies.pii.action is "
    "'block': it was withheld",
    "tool_results": "a tool result held personal data ({}) and policies.pii.action is "
    "'block': it was not passed to the model",
}


def _mask(finding: Finding) -> str:
    """Keep the shape (separators, an e-mail's top-level domain, the last four digits of
    a card or phone number, as printed receipts do) and hide the rest."""
    text = finding.text
    keep_from = len(text)
    if finding.entity in (CREDIT_CARD, PHONE):
        seen = 0
        for i in range(len(text) - 1, -1, -1):
            seen += text[i].isdigit()
            if seen == 4:
                keep_from = i
                break
    elif finding.entity == EMAIL:
        keep_from = text.rfind(".")
    return "".join("*" if c.isalnum() else c for c in text[:keep_from]) + text[keep_from:]


def _redact(finding: Finding) -> str:
    return f"[REDACTED_{finding.entity.upper()}]"


class PiiPolicy:
    """Finds personal data and applies one action to it.

    ``scan(text)`` lists the findings; ``apply(text)`` returns the text with the action
    applied (or raises ``PiiBlockedError``); ``applies_to(stage)`` says whether the
    configuration covers model ``input``, ``output`` or ``tool_results``. Messages:
    ``dockyard.policies.pii.messages``."""

    def __init__(
        self,
        detectors: dict[str, Detector],
        *,
        action: Action = "mask",
        apply_to: Iterable[PiiStage] = ("input", "output", "tool_results"),
        hash_key: bytes | None = None,
        custom: bool = False,
    ) -> None:
        self.scanner = Scanner(detectors, custom=custom)
        self.action: Action = action
        self.stages = frozenset(apply_to)
        self.hash_key = hash_key
        replace: dict[str, Callable[[Finding], str]] = {
            "mask": _mask,
            "redact": _redact,
            "hash": self._hash,
        }
        self._replace = replace.get(action)
        self._seen: dict[str, list[Finding]] = {}
        self._seen_chars = 0

    @classmethod
    def from_config(cls, config: PiiConfig) -> PiiPolicy:
        every = builtin_detectors(rrn_checksum=config.kr_rrn_checksum)
        detectors: dict[str, Detector] = {name: every[name] for name in config.entities}
        for name, pattern in config.patterns.items():
            detectors[name] = regex_detector(re.compile(pattern))
        key = config.hash_key.get_secret_value().encode() if config.hash_key else None
        return cls(
            detectors,
            action=config.action,
            apply_to=config.apply_to,
            hash_key=key,
            custom=bool(config.patterns),
        )

    @property
    def entities(self) -> list[str]:
        return list(self.scanner.detectors)

    def detector(self, entity: str) -> Callable[[str], list[dict[str, Any]]]:
        """``entity``'s detector in the form LangChain's ``PIIMiddleware`` takes, to mix
        dockyard's entities into a ``create_agent`` graph:
        ``PIIMiddleware("kr_rrn", detector=policy.detector("kr_rrn"), strategy="redact")``."""
        detect = self.scanner.detectors[entity]

        def matches(text: str) -> list[dict[str, Any]]:
            return [
                {"type": entity, "value": text[start:end], "start": start, "end": end}
                for start, end in detect(text)
            ]

        return matches

    def applies_to(self, stage: PiiStage) -> bool:
        return stage in self.stages

    def scan(self, text: str) -> list[Finding]:
        # A conversation is sent again with every model call: its earlier messages are
        # looked up here, not read again.
        found = self._seen.get(text)
        if found is None:
            found = self.scanner.scan(text)
            if self._seen_chars + len(text) > _SEEN_MAX_CHARS:
                self._seen.clear()
                self._seen_chars = 0
            self._seen[text] = found
            self._seen_chars += len(text)
        return list(found)

    def apply(self, text: str, *, stage: PiiStage = "input") -> str:
        """``text`` with every finding masked, redacted or hashed; with ``block``, a
        ``PiiBlockedError`` naming the kinds of data and the ``stage`` (never a value)."""
        findings = self.scan(text)
        if not findings:
            return text
        if self._replace is None:
            raise blocked(findings, stage)
        return replace_findings(text, findings, self._replace)

    def _hash(self, finding: Finding) -> str:
        value = finding.text.encode()
        if self.hash_key is None:
            digest = hashlib.sha256(value).hexdigest()
        else:
            digest = hmac.new(self.hash_key, value, hashlib.sha256).hexdigest()
        # LangChain's PIIMiddleware writes its hashes the same way.
        return f"<{finding.entity}_hash:{digest[:12]}>"


def replace_findings(
    text: str, findings: Sequence[Finding], replace: Callable[[Finding], str]
) -> str:
    parts: list[str] = []
    at = 0
    for f in findings:
        parts.append(text[at : f.start])
        parts.append(replace(f))
        at = f.end
    parts.append(text[at:])
    return "".join(parts)


def redact_findings(text: str, findings: Sequence[Finding]) -> str:
    return replace_findings(text, findings, _redact)


def blocked(findings: Sequence[Finding], stage: PiiStage) -> PiiBlockedError:
    return PiiBlockedError(_WHERE[stage].format(", ".join(sorted({f.entity for f in findings}))))
