"""What a client sees of a PolicyError raised inside a run, on every way in: the shared
checks of tests/api/test_policy_errors.py (embedded layouts) and
tests/runtime/test_policy_errors_cluster.py (API processes and workers)."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import openai
import pytest
from langgraph_sdk.client import LangGraphClient

GRAPH = "refusing"  # tests/fixtures/project/refusals.py
MESSAGE = "refused by the test policy"


@dataclass(frozen=True)
class Expected:
    status: int
    code: str
    openai_error: type[openai.APIStatusError]
    openai_type: str
    openai_code: str


# The contract, written out: each refusal's one HTTP answer and its OpenAI names.
EXPECTED: dict[str, Expected] = {
    "RateLimitedError": Expected(
        429, "rate_limited", openai.RateLimitError, "requests", "rate_limit_exceeded"
    ),
    "QuotaExceededError": Expected(
        429, "quota_exceeded", openai.RateLimitError, "insufficient_quota", "quota_exceeded"
    ),
    "BudgetExceededError": Expected(
        402, "budget_exceeded", openai.APIStatusError, "insufficient_quota", "budget_exceeded"
    ),
    "GuardrailBlockedError": Expected(
        400,
        "guardrail_blocked",
        openai.BadRequestError,
        "invalid_request_error",
        "guardrail_blocked",
    ),
    "InputTooLongError": Expected(
        400, "input_too_long", openai.BadRequestError, "invalid_request_error", "input_too_long"
    ),
    "ProviderUnavailableError": Expected(
        503,
        "provider_unavailable",
        openai.InternalServerError,
        "server_error",
        "provider_unavailable",
    ),
    "PolicyError": Expected(
        403,
        "policy_refused",
        openai.PermissionDeniedError,
        "invalid_request_error",
        "policy_refused",
    ),
}


def words(name: str, where: str, retry_after: float | None) -> str:
    """The user message that makes the ``refusing`` graph raise ``name`` at ``where``."""
    return f"{name} {where}" + ("" if retry_after is None else f" {retry_after}")


def graph_input(name: str, where: str, retry_after: float | None) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": words(name, where, retry_after)}]}


def run_error(name: str, retry_after: float | None) -> dict[str, Any]:
    """The run's error as stored and as its SSE ``error`` event carries it."""
    want = EXPECTED[name]
    error: dict[str, Any] = {
        "error": name,
        "message": f"{MESSAGE}: {name}",
        "code": want.code,
        "status": want.status,
    }
    if retry_after is not None:
        error["retry_after"] = retry_after
    return error


def assert_http_refusal(
    r: httpx.Response, name: str, retry_after: float | None, *, run: bool = True
) -> None:
    """A plain-HTTP answer ``{"detail", "code", ...}`` with the refusal's status."""
    want = EXPECTED[name]
    assert r.status_code == want.status, r.text
    body = r.json()
    assert body["code"] == want.code, body
    assert body["detail"] == f"{MESSAGE}: {name}"
    assert "Traceback" not in r.text
    if retry_after is None:
        assert "retry-after" not in r.headers
        assert "retry_after" not in body
    else:
        assert r.headers["retry-after"] == str(math.ceil(retry_after))
        assert body["retry_after"] == retry_after
    if run:
        assert body["run_id"] and body["thread_id"], body


async def check_run_refusal(
    client: LangGraphClient,
    http: httpx.AsyncClient,
    name: str,
    where: str,
    retry_after: float | None,
    *,
    reader: LangGraphClient | None = None,
) -> None:
    """Over the Agent Server API: the SSE ``error`` event, the stored run, ``runs.wait``
    (plain HTTP and langgraph-sdk), and ``join``. ``reader``: another API process that
    reads the run back."""
    reader = reader or client
    want = EXPECTED[name]
    expected_error = run_error(name, retry_after)
    tid = (await client.threads.create())["thread_id"]
    inp = graph_input(name, where, retry_after)
    parts = [p async for p in client.runs.stream(tid, GRAPH, input=inp, stream_mode="values")]
    assert parts[-1].event == "error", parts
    assert parts[-1].data == expected_error

    [stored] = await reader.runs.list(tid)
    assert stored["status"] == "error"
    assert stored["error"] == expected_error
    assert (await reader.runs.get(tid, stored["run_id"]))["error"]["code"] == want.code
    assert (await reader.threads.get(tid))["status"] == "error"

    r = await http.get(f"/threads/{tid}/runs/{stored['run_id']}/join")
    assert_http_refusal(r, name, retry_after)
    assert r.json()["run_id"] == stored["run_id"]

    r = await http.post("/runs/wait", json={"assistant_id": GRAPH, "input": inp})
    assert_http_refusal(r, name, retry_after)

    with pytest.raises(httpx.HTTPStatusError) as err:
        await client.runs.wait(None, GRAPH, input=inp)
    assert err.value.response.status_code == want.status
    assert err.value.response.json()["code"] == want.code


async def check_openai_refusal(
    oai: openai.AsyncOpenAI, name: str, retry_after: float | None
) -> None:
    """Over /v1/chat/completions, streamed and not, through the OpenAI SDK."""
    want = EXPECTED[name]
    thread_id = str(uuid.uuid4())
    message = {"role": "user", "content": words(name, "model", retry_after)}
    with pytest.raises(openai.APIStatusError) as err:
        await oai.chat.completions.create(
            model=GRAPH, messages=[message], extra_headers={"X-Thread-Id": thread_id}
        )
    e = err.value
    assert type(e) is want.openai_error, type(e)
    assert e.status_code == want.status
    assert (e.code, e.type) == (want.openai_code, want.openai_type)
    assert f"{MESSAGE}: {name}" in e.message
    assert e.response.headers["x-thread-id"] == thread_id
    assert e.response.headers["x-run-id"]
    # The run may have called tools before the refusal: the SDK must not rerun it.
    assert e.response.headers["x-should-retry"] == "false"
    if retry_after is not None:
        assert e.response.headers["retry-after"] == str(math.ceil(retry_after))

    stream = await oai.chat.completions.create(model=GRAPH, messages=[message], stream=True)
    with pytest.raises(openai.APIError) as streamed:
        async for _ in stream:
            pass
    assert streamed.value.code == want.openai_code
    assert streamed.value.type == want.openai_type
    assert streamed.value.message == f"{MESSAGE}: {name}"


async def check_chat_refusal(http: httpx.AsyncClient, name: str, retry_after: float | None) -> None:
    """Over POST /chat."""
    who = {"user_id": f"u-{uuid.uuid4().hex[:8]}", "session_id": f"s-{uuid.uuid4().hex[:8]}"}
    body = {**who, "message": words(name, "model", retry_after), "assistant_id": GRAPH}
    assert_http_refusal(await http.post("/chat", json=body), name, retry_after)
