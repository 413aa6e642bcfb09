"""E-mail over SMTP with the standard library, in a thread (smtplib blocks)."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from email.message import EmailMessage

from dockyard.observability.alerts.notifiers.base import Message
from dockyard.settings import EmailNotifier


class EmailSender:
    def __init__(self, name: str, spec: EmailNotifier) -> None:
        self.name = name
        self.min_severity: str = spec.min_severity
        self.max_attempts = spec.max_attempts
        self._spec = spec

    def compose(self, message: Message) -> EmailMessage:
        mail = EmailMessage()
        mail["From"] = self._spec.sender
        mail["To"] = ", ".join(self._spec.to)
        mail["Subject"] = f"[dockyard] {message.title}"
        mail.set_content(message.text())
        return mail

    async def send(self, message: Message) -> str:
        mail = self.compose(message)
        return await asyncio.to_thread(self._send, mail)

    def _send(self, mail: EmailMessage) -> str:
        spec = self._spec
        # Certificates are checked (host name included) as a browser would.
        tls = ssl.create_default_context(cafile=spec.ca_file)
        smtp: smtplib.SMTP
        if spec.security == "ssl":
            smtp = smtplib.SMTP_SSL(
                spec.host, spec.smtp_port, timeout=spec.timeout_seconds, context=tls
            )
        else:
            smtp = smtplib.SMTP(spec.host, spec.smtp_port, timeout=spec.timeout_seconds)
        with smtp:
            if spec.security == "starttls":
                smtp.starttls(context=tls)
            if spec.username is not None and spec.password is not None:
                smtp.login(spec.username, spec.password.get_secret_value())
            refused = smtp.send_message(mail)
        if refused:
            raise RuntimeError(f"refused recipients: {', '.join(sorted(refused))}")
        return f"sent to {len(spec.to)} recipient(s)"
