"""Request bodies of /v1/chat/completions, strict: unknown or unsupported fields are 422."""

from __future__ import annotations

from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from dockyard.sampling import MAX_STOP_SEQUENCES, PENALTY, TEMPERATURE, TOP_P

# -- request bodies -------------------------------------------------------------------------

_PART_TYPES = ("text", "image_url", "input_audio", "file")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FunctionCallIn(_Strict):
    name: str = Field(min_length=1)
    arguments: str

    @field_validator("arguments")
    @classmethod
    def _json_object(cls, v: str) -> str:
        try:
            # orjson: bounded depth (1024) and no recursion in Python, unlike json.loads,
            # which raises RecursionError on a string of deeply nested arrays.
            parsed = orjson.loads(v or "{}")
        except ValueError:
            raise ValueError("must be a JSON object encoded as a string") from None
        if not isinstance(parsed, dict):
            raise ValueError("must be a JSON object encoded as a string")
        return v or "{}"


class ToolCallIn(_Strict):
    id: str = Field(min_length=1)
    type: Literal["function"] = "function"
    function: FunctionCallIn


class ChatMessageIn(_Strict):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None
    tool_calls: list[ToolCallIn] | None = None
    tool_call_id: str | None = None

    @field_validator("content")
    @classmethod
    def _parts(cls, v: str | list[dict[str, Any]] | None) -> Any:
        if isinstance(v, list):
            for i, part in enumerate(v):
                kind = part.get("type")
                if kind not in _PART_TYPES:
                    raise ValueError(
                        f"part {i}: type {kind!r} is not supported; use one of {list(_PART_TYPES)}"
                    )
                if kind == "text" and not isinstance(part.get("text"), str):
                    raise ValueError(f"part {i}: a text part needs a string `text`")
        return v

    @model_validator(mode="after")
    def _by_role(self) -> ChatMessageIn:
        if self.role == "tool":
            if not self.tool_call_id:
                raise ValueError("a tool message needs `tool_call_id`")
        elif self.tool_call_id is not None:
            raise ValueError("`tool_call_id` belongs to tool messages only")
        if self.tool_calls and self.role != "assistant":
            raise ValueError("`tool_calls` belongs to assistant messages only")
        if self.content is None and not (self.role == "assistant" and self.tool_calls):
            raise ValueError("`content` is required (null only on an assistant tool call)")
        if (
            isinstance(self.content, list)
            and self.role != "user"
            and any(p.get("type") != "text" for p in self.content)
        ):
            raise ValueError(f"a {self.role} message takes text parts only")
        return self


class StreamOptions(_Strict):
    include_usage: bool = False


_INT64 = 2**63


class ChatCompletionRequest(_Strict):
    model: str = Field(min_length=1)
    messages: list[ChatMessageIn] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = Field(default=None, max_length=256)
    metadata: dict[str, str] | None = None
    n: int | None = None
    # Sampling settings: they reach the run's models as configurable["model_params"]
    # (dockyard/sampling.py; docs/openai.md has the mapping). Bounds as OpenAI's.
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=TEMPERATURE[0], le=TEMPERATURE[1])
    top_p: float | None = Field(default=None, ge=TOP_P[0], le=TOP_P[1])
    stop: str | list[str] | None = None
    seed: int | None = Field(default=None, ge=-_INT64, lt=_INT64)
    presence_penalty: float | None = Field(default=None, ge=PENALTY[0], le=PENALTY[1])
    frequency_penalty: float | None = Field(default=None, ge=PENALTY[0], le=PENALTY[1])
    # Accepted at the values that ask for what an agent run gives anyway; others are 422.
    logprobs: bool | None = None
    response_format: dict[str, Any] | None = None
    # For the models under `models:` only (api/gateway.py); an assistant brings its own.
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None

    @field_validator("stop")
    @classmethod
    def _stop(cls, v: str | list[str] | None) -> str | list[str] | None:
        items = [v] if isinstance(v, str) else v
        if items is not None:
            if not items or len(items) > MAX_STOP_SEQUENCES:
                raise ValueError(f"give 1 to {MAX_STOP_SEQUENCES} stop sequences")
            if not all(items):
                raise ValueError("a stop sequence cannot be empty")
        return v

    @model_validator(mode="after")
    def _checks(self) -> ChatCompletionRequest:
        if self.stream_options is not None and not self.stream:
            raise ValueError("stream_options is only allowed with stream: true")
        if self.max_tokens is not None and self.max_completion_tokens is not None:
            raise ValueError(
                "max_tokens and max_completion_tokens are the same setting; send one of them"
            )
        return self

    def model_params(self) -> dict[str, Any]:
        """The request's sampling settings, as ``configurable["model_params"]`` holds them."""
        stop = [self.stop] if isinstance(self.stop, str) else self.stop
        params = {
            "max_tokens": self.max_completion_tokens or self.max_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "stop": stop,
            "seed": self.seed,
            "presence_penalty": self.presence_penalty,
            "frequency_penalty": self.frequency_penalty,
        }
        return {k: v for k, v in params.items() if v is not None}


# -- graph input ----------------------------------------------------------------------------
