"""A JSON POST of the alert, signed as run webhooks are (``X-Dockyard-Timestamp`` and
``X-Dockyard-Signature``, HMAC-SHA256 over ``timestamp.body``; runtime/webhooks.py)."""

from __future__ import annotations

import json

import httpx
from pydantic import SecretStr

from dockyard.observability.alerts.notifiers.base import Message, Signer
from dockyard.settings import WebhookNotifier


class WebhookSender:
    def __init__(
        self, name: str, spec: WebhookNotifier, secret: SecretStr | None, signer: Signer | None
    ) -> None:
        if secret is not None and signer is None:
            raise ValueError("a signed webhook notifier needs a signer")
        self.name = name
        self.min_severity: str = spec.min_severity
        self.max_attempts = spec.max_attempts
        self._spec = spec
        self._secret = secret
        self._signer = signer

    async def send(self, message: Message) -> str:
        body = json.dumps(message.as_dict(), separators=(",", ":")).encode()
        headers = {**self._spec.headers, "Content-Type": "application/json"}
        if self._secret is not None and self._signer is not None:
            headers.update(self._signer(self._secret.get_secret_value().encode(), body))
        async with httpx.AsyncClient(timeout=self._spec.timeout_seconds) as client:
            r = await client.post(self._spec.url, content=body, headers=headers)
        if r.status_code >= 300:
            raise RuntimeError(f"answered {r.status_code}")
        return str(r.status_code)
