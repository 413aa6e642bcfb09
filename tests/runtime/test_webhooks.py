"""Webhook signing, the retry schedule, and the durable redelivery of lost deliveries."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from dockyard.errors import ConfigError, InvalidRequestError
from dockyard.runtime.webhooks import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookDispatcher,
    WebhookSender,
    new_webhook,
    public_webhook,
    redact_url,
    sign,
    validate_webhook_url,
    verify_signature,
)
from dockyard.settings import WebhooksConfig, WebhookUrlPolicy, load_settings
from dockyard.storage.base import Run
from dockyard.storage.database import Storage
from dockyard.storage.tables import runs
from tests.conftest import FIXTURE_PROJECT, eventually
from tests.storage.conformance import add_run, make_thread
from tests.storage.test_postgres import postgres_backend
from tests.storage.test_sqlite import sqlite_backend

SECRET = b"s3cret"
URL = "https://hooks.example.com/run-done?token=abc"


def config(**overrides: Any) -> WebhooksConfig:
    values: dict[str, Any] = {
        "secret": SECRET.decode(),
        "backoff_initial_seconds": 0.01,
        "backoff_max_seconds": 0.08,
        **overrides,
    }
    return WebhooksConfig(**values)


# -- signing ---------------------------------------------------------------------------------


def test_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    body = b'{"run_id":"r1"}'
    expected = hmac.new(SECRET, b"1700000000." + body, hashlib.sha256).hexdigest()
    assert sign(SECRET, 1700000000, body) == f"sha256={expected}"


def test_verify_accepts_the_exact_request_and_nothing_else() -> None:
    body = b'{"run_id":"r1","values":{"x":1}}'
    now = time.time()
    ts = str(int(now))
    good = sign(SECRET, int(ts), body)
    assert verify_signature(SECRET, body, ts, good, now=now)
    assert not verify_signature(SECRET, body + b" ", ts, good, now=now)  # body changed
    assert not verify_signature(b"other", body, ts, good, now=now)  # wrong secret
    assert not verify_signature(SECRET, body, str(int(ts) + 1), good, now=now)  # ts changed
    assert not verify_signature(SECRET, body, ts, good, now=now + 301)  # a replay, later
    assert not verify_signature(SECRET, body, None, good, now=now)
    assert not verify_signature(SECRET, body, ts, None, now=now)
    assert not verify_signature(SECRET, body, "soon", good, now=now)


# -- the URL ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url", ["ftp://example.com/x", "file:///etc/passwd", "example.com/hook", "http://", ""]
)
def test_only_http_urls_with_a_host(url: str) -> None:
    with pytest.raises(InvalidRequestError) as err:
        validate_webhook_url(url)
    assert err.value.param == "webhook" and "http" in err.value.message


def test_allowed_hosts() -> None:
    allowed = ["hooks.example.com", "*.internal.example"]
    assert validate_webhook_url("https://hooks.example.com/a", allowed)
    assert validate_webhook_url("http://a.b.internal.example:8080/a", allowed)
    for url in ("https://evil.example/a", "http://internal.example/a", "http://127.0.0.1/"):
        with pytest.raises(InvalidRequestError, match="allowed_hosts"):
            validate_webhook_url(url, allowed)


def test_url_policy() -> None:
    policy = WebhookUrlPolicy(
        allowed_domains=["hooks.example.com"],
        allowed_ports=[443, 8443],
        require_https=True,
        max_url_length=60,
    )
    for url in (
        "https://hooks.example.com/a",  # no port: 443
        "https://hooks.example.com:8443/a",
        "/hooks/local",  # relative: to this server, whatever the host policy says
    ):
        assert validate_webhook_url(url, policy=policy) == url
    for url, why in [
        ("http://hooks.example.com/a", "require_https"),
        ("https://other.example.com/a", "url.allowed_domains"),
        ("https://hooks.example.com:444/a", "port 444 is not in webhooks.url.allowed_ports"),
        ("https://hooks.example.com/" + "a" * 60, "at most 60 characters"),
        ("//hooks.example.com/a", "http"),  # scheme-relative is not a path on this server
    ]:
        with pytest.raises(InvalidRequestError, match=why):
            validate_webhook_url(url, policy=policy)
    plain_http = WebhookUrlPolicy(allowed_ports=[80])
    assert validate_webhook_url("http://h.example/a", policy=plain_http)
    with pytest.raises(InvalidRequestError, match="disable_loopback"):
        validate_webhook_url("/hooks/local", policy=WebhookUrlPolicy(disable_loopback=True))
    # dockyard's allowed_hosts wins over the policy's domains
    assert validate_webhook_url("https://mine.example/a", ["mine.example"], policy=policy)


async def test_static_headers_and_relative_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    receiver = Receiver()
    cfg = config(headers={"X-Token": "t-${{ env.LG_WEBHOOK_T }}", "Content-Type": "text/x"})
    monkeypatch.setenv("LG_WEBHOOK_T", "42")
    async with httpx.AsyncClient(transport=httpx.MockTransport(receiver)) as client:
        sender = WebhookSender(cfg, client, loopback_base="http://127.0.0.1:9/api")
        assert (await sender.post("/hooks/done", b"{}")).ok
        assert (await sender.post(URL, b"{}")).ok
    first, second = receiver.requests
    assert str(first.url) == "http://127.0.0.1:9/api/hooks/done"
    assert str(second.url) == URL
    for request in (first, second):
        assert request.headers["X-Token"] == "t-42"
        assert request.headers["Content-Type"] == "application/json"  # not overridable
        assert request.headers[SIGNATURE_HEADER].startswith("sha256=")
    assert redact_url("/hooks/done?token=abc") == "/hooks/done"


def test_urls_are_shown_without_query_or_credentials() -> None:
    assert redact_url("https://u:p@hooks.example.com:8443/p?token=abc#f") == (
        "https://hooks.example.com:8443/p"
    )
    shown = public_webhook(new_webhook(URL))
    assert shown is not None and shown["url"] == "https://hooks.example.com/run-done"
    assert shown["status"] == "pending" and shown["attempts"] == 0
    assert public_webhook(None) is None


def test_secret_file_is_read_and_both_sources_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text("from-file\n")
    loaded = WebhooksConfig(secret_file=path)
    assert loaded.secret is not None and loaded.secret.get_secret_value() == "from-file"
    assert "from-file" not in repr(loaded)
    with pytest.raises(ValueError, match="not both"):
        WebhooksConfig(secret="x", secret_file=path)
    with pytest.raises(ValueError, match="cannot be read"):
        WebhooksConfig(secret_file=tmp_path / "missing")


def test_secret_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKYARD_WEBHOOKS__SECRET", "from-env")
    monkeypatch.setenv("DOCKYARD_WEBHOOKS__MAX_ATTEMPTS", "7")
    settings = load_settings(FIXTURE_PROJECT / "dockyard.yaml", data_dir=tmp_path)
    secret = settings.webhooks.secret
    assert secret is not None and secret.get_secret_value() == "from-env"
    assert settings.webhooks.max_attempts == 7
    monkeypatch.setenv("DOCKYARD_WEBHOOKS__REDELIVER_AFTER_SECONDS", "5")
    with pytest.raises(ConfigError, match="redeliver_after_seconds") as err:
        load_settings(FIXTURE_PROJECT / "dockyard.yaml", data_dir=tmp_path)
    assert "from-env" not in str(err.value)


# -- delivery and retries --------------------------------------------------------------------


class Receiver:
    """Answers from a script, then 200; remembers every request."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if not self.answers:
            return httpx.Response(200)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


async def deliver(
    receiver: Receiver, cfg: WebhooksConfig, webhook: dict[str, Any] | None = None
) -> tuple[dict[str, Any], list[float], list[dict[str, Any]]]:
    waits: list[float] = []
    records: list[dict[str, Any]] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    async def record(state: dict[str, Any]) -> None:
        records.append(state)

    async with httpx.AsyncClient(transport=httpx.MockTransport(receiver)) as client:
        sender = WebhookSender(cfg, client, sleep)
        outcome = await sender.deliver(webhook or new_webhook(URL), b'{"run_id":"r1"}', record)
    return outcome, waits, records


async def test_retries_with_exponential_backoff_then_delivers() -> None:
    receiver = Receiver(httpx.Response(500), httpx.Response(502), httpx.Response(503))
    outcome, waits, records = await deliver(receiver, config())
    assert waits == [0.01, 0.02, 0.04]
    assert outcome["status"] == "delivered" and outcome["attempts"] == 4
    assert outcome["last_status_code"] == 200 and outcome["last_error"] is None
    assert outcome["delivered_at"] is not None
    # Progress is recorded after every attempt, so a crash loses at most one.
    assert [(r["attempts"], r["status"]) for r in records] == [
        (1, "pending"),
        (2, "pending"),
        (3, "pending"),
        (4, "delivered"),
    ]
    for request in receiver.requests:
        assert request.content == b'{"run_id":"r1"}'  # the same bytes every time
        assert verify_signature(
            SECRET,
            request.content,
            request.headers[TIMESTAMP_HEADER],
            request.headers[SIGNATURE_HEADER],
        )


async def test_backoff_is_capped_and_attempts_run_out() -> None:
    receiver = Receiver(*(httpx.Response(500) for _ in range(10)))
    outcome, waits, _ = await deliver(receiver, config(max_attempts=6))
    assert waits == [0.01, 0.02, 0.04, 0.08, 0.08]
    assert len(receiver.requests) == 6
    assert outcome["status"] == "failed" and outcome["attempts"] == 6
    assert outcome["last_status_code"] == 500 and "500" in outcome["last_error"]


async def test_client_errors_other_than_429_are_not_retried() -> None:
    receiver = Receiver(httpx.Response(400), httpx.Response(200))
    outcome, waits, records = await deliver(receiver, config())
    assert len(receiver.requests) == 1 and waits == []
    assert (outcome["status"], outcome["attempts"], outcome["last_status_code"]) == (
        "failed",
        1,
        400,
    )
    assert records == [outcome]


async def test_retry_after_is_honoured_up_to_the_cap() -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    receiver = Receiver(
        httpx.Response(429, headers={"Retry-After": "3"}),
        httpx.Response(503, headers={"Retry-After": "120"}),
        httpx.Response(503, headers={"Retry-After": when}),
        httpx.Response(503, headers={"Retry-After": "0"}),
    )
    outcome, waits, _ = await deliver(receiver, config(backoff_max_seconds=60))
    assert waits[:2] == [3.0, 60.0]  # the receiver's wish, capped at backoff_max_seconds
    assert 28 <= waits[2] <= 30  # an HTTP date
    assert waits[3] == 0.0
    assert outcome["status"] == "delivered" and outcome["attempts"] == 5


async def test_connection_errors_are_retried_without_leaking_the_query() -> None:
    receiver = Receiver(httpx.ConnectError(f"cannot reach {URL}"), httpx.ReadTimeout("slow"))
    outcome, waits, records = await deliver(receiver, config())
    assert waits == [0.01, 0.02] and outcome["status"] == "delivered"
    assert records[0]["last_status_code"] is None
    assert records[0]["last_error"].startswith("ConnectError")
    assert "token" not in records[0]["last_error"]
    assert records[1]["last_error"].startswith("ReadTimeout")


async def test_a_request_that_cannot_be_made_is_not_retried() -> None:
    receiver = Receiver(ValueError("bad header"))
    outcome, waits, _ = await deliver(receiver, config())
    assert waits == [] and outcome["attempts"] == 1
    assert outcome["status"] == "failed" and outcome["last_error"].startswith("ValueError")


async def test_a_resumed_delivery_continues_the_attempt_count() -> None:
    receiver = Receiver(*(httpx.Response(500) for _ in range(10)))
    started = {**new_webhook(URL), "attempts": 3}
    outcome, _, _ = await deliver(receiver, config(max_attempts=5), started)
    assert len(receiver.requests) == 2
    assert outcome["status"] == "failed" and outcome["attempts"] == 5


async def test_without_a_secret_webhooks_go_unsigned() -> None:
    receiver = Receiver()
    outcome, _, _ = await deliver(receiver, config(secret=None))
    assert outcome["status"] == "delivered"
    assert SIGNATURE_HEADER not in receiver.requests[0].headers


# -- durability: lost deliveries are taken up again ------------------------------------------


@pytest.fixture(params=["sqlite", "postgres"])
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Storage]:
    factory: Callable[[Path], Any] = (
        sqlite_backend if request.param == "sqlite" else postgres_backend
    )
    async with factory(tmp_path) as s:
        yield s


async def ended_run(storage: Storage, webhook: dict[str, Any] | None, status: str) -> Run:
    tid = (await make_thread(storage))["thread_id"]
    run = await add_run(storage, tid, webhook=webhook)
    if status != "pending":
        await storage.runs.finish(run["run_id"], status=status)  # type: ignore[arg-type]
    await storage.threads.set_state(tid, status="idle", values={"answer": 42})
    return run


async def age(storage: Storage, seconds: float) -> None:
    past = datetime.now(UTC) - timedelta(seconds=seconds)
    async with storage.engine.begin() as conn:
        await conn.execute(runs.update().values(updated_at=past))


async def test_claim_pending_webhooks_takes_each_lost_delivery_once(storage: Storage) -> None:
    lost = await ended_run(storage, new_webhook(URL), "success")
    await ended_run(storage, {**new_webhook(URL), "status": "delivered"}, "success")
    await ended_run(storage, {**new_webhook(URL), "status": "failed"}, "error")
    await ended_run(storage, None, "success")
    await ended_run(storage, new_webhook(URL), "pending")  # not ended yet
    fresh = await ended_run(storage, new_webhook(URL), "success")
    await age(storage, 600)
    await storage.runs.set_webhook(fresh["run_id"], new_webhook(URL))  # a live delivery
    cutoff = datetime.now(UTC) - timedelta(seconds=300)
    taken = await storage.runs.claim_pending_webhooks(cutoff)
    assert [r["run_id"] for r in taken] == [lost["run_id"]]
    assert taken[0]["webhook"] == new_webhook(URL)
    assert await storage.runs.claim_pending_webhooks(cutoff) == []  # claimed: not again


async def test_the_periodic_pass_delivers_what_a_dead_process_left(storage: Storage) -> None:
    run = await ended_run(storage, new_webhook(URL), "success")
    await age(storage, 600)
    receiver = Receiver(httpx.Response(500))

    def view(r: Run) -> dict[str, Any]:
        return {"run_id": r["run_id"], "status": r["status"], "webhook": r["webhook"]}

    dispatcher = WebhookDispatcher(storage, config(), view, transport=httpx.MockTransport(receiver))
    await dispatcher.start()

    async def settled() -> Run | None:
        got = await storage.runs.get(run["run_id"])
        return got if got and got["webhook"] and got["webhook"]["status"] != "pending" else None

    try:
        assert await dispatcher.redeliver_once() == 1
        got = await eventually(settled, interval=0.02)
    finally:
        await dispatcher.stop()
    assert got is not None and got["webhook"] is not None
    assert got["webhook"]["status"] == "delivered" and got["webhook"]["attempts"] == 2
    body = orjson.loads(receiver.requests[-1].content)
    assert body["run_id"] == run["run_id"] and body["status"] == "success"
    assert body["values"] == {"answer": 42} and "webhook" not in body
