"""Each notifier on its own: what it sends, and that its secrets stay out of the logs."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dockyard.cli.alerts import sample_record
from dockyard.observability.alerts import Message, build, deliver
from dockyard.runtime.webhooks import signature_headers
from dockyard.settings import AlertsConfig
from tests.observability.alerts.receivers import (
    Receiver,
    http_receiver,
    self_signed,
    smtp_server,
)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with http_receiver() as r:
        yield r


async def test_slack_url_is_not_logged(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    config = AlertsConfig.model_validate(
        {"notifiers": {"s": {"type": "slack", "url": receiver.url}}}
    )
    now = datetime.now(UTC)
    answers = await deliver(build(config.notifiers), Message("test", sample_record(now), now))
    assert answers == {"s": "ok: 200"}
    assert receiver.posts[0].path == "/hooks/T000/B000/XXX"
    assert "/hooks/T000/B000/XXX" not in caplog.text
    # Its failures do not name it either.
    receiver.statuses = [500, 500, 500]
    answers = await deliver(
        build(config.notifiers), Message("test", sample_record(now), now), wait_max=0.01
    )
    assert answers["s"] == "error: RuntimeError: Slack answered 500: invalid_payload"
    assert "/hooks/T000/B000/XXX" not in caplog.text


async def test_webhook_without_a_secret_is_unsigned(receiver: Receiver) -> None:
    config = AlertsConfig.model_validate(
        {"notifiers": {"w": {"type": "webhook", "url": receiver.url, "headers": {"X-Team": "a"}}}}
    )
    now = datetime.now(UTC)
    await deliver(
        build(config.notifiers, None, signature_headers), Message("test", sample_record(now), now)
    )
    (post,) = receiver.posts
    assert "X-Dockyard-Signature" not in post.headers
    assert post.headers["X-Team"] == "a"
    assert post.json["event"] == "alert.test"


async def test_email_over_plain_smtp_without_login() -> None:
    with smtp_server() as box:
        config = AlertsConfig.model_validate(
            {
                "notifiers": {
                    "m": {
                        "type": "email",
                        "host": box.host,
                        "port": box.port,
                        "security": "none",
                        "sender": "dockyard@example.com",
                        "to": ["ops@example.com"],
                    }
                }
            }
        )
        now = datetime.now(UTC)
        answers = await deliver(build(config.notifiers), Message("test", sample_record(now), now))
    assert answers == {"m": "ok: sent to 1 recipient(s)"}
    (mail,) = box.messages
    assert mail["Subject"] == "[dockyard] [WARNING] TEST: dockyard test alert: this notifier works"
    assert mail["From"] == "dockyard@example.com"
    assert "Severity: warning" in mail.get_payload()


async def test_email_starttls_refused_by_a_server_without_it_is_an_error() -> None:
    """``security: starttls`` never falls back to plain text."""
    with smtp_server() as box:
        config = AlertsConfig.model_validate(
            {
                "notifiers": {
                    "m": {
                        "type": "email",
                        "host": box.host,
                        "port": box.port,
                        "sender": "dockyard@example.com",
                        "to": ["ops@example.com"],
                        "max_attempts": 1,
                    }
                }
            }
        )
        now = datetime.now(UTC)
        answers = await deliver(build(config.notifiers), Message("test", sample_record(now), now))
    assert answers["m"].startswith("error: SMTPNotSupportedError")
    assert box.messages == []


@pytest.mark.parametrize("security", ["starttls", "ssl"])
async def test_email_over_tls_with_login(tmp_path: Path, security: str) -> None:
    cert, key = self_signed(tmp_path)
    with smtp_server(auth=("alerts", "pw"), tls=(cert, key), implicit_tls=security == "ssl") as box:
        spec = {
            "type": "email",
            "host": box.host,
            "port": box.port,
            "security": security,
            "username": "alerts",
            "password": "pw",
            "sender": "dockyard@example.com",
            "to": ["ops@example.com"],
            "max_attempts": 1,
        }
        now = datetime.now(UTC)
        message = Message("test", sample_record(now), now)
        # The server's certificate is checked: unknown to the system's CAs, it is refused.
        config = AlertsConfig.model_validate({"notifiers": {"m": spec}})
        refused = await deliver(build(config.notifiers), message)
        assert "CERTIFICATE_VERIFY_FAILED" in refused["m"]
        config = AlertsConfig.model_validate({"notifiers": {"m": {**spec, "ca_file": str(cert)}}})
        answers = await deliver(build(config.notifiers), message)
    assert answers == {"m": "ok: sent to 1 recipient(s)"}
    assert box.logins == [("alerts", "pw")]
    assert len(box.messages) == 1
