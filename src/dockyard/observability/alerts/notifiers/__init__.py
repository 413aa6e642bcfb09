"""Where alerts go: Slack, a signed JSON webhook, e-mail; one ``Notifier`` per entry of
``observability.alerts.notifiers`` (``build``)."""

from __future__ import annotations

from collections.abc import Mapping

from dockyard.observability.alerts.notifiers.base import (
    Event,
    Message,
    Notifier,
    Signer,
    deliver,
)
from dockyard.observability.alerts.notifiers.email import EmailSender
from dockyard.observability.alerts.notifiers.slack import SlackSender
from dockyard.observability.alerts.notifiers.webhook import WebhookSender
from dockyard.settings import (
    AlertNotifier,
    EmailNotifier,
    SlackNotifier,
    WebhookNotifier,
    WebhooksConfig,
)


def build(
    config: Mapping[str, AlertNotifier],
    webhooks: WebhooksConfig | None = None,
    signer: Signer | None = None,
) -> list[Notifier]:
    """The notifiers of ``observability.alerts.notifiers``; ``webhooks``' secret signs a
    webhook notifier that has none of its own."""
    out: list[Notifier] = []
    for name, spec in config.items():
        if isinstance(spec, SlackNotifier):
            out.append(SlackSender(name, spec))
        elif isinstance(spec, WebhookNotifier):
            secret = spec.secret or (webhooks.secret if webhooks is not None else None)
            out.append(WebhookSender(name, spec, secret, signer))
        elif isinstance(spec, EmailNotifier):
            out.append(EmailSender(name, spec))
    return out


__all__ = [
    "EmailSender",
    "Event",
    "Message",
    "Notifier",
    "Signer",
    "SlackSender",
    "WebhookSender",
    "build",
    "deliver",
]
