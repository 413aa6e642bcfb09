"""Errors in the OpenAI wire format for the /v1 routes."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from dockyard import events
from dockyard.api.responses import json_response
from dockyard.errors import AgentRunError, DockyardError, PolicyError

log = logging.getLogger("dockyard.api.openai")

THREAD_HEADER = "X-Thread-Id"
RUN_HEADER = "X-Run-Id"
THREAD_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")

# What OpenAI answers for the same refusals, by dockyard code: (type, code). OpenAI's
# clients branch on these; the other codes are dockyard's own.
_OPENAI_NAMES: dict[str, tuple[str, str]] = {
    "assistant_not_found": ("invalid_request_error", "model_not_found"),
    "rate_limited": ("requests", "rate_limit_exceeded"),
    "quota_exceeded": ("insufficient_quota", "quota_exceeded"),
    "budget_exceeded": ("insufficient_quota", "budget_exceeded"),
}


# Request fields OpenAI defines that dockyard refuses, and why. The sampling settings it
# does pass on are listed in docs/openai.md.
_NOT_PASSED = (
    "not one of the settings passed to the agent's models (max_tokens, temperature, top_p, "
    "stop, seed, presence_penalty, frequency_penalty); set it on the model the graph builds"
)
UNSUPPORTED_FIELDS: dict[str, str] = {
    **{
        f: "the agent brings its own tools; define them in the graph"
        for f in ("tools", "tool_choice", "functions", "function_call", "parallel_tool_calls")
    },
    **{f: _NOT_PASSED for f in ("reasoning_effort", "verbosity", "service_tier")},
    "logit_bias": "token ids belong to one tokenizer and the agent's models may use another; "
    "they are not passed on",
    "modalities": "the agent answers in text",
    "audio": "the agent answers in text",
    "prediction": "predicted outputs are an OpenAI platform feature",
    "web_search_options": "give the agent a search tool in the graph",
    "n": "only one choice per request (n=1) is produced",
    "logprobs": "log probabilities are not available from an agent run",
    "top_logprobs": "log probabilities are not available from an agent run",
    "response_format": 'the reply\'s format is defined by the graph; only {"type": "text"} '
    "is accepted",
    "store": "stored completions are an OpenAI platform feature; use X-Thread-Id for state",
    "prompt_cache_key": "dockyard does not pass cache keys to the agent's models; prompt "
    "caching is left to the model provider",
    "safety_identifier": "not passed to the agent's models; `user` is accepted and kept in the "
    "run's metadata",
}


def openai_error(
    status: int,
    message: str,
    code: str,
    param: str | None = None,
    headers: dict[str, str] | None = None,
    *,
    kind: str | None = None,
    retry: bool | None = None,
) -> Response:
    """``kind``: OpenAI's error type (by default from the status); ``retry``: whether the
    OpenAI SDKs may send the request again (by default only on a 503)."""
    if kind is None:
        kind = "invalid_request_error" if status < 500 else "server_error"
        if code in ("agent_failed", "agent_timeout"):
            kind = "agent_error"
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    out = dict(headers or {})
    if not (status == 503 if retry is None else retry):
        # The OpenAI SDKs retry 409 and 5xx: a failed agent run is not worth rerunning
        # blindly (its tools may have acted), and the rest will not change on a retry.
        out["x-should-retry"] = "false"
    return json_response(body, status_code=status, headers=out)


def openai_names(exc: DockyardError) -> tuple[str | None, str]:
    """OpenAI's (type, code) for ``exc``; type None: the one its status gives."""
    kind, code = _OPENAI_NAMES.get(exc.code, (None, exc.code))
    if isinstance(exc, AgentRunError):
        kind = "agent_error"
    return kind, code


def error_response(exc: DockyardError) -> Response:
    """``exc`` in OpenAI's shape: what every error of the /v1 routes answers."""
    events.refused(exc)
    kind, code = openai_names(exc)
    param = "model" if code == "model_not_found" else exc.param
    headers = exc.headers()
    retry: bool | None = None
    if isinstance(exc, AgentRunError | PolicyError) and exc.run_id is not None:
        headers |= {THREAD_HEADER: str(exc.thread_id), RUN_HEADER: exc.run_id}
        retry = False  # the run may have called tools: rerunning it is the client's call
    elif isinstance(exc, PolicyError):
        # Refused before anything ran: the SDK may wait (Retry-After) and ask again.
        retry = exc.status_code in (429, 503)
    return openai_error(exc.status_code, exc.message, code, param, headers, kind=kind, retry=retry)


def _validation_error(exc: RequestValidationError) -> Response:
    problems: list[tuple[str, str, str]] = []  # (param, message, code)
    for e in exc.errors():
        loc = [str(p) for p in e.get("loc", ()) if p != "body"]
        param = ".".join(loc)
        if e.get("type") == "json_invalid":
            where = f" at character {loc[-1]}" if loc else ""
            problems.append(("", f"the body is not valid JSON{where}", "invalid_request"))
        elif e.get("type") == "extra_forbidden":
            why = UNSUPPORTED_FIELDS.get(param, "not a field dockyard accepts here")
            problems.append(
                (param, f"{param} is not supported: {why}; remove it", "unsupported_field")
            )
        else:
            msg = str(e.get("msg", "invalid")).removeprefix("Value error, ")
            problems.append((param, f"{param or 'body'}: {msg}", "invalid_request"))
    if not problems:
        return openai_error(422, "invalid request body", "invalid_request")
    message = "invalid request: " + "; ".join(p[1] for p in problems)
    return openai_error(422, message, problems[0][2], problems[0][0] or None)


class OpenAIRoute(APIRoute):
    """Errors of this route family in OpenAI's shape, which the OpenAI SDKs parse."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def run(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                return _validation_error(exc)
            except DockyardError as exc:
                return error_response(exc)
            except StarletteHTTPException as exc:
                # FastAPI's own refusals, e.g. a body that is not UTF-8.
                return openai_error(exc.status_code, str(exc.detail), "invalid_request")
            except Exception as exc:
                log.exception("unhandled error in %s: %s", request.url.path, exc)
                return openai_error(
                    500, "internal error; the server log has the details", "internal_error"
                )

        return run


def stream_error(exc: Exception) -> dict[str, Any]:
    """``exc`` as the error chunk of a stream (its status went out with the first chunk)."""
    if isinstance(exc, DockyardError):
        events.refused(exc)
        kind, code = openai_names(exc)
        if kind is None:
            kind = "invalid_request_error" if exc.status_code < 500 else "server_error"
        return {"message": exc.message, "type": kind, "param": exc.param, "code": code}
    log.exception("unhandled error while streaming: %s", exc)
    return {
        "message": "internal error; the server log has the details",
        "type": "server_error",
        "param": None,
        "code": "internal_error",
    }
