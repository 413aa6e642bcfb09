"""The Anthropic Messages API wire format (``POST /v1/messages``), as the SDK parses it."""

from __future__ import annotations

import json
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dockyard.providers.offline.text import count_tokens, stream_pieces
from dockyard.testing.mock_providers._core import (
    MockReply,
    ModelCallKind,
    ServerState,
    collect_text,
    handle_model_call,
    record,
    sse,
)

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}
_ERROR_MESSAGES = {
    429: "Number of requests has exceeded your rate limit (mock server).",
    529: "Overloaded (mock server).",
}


def _tool_use_id(call_id: str | None) -> str:
    return call_id or f"toolu_{uuid.uuid4().hex[:24]}"


def _stop_reason(reply: MockReply) -> str:
    if reply.stop_reason is not None:
        return reply.stop_reason
    return "tool_use" if reply.tool_calls else "end_turn"


def _usage(input_tokens: int, output_tokens: int) -> dict[str, int]:
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }


class AnthropicWire:
    def error(self, status: int, message: str | None, retry_after: float | None) -> Response:
        error_type = _ERROR_TYPES.get(status, "api_error")
        text = message or _ERROR_MESSAGES.get(status, f"{error_type} (mock server)")
        request_id = f"req_{uuid.uuid4().hex[:24]}"
        body = {
            "type": "error",
            "error": {"type": error_type, "message": text},
            "request_id": request_id,
        }
        headers = {"request-id": request_id}
        if retry_after is not None:
            headers["retry-after"] = f"{retry_after:g}"
        return JSONResponse(body, status_code=status, headers=headers)

    def validate(self, body: dict[str, Any], kind: ModelCallKind) -> str | None:
        if not isinstance(body.get("model"), str):
            return "model: Field required"
        if not isinstance(body.get("messages"), list):
            return "messages: Field required"
        if not isinstance(body.get("max_tokens"), int):
            return "max_tokens: Field required"
        return None

    def last_text(self, body: dict[str, Any]) -> str:
        messages = body.get("messages") or [{}]
        return " ".join(collect_text(messages[-1].get("content", "")))

    def count_input_tokens(self, body: dict[str, Any], kind: ModelCallKind) -> int:
        texts = collect_text(body.get("system", "")) + collect_text(body.get("messages", []))
        return sum(count_tokens(text) for text in texts)

    def _blocks(self, reply: MockReply) -> list[dict[str, Any]]:
        blocks: list[dict[str, Any]] = []
        if reply.text:
            blocks.append({"type": "text", "text": reply.text})
        for call in reply.tool_calls:
            blocks.append(
                {
                    "type": "tool_use",
                    "id": _tool_use_id(call.id),
                    "name": call.name,
                    "input": dict(call.arguments),
                }
            )
        return blocks

    def message(self, reply: MockReply, body: dict[str, Any], input_tokens: int) -> Any:
        return {
            "id": f"msg_{uuid.uuid4().hex[:24]}",
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": self._blocks(reply),
            "stop_reason": _stop_reason(reply),
            "stop_sequence": reply.stop_sequence,
            "usage": _usage(input_tokens, reply.count_output_tokens()),
        }

    def stream_events(
        self, reply: MockReply, body: dict[str, Any], input_tokens: int
    ) -> list[bytes]:
        start = self.message(MockReply(), body, input_tokens)
        start.update(stop_reason=None, usage=_usage(input_tokens, 1))
        events = [
            sse({"type": "message_start", "message": start}, "message_start"),
            sse({"type": "ping"}, "ping"),
        ]
        for index, block in enumerate(self._blocks(reply)):
            opening: dict[str, Any]
            if block["type"] == "text":
                opening = {"type": "text", "text": ""}
                deltas = [{"type": "text_delta", "text": p} for p in stream_pieces(block["text"])]
            else:
                opening = {**block, "input": {}}
                arguments = json.dumps(block["input"])
                deltas = [{"type": "input_json_delta", "partial_json": ""}]
                deltas += [
                    {"type": "input_json_delta", "partial_json": p}
                    for p in stream_pieces(arguments)
                ]
            events.append(
                sse(
                    {"type": "content_block_start", "index": index, "content_block": opening},
                    "content_block_start",
                )
            )
            events.extend(
                sse(
                    {"type": "content_block_delta", "index": index, "delta": d},
                    "content_block_delta",
                )
                for d in deltas
            )
            events.append(sse({"type": "content_block_stop", "index": index}, "content_block_stop"))
        delta = {"stop_reason": _stop_reason(reply), "stop_sequence": reply.stop_sequence}
        # Usage on message_delta is cumulative and is the only usage langchain-anthropic reads.
        usage = _usage(input_tokens, reply.count_output_tokens())
        events.append(
            sse({"type": "message_delta", "delta": delta, "usage": usage}, "message_delta")
        )
        events.append(sse({"type": "message_stop"}, "message_stop"))
        return events

    def malformed_events(self, body: dict[str, Any]) -> list[bytes]:
        start = self.message(MockReply(), body, 0)
        return [
            sse({"type": "message_start", "message": start}, "message_start"),
            b'event: content_block_start\ndata: {"type": "content_block_start", "index": \n\n',
            sse({"type": "message_stop"}, "message_stop"),
        ]


def anthropic_routes(state: ServerState) -> list[Route]:
    wire = AnthropicWire()

    async def messages(request: Request) -> Response:
        return await handle_model_call(request, state, wire, "chat")

    async def count_tokens_endpoint(request: Request) -> Response:
        body = (await record(request, state)).body
        if not isinstance(body, dict):
            return wire.error(400, "request body must be a JSON object", None)
        return JSONResponse({"input_tokens": wire.count_input_tokens(body, "chat")})

    return [
        Route("/v1/messages", messages, methods=["POST"]),
        Route("/v1/messages/count_tokens", count_tokens_endpoint, methods=["POST"]),
    ]
