"""A Slack incoming webhook: ``text`` (what notifications show) and one attachment with
the alert's fields, coloured by state."""

from __future__ import annotations

from typing import Any

import httpx

from dockyard.observability.alerts.notifiers.base import Message
from dockyard.settings import SlackNotifier

_COLOUR = {"critical": "danger", "warning": "warning"}


def payload(message: Message) -> dict[str, Any]:
    colour = "good" if message.event == "resolved" else _COLOUR.get(message.alert.severity)
    return {
        "text": message.title,
        "attachments": [
            {
                "color": colour or "warning",
                "fallback": message.title,
                "fields": [
                    {"title": label, "value": value, "short": len(value) < 40}
                    for label, value in message.fields()
                ],
                "footer": "dockyard alerts",
                "ts": int(message.at.timestamp()),
            }
        ],
    }


class SlackSender:
    def __init__(self, name: str, spec: SlackNotifier) -> None:
        assert spec.url is not None  # the settings read url_file
        self.name = name
        self.min_severity: str = spec.min_severity
        self.max_attempts = spec.max_attempts
        self._url = spec.url
        self._timeout = spec.timeout_seconds

    async def send(self, message: Message) -> str:
        async with httpx.AsyncClient(timeout=self._timeout) as client:
            r = await client.post(self._url.get_secret_value(), json=payload(message))
        if r.status_code >= 300:
            # Slack's answer names the problem ("invalid_payload", "no_service"); the URL
            # is a secret and stays out of the error.
            raise RuntimeError(f"Slack answered {r.status_code}: {r.text[:200]}")
        return str(r.status_code)
