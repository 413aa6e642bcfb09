"""Webhooks on run completion: one signed POST per finished run, retried, outcome on the run.

A run created with ``webhook=<url>`` gets, when it ends, a ``POST <url>`` whose JSON body
is the run as ``GET /threads/{thread_id}/runs/{run_id}`` returns it (its ``error`` is
null unless it failed), plus ``values`` (the final state) and ``webhook_sent_at``.

The URL may be a path (``/hooks/done``): it is POSTed to this server itself, e.g. to a
route of the project's ``http.app``. ``webhooks.url`` limits what a client may give
(``runtime/webhook_urls.py``); ``webhooks.headers`` are added to every attempt.

Signature. With ``webhooks.secret`` (``DOCKYARD_WEBHOOKS__SECRET`` or ``secret_file``)
every attempt carries::

    X-Dockyard-Timestamp: <unix seconds when the attempt was sent>
    X-Dockyard-Signature: sha256=<hex HMAC-SHA256(secret, b"<timestamp>." + body)>

The receiver recomputes the HMAC over the raw body bytes, compares in constant time,
and refuses timestamps older than a few minutes, so a captured request cannot be
replayed later; ``verify_signature`` does all three. Without a secret the headers are
left out (LangGraph Platform does not sign) and a warning is logged once.

Delivery. Connection errors, timeouts, 5xx and 429 are retried with exponential backoff
(``backoff_initial_seconds`` doubling up to ``backoff_max_seconds``, or the receiver's
``Retry-After`` when it sends one, capped the same way) until ``max_attempts``; any other
answer outside 2xx ends the delivery as ``failed``. Redirects are not followed. After
every attempt the run's ``webhook`` column records ``{url, status: pending|delivered|
failed, attempts, last_status_code, last_error, delivered_at}``.

Durability. The record is stored as ``pending`` with the run, so a process that dies
between the run's end and the delivery loses nothing: ``WebhookDispatcher``'s periodic
pass takes up runs that ended with a webhook still pending and no progress for
``redeliver_after_seconds``. Delivery is at least once; receivers dedupe by ``run_id``.
Stateless runs are the exception: their run row goes with their thread when they end,
so their webhook is delivered from memory only and is lost if the process dies before
it is delivered. A run cancelled before it started is reported by the periodic pass.
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_result, stop_after_attempt
from tenacity import wait_exponential as _wait_exponential

from dockyard import __version__
from dockyard.runtime.components import PeriodicTask
from dockyard.runtime.observers import Outcome, RunObserver
from dockyard.runtime.serde import dumps, to_jsonable
from dockyard.runtime.usage import Usage
from dockyard.runtime.webhook_urls import is_loopback, redact_url, validate_webhook_url
from dockyard.settings import WebhooksConfig
from dockyard.storage.base import Run, run_spec
from dockyard.storage.database import Storage

log = logging.getLogger("dockyard.webhooks")

SIGNATURE_HEADER = "X-Dockyard-Signature"
TIMESTAMP_HEADER = "X-Dockyard-Timestamp"

RunView = Callable[[Run], dict[str, Any]]
Sleep = Callable[[float], Awaitable[None]]

# -- the record ------------------------------------------------------------------------------


def new_webhook(url: str) -> dict[str, Any]:
    """The delivery record a run is created with."""
    return {
        "url": url,
        "status": "pending",
        "attempts": 0,
        "last_status_code": None,
        "last_error": None,
        "delivered_at": None,
    }


def public_webhook(webhook: dict[str, Any] | None) -> dict[str, Any] | None:
    """The delivery record as the API shows it: the URL without its query string."""
    if not webhook:
        return None
    return {**webhook, "url": redact_url(webhook["url"])}


# -- signing ---------------------------------------------------------------------------------


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def signature_headers(secret: bytes, body: bytes, now: float | None = None) -> dict[str, str]:
    ts = int(time.time() if now is None else now)
    return {TIMESTAMP_HEADER: str(ts), SIGNATURE_HEADER: sign(secret, ts, body)}


def verify_signature(
    secret: bytes,
    body: bytes,
    timestamp: str | None,
    signature: str | None,
    *,
    tolerance_seconds: float = 300,
    now: float | None = None,
) -> bool:
    """What a receiver checks: the signature over these exact bytes, and a fresh timestamp."""
    if not timestamp or not signature or not timestamp.isdigit():
        return False
    if abs((time.time() if now is None else now) - int(timestamp)) > tolerance_seconds:
        return False
    return hmac.compare_digest(sign(secret, int(timestamp), body), signature)


# -- one delivery ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    status_code: int | None  # None: no answer (connection error, timeout)
    error: str | None = None
    retry_after: float | None = None
    give_up: bool = False  # the request could not even be made: retrying cannot help

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def retryable(self) -> bool:
        code = self.status_code
        return not self.give_up and (code is None or code >= 500 or code == 429)


def _retry_after(value: str | None) -> float | None:
    """Retry-After in seconds: a number, or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class WebhookSender:
    """POSTs one body to one URL until it is delivered or attempts run out."""

    def __init__(
        self,
        config: WebhooksConfig,
        client: httpx.AsyncClient,
        sleep: Sleep = asyncio.sleep,
        *,
        loopback_base: str | None = None,
    ) -> None:
        self.config = config
        self.client = client
        self.sleep = sleep
        # Relative webhook URLs are POSTed here (this server's own address).
        self.loopback_base = loopback_base
        self._static_headers = config.resolve_headers()
        self._secret = config.secret.get_secret_value().encode() if config.secret else None
        self._backoff = _wait_exponential(
            multiplier=config.backoff_initial_seconds, max=config.backoff_max_seconds
        )
        self._warned_unsigned = False

    def _wait(self, state: RetryCallState) -> float:
        last = state.outcome.result() if state.outcome is not None else None
        if isinstance(last, Attempt) and last.retry_after is not None:
            return min(last.retry_after, self.config.backoff_max_seconds)
        return float(self._backoff(state))

    async def post(self, url: str, body: bytes) -> Attempt:
        headers = {
            **self._static_headers,
            "Content-Type": "application/json",
            "User-Agent": f"dockyard/{__version__}",
        }
        if self._secret is not None:
            headers.update(signature_headers(self._secret, body))
        elif not self._warned_unsigned:
            self._warned_unsigned = True
            log.warning(
                "webhooks are sent unsigned: set DOCKYARD_WEBHOOKS__SECRET or "
                "webhooks.secret_file so receivers can verify them"
            )
        target = url
        if is_loopback(url):
            if self.loopback_base is None:
                return Attempt(None, "relative URL: this process has no address", give_up=True)
            target = self.loopback_base + url
        try:
            r = await self.client.post(target, content=body, headers=headers)
        except Exception as e:
            # httpx messages may quote the URL; its query string stays out of the record.
            message = f"{type(e).__name__}: {e}".replace(url, redact_url(url))[:500]
            return Attempt(None, message, give_up=not isinstance(e, httpx.TransportError))
        if 200 <= r.status_code < 300:
            return Attempt(r.status_code)
        return Attempt(
            r.status_code,
            f"receiver answered HTTP {r.status_code}",
            _retry_after(r.headers.get("retry-after")),
        )

    async def deliver(
        self,
        webhook: dict[str, Any],
        body: bytes,
        record: Callable[[dict[str, Any]], Awaitable[None]],
    ) -> dict[str, Any]:
        """Send until delivered or given up; ``record`` gets the updated record after
        every attempt. Returns the final record."""
        state = {**new_webhook(webhook["url"]), **webhook}
        remaining = self.config.max_attempts - int(state["attempts"])

        async def attempt() -> Attempt:
            result = await self.post(state["url"], body)
            state["attempts"] += 1
            state["last_status_code"] = result.status_code
            state["last_error"] = result.error
            if result.ok:
                state["status"] = "delivered"
                state["delivered_at"] = datetime.now(UTC).isoformat()
            elif not result.retryable or state["attempts"] >= self.config.max_attempts:
                state["status"] = "failed"
            await record(dict(state))
            return result

        if remaining <= 0:
            state["status"] = "failed"
            await record(dict(state))
            return state
        retrying = AsyncRetrying(
            stop=stop_after_attempt(remaining),
            wait=self._wait,
            retry=retry_if_result(lambda a: not a.ok and a.retryable),
            sleep=self.sleep,
            # Out of attempts is an outcome (recorded as failed), not an exception.
            retry_error_callback=lambda s: s.outcome.result() if s.outcome else None,
        )
        await retrying(attempt)
        return state


# -- when runs end ---------------------------------------------------------------------------


def build_body(run_view: RunView, run: Run, values: Any) -> bytes:
    payload = run_view(run)
    payload.pop("webhook", None)  # the delivery record is about this request, not the run
    payload["values"] = values
    payload["webhook_sent_at"] = datetime.now(UTC)
    return dumps(payload)


def _final_values(last_values: Any) -> Any:
    if isinstance(last_values, dict) and "__interrupt__" in last_values:
        last_values = {k: v for k, v in last_values.items() if k != "__interrupt__"}
    return to_jsonable(last_values)


class WebhookDispatcher(RunObserver):
    """Delivers webhooks of runs that end in this process, in background tasks, and
    periodically takes up pending ones whose delivery was lost (see the module doc)."""

    def __init__(
        self,
        storage: Storage,
        config: WebhooksConfig,
        run_view: RunView,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
        loopback_base: str | None = None,
    ) -> None:
        self.storage = storage
        self.config = config
        self.run_view = run_view
        self._loopback_base = loopback_base
        self._transport = transport
        self._sleep = sleep
        self._sender: WebhookSender | None = None
        self._client: httpx.AsyncClient | None = None
        self._redelivery = PeriodicTask(
            "dockyard-webhooks",
            self._redeliver,
            config.sweep_interval_seconds,
            log=log,
            failed="webhook redelivery pass failed; retrying next interval",
        )
        self._tasks: dict[str, asyncio.Task[None]] = {}

    async def start(self) -> None:
        self._client = httpx.AsyncClient(
            transport=self._transport,
            # Waiting for a free pooled connection is our queue, not the receiver's fault.
            timeout=httpx.Timeout(self.config.timeout_seconds, pool=None),
            follow_redirects=False,
        )
        self._sender = WebhookSender(
            self.config, self._client, self._sleep, loopback_base=self._loopback_base
        )
        await self._redelivery.start()

    async def stop(self) -> None:
        await self._redelivery.stop()
        tasks = list(self._tasks.values())
        for t in tasks:
            # A delivery cut short stays pending in its run row: redelivered after restart.
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        self._sender = None
        if self._client is not None:
            await self._client.aclose()

    def on_ended(self, run: Run, outcome: Outcome, usage: Usage) -> None:
        """Once the run's outcome is stored: its webhook goes out."""
        if not run.get("webhook") or self._sender is None:
            return
        values = _final_values(outcome.values)
        if run["temporary"] and run_spec(run).deletes_thread:
            # The row is already gone with its thread: the payload comes from memory.
            now = datetime.now(UTC)
            ended: Run = {**run, "status": outcome.status, "error": outcome.error}
            ended["ended_at"] = ended["updated_at"] = now
            self._spawn(ended, values, stored=False)
        else:
            self._spawn(run, values, stored=True)

    async def redeliver_once(self) -> int:
        """Take up every pending webhook whose delivery was lost; returns how many."""
        taken = 0
        while True:
            older_than = datetime.now(UTC) - timedelta(seconds=self.config.redeliver_after_seconds)
            batch = await self.storage.runs.claim_pending_webhooks(older_than, limit=100)
            for run in batch:
                if run["run_id"] in self._tasks:
                    continue
                thread = await self.storage.threads.get(run["thread_id"])
                self._spawn(run, thread["values"] if thread else None, stored=True)
                taken += 1
            if len(batch) < 100:
                return taken

    def _spawn(self, run: Run, values: Any, *, stored: bool) -> None:
        run_id = run["run_id"]
        task = asyncio.create_task(self._deliver(run, values, stored), name=f"webhook-{run_id}")
        self._tasks[run_id] = task
        task.add_done_callback(
            lambda t: self._tasks.pop(run_id, None) if self._tasks.get(run_id) is t else None
        )

    async def _deliver(self, run: Run, values: Any, stored: bool) -> None:
        sender = self._sender
        run_id = run["run_id"]
        try:
            if stored:
                fresh = await self.storage.runs.get(run_id)
                # Gone (rolled back, thread deleted) or already settled elsewhere.
                if fresh is None or not fresh["webhook"] or fresh["webhook"]["status"] != "pending":
                    return
                run = fresh
            if sender is None:
                return
            webhook = run["webhook"] or {}
            body = build_body(self.run_view, run, values)

            async def record(state: dict[str, Any]) -> None:
                if stored:
                    await self.storage.runs.set_webhook(run_id, state)

            outcome = await sender.deliver(webhook, body, record)
            where = redact_url(webhook["url"])
            if outcome["status"] == "delivered":
                log.info(
                    "webhook of run %s delivered to %s (attempt %d)",
                    run_id,
                    where,
                    outcome["attempts"],
                )
            else:
                log.warning(
                    "webhook of run %s to %s failed after %d attempt(s): %s",
                    run_id,
                    where,
                    outcome["attempts"],
                    outcome["last_error"],
                )
        except asyncio.CancelledError:
            raise
        except Exception:  # storage hiccup: the run stays pending, the periodic pass retries
            log.exception("webhook of run %s: delivery interrupted", run_id)

    async def _redeliver(self) -> None:
        if n := await self.redeliver_once():
            log.info("redelivering %d pending webhook(s)", n)


__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "Attempt",
    "WebhookDispatcher",
    "WebhookSender",
    "new_webhook",
    "public_webhook",
    "redact_url",
    "sign",
    "validate_webhook_url",
    "verify_signature",
]
