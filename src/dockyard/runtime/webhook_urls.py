"""Which URLs a run's webhook may point at, and where a relative one goes.

The policy is ``webhooks.url`` (langgraph.json's names): a host allowlist, a port
allowlist, https only, a length cap. A relative URL (``/hooks/done``) is a loopback call:
it is POSTed to this server itself (a route of the project's ``http.app``, say) unless
``disable_loopback`` refuses it.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from dockyard.errors import InvalidRequestError
from dockyard.settings import Settings, WebhookUrlPolicy

_DEFAULT_PORTS = {"http": 80, "https": 443}


def is_loopback(url: str) -> bool:
    return url.startswith("/") and not url.startswith("//")


def validate_webhook_url(
    url: str, allowed_hosts: list[str] | None = None, *, policy: WebhookUrlPolicy | None = None
) -> str:
    """The URL if a webhook may be sent to it; InvalidRequestError naming the problem.

    ``allowed_hosts`` (dockyard's key) wins over ``policy.allowed_domains`` (LangGraph's).
    """
    policy = policy or WebhookUrlPolicy()
    max_length = policy.max_url_length
    if is_loopback(url) and len(url) <= max_length:
        if policy.disable_loopback:
            raise InvalidRequestError(
                "webhook: relative URLs (calls back to this server) are turned off by "
                "webhooks.url.disable_loopback; give an absolute https:// URL",
                param="webhook",
            )
        return url
    try:
        parts = urlsplit(url) if len(url) <= max_length else None
        port = parts and parts.port  # a non-numeric port only fails when read
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidRequestError(
            "webhook: expected an http:// or https:// URL with a host, or a path on this "
            f"server (at most {max_length} characters), e.g. https://example.com/hooks/run-done",
            param="webhook",
        )
    if policy.require_https and parts.scheme != "https":
        raise InvalidRequestError(
            "webhook: only https:// URLs are allowed (webhooks.url.require_https)",
            param="webhook",
        )
    host = parts.hostname.lower()
    hosts, key = (
        (allowed_hosts, "webhooks.allowed_hosts")
        if allowed_hosts is not None
        else (policy.allowed_domains, "webhooks.url.allowed_domains")
    )
    if hosts is not None and not any(_host_matches(host, p) for p in hosts):
        raise InvalidRequestError(
            f"webhook: host {host!r} is not in {key}; "
            "use one of the allowed hosts or ask the operator to add it",
            param="webhook",
        )
    port = port or _DEFAULT_PORTS[parts.scheme]
    if policy.allowed_ports is not None and port not in policy.allowed_ports:
        raise InvalidRequestError(
            f"webhook: port {port} is not in webhooks.url.allowed_ports "
            f"{sorted(policy.allowed_ports)}",
            param="webhook",
        )
    return url


def _host_matches(host: str, pattern: str) -> bool:
    pattern = pattern.lower()
    if pattern.startswith("*."):
        return host.endswith(pattern[1:])
    return host == pattern


def redact_url(url: str) -> str:
    """scheme://host[:port]/path: query strings and credentials often carry tokens."""
    if is_loopback(url):
        return urlsplit(url).path
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{host}{parts.path}"


def loopback_base(settings: Settings) -> str:
    """Where this server answers, for relative webhook URLs: its own address (a
    wildcard bind is reached on the loopback interface) and route prefix."""
    host = settings.host
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.port}{settings.http.mount_prefix or ''}"
