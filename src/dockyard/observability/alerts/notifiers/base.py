"""What every notifier shares: the ``Message`` it sends, the ``Notifier`` protocol, and
``deliver``, which sends one message to each notifier, retrying with tenacity, and says
what each answered (a failure is logged, never raised: the evaluator goes on)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from tenacity import AsyncRetrying, stop_after_attempt, wait_exponential

from dockyard.storage.alerts import AlertRecord

log = logging.getLogger("dockyard.alerts")

Event = Literal["firing", "reminder", "resolved", "test"]
SEVERITY_RANK = {"warning": 1, "critical": 2}
Signer = Callable[[bytes, bytes], dict[str, str]]
"""(secret, body) -> signature headers: runtime/webhooks.py ``signature_headers``."""


@dataclass(frozen=True, slots=True)
class Message:
    """One alert, as notifiers send it."""

    event: Event
    alert: AlertRecord
    at: datetime

    @property
    def title(self) -> str:
        what = {"firing": "FIRING", "reminder": "STILL FIRING", "resolved": "RESOLVED"}
        head = what.get(self.event, "TEST")
        return f"[{self.alert.severity.upper()}] {head}: {self.alert.summary}"

    def fields(self) -> list[tuple[str, str]]:
        """(label, value) pairs every notifier shows."""
        d = self.alert.details
        out = [("Rule", self.alert.rule), ("Severity", self.alert.severity)]
        if "value" in d:
            out.append(("Value", str(d["value"])))
        if "threshold" in d:
            out.append(("Threshold", str(d["threshold"])))
        out.append(("Since", self.alert.started_at.astimezone(UTC).isoformat()))
        if self.event == "resolved" and self.alert.resolved_at is not None:
            out.append(("Resolved", self.alert.resolved_at.astimezone(UTC).isoformat()))
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"event": f"alert.{self.event}", "at": self.at.isoformat(), **self.alert.as_dict()}

    def text(self) -> str:
        lines = [self.title, ""]
        lines += [f"{label}: {value}" for label, value in self.fields()]
        return "\n".join(lines) + "\n"


class Notifier(Protocol):
    name: str
    min_severity: str
    max_attempts: int

    async def send(self, message: Message) -> str:
        """Send ``message``; a short note of the answer ("200"), or raise."""
        ...


async def deliver(
    notifiers: list[Notifier], message: Message, *, wait_max: float = 10.0
) -> dict[str, str]:
    """Send ``message`` to each notifier that takes its severity; what each answered
    ("ok: 200" or "error: ...")."""
    out: dict[str, str] = {}
    rank = SEVERITY_RANK.get(message.alert.severity, 2)
    for n in notifiers:
        if message.event != "test" and rank < SEVERITY_RANK[n.min_severity]:
            continue
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(n.max_attempts),
                wait=wait_exponential(multiplier=0.5, max=wait_max),
                reraise=True,
            ):
                with attempt:
                    answer = await n.send(message)
            out[n.name] = f"ok: {answer}"
        except Exception as e:
            out[n.name] = f"error: {type(e).__name__}: {e}"[:500]
            log.warning(
                "alert %s (%s) not delivered to %s after %d attempt(s): %s",
                message.alert.rule,
                message.event,
                n.name,
                n.max_attempts,
                out[n.name],
            )
    return out


__all__ = ["SEVERITY_RANK", "Event", "Message", "Notifier", "Signer", "deliver"]
