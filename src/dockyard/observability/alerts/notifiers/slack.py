"""A Slack incoming webhook: ``text`` (what notifications show) and one attachment with
the alert's fields, coloured by state."""

from __future__ import annotations

import logging
from typing import Any

import httpx

from dockyard.observability.alerts.notifiers.base import Message
from dockyard.settings import SlackNotifier

_COLOUR = {"critical": "danger", "warning": "warning"}


class _HideUrl(logging.Filter):
    """Drops httpx's "HTTP Request: POST <url>" lines that name a secret URL (a Slack
    webhook URL is its own credential) whatever the process's log level."""

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url

    def filter(self, record: logging.LogRecord) -> bool:
        return self.url not in str(record.args) and self.url not in str(record.msg)


def hide_from_http_logs(url: str) -> None:
    logger = logging.getLogger("httpx")
    if not any(isinstance(f, _HideUrl) and f.url == url for f in logger.filters):
        logger.addFilter(_HideUrl(url))


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
        hide_from_http_logs(spec.url.get_secret_value())
        self._timeout = spec.timeout_seconds

    async def send(self, message: Message) -> str:
        async with httpx.AsyncClient(timeout=self._timeout) as client:
            r = await client.post(self._url.get_secret_value(), json=payload(message))
        if r.status_code >= 300:
            # Slack's answer names the problem ("invalid_payload", "no_service"); the URL
            # is a secret and stays out of the error.
            raise RuntimeError(f"Slack answered {r.status_code}: {r.text[:200]}")
        return str(r.status_code)
