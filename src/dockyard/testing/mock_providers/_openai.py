"""The OpenAI Chat Completions, Models and Embeddings wire formats, as the SDK parses them."""

from __future__ import annotations

import base64
import json
import struct
import time
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dockyard.providers.offline.text import count_tokens, embed_text, stream_pieces
from dockyard.testing.mock_providers._core import (
    MockReply,
    ModelCallKind,
    ServerState,
    collect_text,
    handle_model_call,
    record,
    sse,
)

# (type, code) pairs as the real API sends them.
_ERRORS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
}
_ERROR_MESSAGES = {
    429: "Rate limit reached for requests (mock server).",
    500: "The server had an error while processing your request (mock server).",
}


def _usage(input_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {
        "prompt_tokens": input_tokens,
        "completion_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }


def _finish_reason(reply: MockReply) -> str:
    if reply.stop_reason == "max_tokens":
        return "length"
    return "tool_calls" if reply.tool_calls else "stop"


def _call_id(call_id: str | None) -> str:
    return call_id or f"call_{uuid.uuid4().hex[:24]}"


class OpenAIWire:
    def error(self, status: int, message: str | None, retry_after: float | None) -> Response:
        error_type, code = _ERRORS.get(status, ("server_error", None))
        text = message or _ERROR_MESSAGES.get(status, f"{error_type} (mock server)")
        body = {"error": {"message": text, "type": error_type, "param": None, "code": code}}
        headers = {"x-request-id": f"req_{uuid.uuid4().hex}"}
        if retry_after is not None:
            headers["retry-after"] = f"{retry_after:g}"
        return JSONResponse(body, status_code=status, headers=headers)

    def validate(self, body: dict[str, Any], kind: ModelCallKind) -> str | None:
        if not isinstance(body.get("model"), str):
            return "you must provide a model parameter"
        if kind == "embeddings":
            return None if body.get("input") else "'input' is a required property"
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return "'messages' must be a non-empty array"
        return None

    def last_text(self, body: dict[str, Any]) -> str:
        return " ".join(collect_text(body["messages"][-1].get("content") or ""))

    def count_input_tokens(self, body: dict[str, Any], kind: ModelCallKind) -> int:
        if kind == "embeddings":
            return sum(count_tokens(text) for text in _embedding_inputs(body["input"]))
        return sum(count_tokens(text) for text in collect_text(body["messages"]))

    def message(self, reply: MockReply, body: dict[str, Any], input_tokens: int) -> Any:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": reply.text if reply.text or not reply.tool_calls else None,
            "refusal": None,
            "annotations": [],
        }
        if reply.tool_calls:
            message["tool_calls"] = [
                {
                    "id": _call_id(call.id),
                    "type": "function",
                    "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
                }
                for call in reply.tool_calls
            ]
        return {
            **self._envelope("chat.completion", body),
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": _finish_reason(reply),
                }
            ],
            "usage": _usage(input_tokens, reply.count_output_tokens()),
        }

    def _envelope(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": kind,
            "created": int(time.time()),
            "model": body["model"],
            "system_fingerprint": "fp_dockyard_mock",
        }

    def stream_events(
        self, reply: MockReply, body: dict[str, Any], input_tokens: int
    ) -> list[bytes]:
        envelope = self._envelope("chat.completion.chunk", body)
        options = body.get("stream_options") or {}
        include_usage = bool(options.get("include_usage"))

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            data: dict[str, Any] = {**envelope, "choices": [choice]}
            if include_usage:
                data["usage"] = None
            return sse(data)

        first: dict[str, Any] = {"role": "assistant", "content": "" if reply.text else None}
        events = [chunk(first)]
        events.extend(chunk({"content": piece}) for piece in stream_pieces(reply.text))
        for index, call in enumerate(reply.tool_calls):
            opening = {
                "index": index,
                "id": _call_id(call.id),
                "type": "function",
                "function": {"name": call.name, "arguments": ""},
            }
            events.append(chunk({"tool_calls": [opening]}))
            events.extend(
                chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
                for piece in stream_pieces(json.dumps(call.arguments))
            )
        events.append(chunk({}, _finish_reason(reply)))
        if include_usage:
            usage = _usage(input_tokens, reply.count_output_tokens())
            events.append(sse({**envelope, "choices": [], "usage": usage}))
        events.append(sse("[DONE]"))
        return events

    def malformed_events(self, body: dict[str, Any]) -> list[bytes]:
        envelope = self._envelope("chat.completion.chunk", body)
        first = {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
        return [
            sse({**envelope, "choices": [first]}),
            b'data: {"id": "chatcmpl-broken", "choices": [{"delta": \n\n',
            sse("[DONE]"),
        ]

    def embeddings(self, body: dict[str, Any], default_dims: int, input_tokens: int) -> Any:
        dims = body.get("dimensions") or default_dims
        as_base64 = body.get("encoding_format") == "base64"
        data = []
        for index, text in enumerate(_embedding_inputs(body["input"])):
            vector = embed_text(text, dims)
            encoded: Any = vector
            if as_base64:
                encoded = base64.b64encode(struct.pack(f"<{dims}f", *vector)).decode()
            data.append({"object": "embedding", "index": index, "embedding": encoded})
        return {
            "object": "list",
            "data": data,
            "model": body["model"],
            "usage": {"prompt_tokens": input_tokens, "total_tokens": input_tokens},
        }


def _embedding_inputs(value: Any) -> list[str]:
    # The API accepts a string, a list of strings, or token ids (one list or a list of
    # lists); token ids are embedded via their decimal text so they stay deterministic.
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, int) for v in value):
        return [" ".join(map(str, value))]
    if isinstance(value, list):
        return [v if isinstance(v, str) else " ".join(map(str, v)) for v in value]
    return [str(value)]


def openai_routes(state: ServerState) -> list[Route]:
    wire = OpenAIWire()

    async def chat_completions(request: Request) -> Response:
        return await handle_model_call(request, state, wire, "chat")

    async def embeddings(request: Request) -> Response:
        return await handle_model_call(request, state, wire, "embeddings")

    async def models(request: Request) -> Response:
        await record(request, state)
        data = [
            {"id": name, "object": "model", "created": 0, "owned_by": "dockyard-mock"}
            for name in state.models
        ]
        return JSONResponse({"object": "list", "data": data})

    return [
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/embeddings", embeddings, methods=["POST"]),
        Route("/v1/models", models, methods=["GET"]),
    ]
