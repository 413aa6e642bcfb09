"""No real model requests in tests, as pydantic-ai's ``ALLOW_MODEL_REQUESTS = False``.

Inside ``block_model_requests()`` every request that httpx or httpx2 (the Anthropic and
OpenAI SDKs, and LangChain's ``ChatAnthropic`` / ``ChatOpenAI`` through them) would send
to a host other than this machine (``localhost``, 127.0.0.0/8, ``::1``) raises
``ModelRequestBlocked`` before it leaves, naming the URL (without its query string).
Mock providers on 127.0.0.1 (``MockAnthropicServer``, ``MockOpenAIServer``) answer as
before.

The error is raised at once, also through an SDK: it is raised as a subclass of the
Anthropic and OpenAI SDKs' own base errors too (those loaded), which the SDKs pass on
as they are, without retrying them or turning them into "Connection error.". In a
graph it ends the run as an error with that message, in a server as anywhere else.

The guard is process-wide (every thread; the guard started last decides) and keeps the
URLs it refused in ``blocked``: the pytest fixture ``no_model_requests`` fails the test
with them even when the code under test caught the error. A server a test starts as a
subprocess refuses too with ``ModelRequestGuard().start()`` at its start-up (e.g. in a
``sitecustomize`` on its ``PYTHONPATH``). Other HTTP clients (aiohttp, requests) are not
covered.
"""

from __future__ import annotations

import ipaddress
import logging
import sys
import threading
from collections.abc import Iterable
from types import ModuleType
from typing import Any

log = logging.getLogger("dockyard.testing")

# Checked before parsing an address: what nearly every request in a test goes to.
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "127.0.0.1", "::1"})
# The SDKs' base errors, which they re-raise as they are (module, class).
_SDK_ERRORS = (("anthropic", "AnthropicError"), ("openai", "OpenAIError"))


class ModelRequestBlocked(Exception):
    """A request left for a host other than this machine while model requests were blocked."""

    def __init__(self, url: str) -> None:
        self.url = url
        super().__init__(
            f"real model request to {url} refused: model requests are blocked in tests "
            "(dockyard.testing.block_model_requests). Point the model at a mock provider "
            "on 127.0.0.1 (dockyard.testing.MockAnthropicServer / MockOpenAIServer, "
            "base_url=...) or use an offline model (dockyard.testing.ScriptedChatModel)"
        )


_error_classes: dict[tuple[type, ...], type[ModelRequestBlocked]] = {}


def _blocked(url: str) -> ModelRequestBlocked:
    """The error, also an instance of the base error of each SDK loaded."""
    bases: tuple[type, ...] = (ModelRequestBlocked,)
    for module, name in _SDK_ERRORS:
        if (sdk := sys.modules.get(module)) is not None and isinstance(
            base := getattr(sdk, name, None), type
        ):
            bases += (base,)
    cls = _error_classes.get(bases)
    if cls is None:
        cls = _error_classes[bases] = type("ModelRequestBlocked", bases, {})
    return cls(url)


def is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    host = host.lower().rstrip(".")
    if host in _LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _shown(url: Any) -> str:
    """scheme://host[:port]/path: no user info, query or fragment (they may hold keys)."""
    host = url.host
    if ":" in host:
        host = f"[{host}]"
    port = f":{url.port}" if url.port is not None else ""
    return f"{url.scheme}://{host}{port}{url.path}"


class ModelRequestGuard:
    """Refuses non-loopback httpx/httpx2 requests between ``start()`` and ``stop()``
    (or inside ``with``); ``blocked`` lists the URLs refused."""

    def __init__(self, allow_hosts: Iterable[str] = ()) -> None:
        self.allow_hosts = frozenset(h.lower() for h in allow_hosts)
        self.blocked: list[str] = []

    def start(self) -> ModelRequestGuard:
        with _lock:
            if not _guards:
                _patch_all()
            _guards.append(self)
        return self

    def stop(self) -> None:
        with _lock:
            if self in _guards:
                _guards.remove(self)
            if not _guards:
                _unpatch_all()

    def __enter__(self) -> ModelRequestGuard:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def check(self, url: Any) -> None:
        """Raise ``ModelRequestBlocked`` unless ``url`` (an httpx URL) may be reached."""
        host = url.host
        if is_loopback(host) or host.lower() in self.allow_hosts:
            return
        shown = _shown(url)
        self.blocked.append(shown)
        # Also in the log: a server's log shows it even where its caller only sees a 500.
        log.warning("refused a real model request to %s (block_model_requests)", shown)
        raise _blocked(shown)


def block_model_requests(allow_hosts: Iterable[str] = ()) -> ModelRequestGuard:
    """Refuse requests off this machine while in ``with block_model_requests():``.
    ``allow_hosts``: further host names that may be reached (loopback always may)."""
    return ModelRequestGuard(allow_hosts)


# -- the patch ------------------------------------------------------------------------------

_lock = threading.Lock()
_guards: list[ModelRequestGuard] = []
_originals: list[tuple[type, str, Any]] = []


def _check(request: Any) -> None:
    guards = _guards
    if guards:
        guards[-1].check(request.url)


def _patch(module: ModuleType) -> None:
    sync_cls, async_cls = module.HTTPTransport, module.AsyncHTTPTransport
    send = sync_cls.handle_request
    send_async = async_cls.handle_async_request

    def handle_request(self: Any, request: Any) -> Any:
        _check(request)
        return send(self, request)

    async def handle_async_request(self: Any, request: Any) -> Any:
        _check(request)
        return await send_async(self, request)

    _originals.append((sync_cls, "handle_request", send))
    _originals.append((async_cls, "handle_async_request", send_async))
    setattr(sync_cls, "handle_request", handle_request)  # noqa: B010 - mypy: no assigning methods
    setattr(async_cls, "handle_async_request", handle_async_request)  # noqa: B010


def _patch_all() -> None:
    import importlib

    for name in ("httpx", "httpx2"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        _patch(module)


def _unpatch_all() -> None:
    while _originals:
        cls, attr, original = _originals.pop()
        setattr(cls, attr, original)


__all__ = [
    "ModelRequestBlocked",
    "ModelRequestGuard",
    "block_model_requests",
    "is_loopback",
]
