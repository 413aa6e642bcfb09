"""A chat model that wraps another in an ordered chain of policy layers.

The model registry hands out each provider model wrapped (``ModelRegistry(wrap=...)``):
every call, whatever its entry point (``invoke``, ``stream``, a ``bind_tools`` binding,
``with_structured_output``, LangGraph's ``messages`` stream mode), reaches
``_generate`` / ``_agenerate`` / ``_stream`` / ``_astream`` here and goes through the
layers, first to last, to the provider model. Nothing in a graph knows; it is
pydantic-ai's ``WrapperModel`` pattern on LangChain's ``BaseChatModel``.

A layer is a ``ModelLayer``: for each of the four paths it gets the call and the rest
of the chain (``call_next``), and may change the call, answer it itself, retry it, or
send it to another model (``call.for_model``). LangChain's callbacks (usage, tokens,
LangGraph's streams) see one model call, the wrapper's, however many attempts the
layers make.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeAlias

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableBinding, RunnableConfig, ensure_config
from pydantic import SkipValidation

from dockyard.providers.offline.base import to_chunks
from dockyard.sampling import RunParamsMixin

RunManager: TypeAlias = CallbackManagerForLLMRun | AsyncCallbackManagerForLLMRun | None


@dataclass(frozen=True)
class ToolBinding:
    """What ``bind_tools`` was given, so each model a call reaches formats the tools in
    its own provider's way (a fallback may be another provider)."""

    tools: Sequence[Any]
    kwargs: dict[str, Any]

    def bind(self, model: BaseChatModel) -> dict[str, Any]:
        """The call arguments ``model.bind_tools(...)`` produces."""
        bound = model.bind_tools(self.tools, **self.kwargs)
        if not isinstance(bound, RunnableBinding):
            raise TypeError(f"{type(model).__name__}.bind_tools returned no RunnableBinding")
        return dict(bound.kwargs)


@dataclass(frozen=True)
class ModelCall:
    """One model call on its way through the layers."""

    name: str
    """The name under ``models:`` the call is for."""
    model: BaseChatModel
    """The provider's model that answers it at the end of the chain."""
    messages: list[BaseMessage]
    stop: list[str] | None
    kwargs: dict[str, Any]
    run_manager: RunManager = None
    tools: ToolBinding | None = None
    config: RunnableConfig = field(default_factory=dict)  # type: ignore[assignment]
    """The config of the run (the graph node) making the call."""

    def for_model(self, name: str, model: BaseChatModel) -> ModelCall:
        """This call, sent to ``model`` instead (a fallback): bound tools re-bound on it."""
        kwargs = self.kwargs
        if self.tools is not None:
            own = self.tools.bind(self.model)
            kwargs = {k: v for k, v in kwargs.items() if k not in own} | self.tools.bind(model)
        return replace(self, name=name, model=model, kwargs=kwargs)


AsyncNext: TypeAlias = Callable[[ModelCall], Awaitable[ChatResult]]
SyncNext: TypeAlias = Callable[[ModelCall], ChatResult]
AsyncStreamNext: TypeAlias = Callable[[ModelCall], AsyncIterator[ChatGenerationChunk]]
SyncStreamNext: TypeAlias = Callable[[ModelCall], Iterator[ChatGenerationChunk]]


class ModelLayer:
    """A policy around model calls. Each method passes the call on unchanged; a layer
    overrides the paths it acts on (a streaming path yields chunks)."""

    async def agenerate(self, call: ModelCall, call_next: AsyncNext) -> ChatResult:
        return await call_next(call)

    def generate(self, call: ModelCall, call_next: SyncNext) -> ChatResult:
        return call_next(call)

    def astream(
        self, call: ModelCall, call_next: AsyncStreamNext
    ) -> AsyncIterator[ChatGenerationChunk]:
        return call_next(call)

    def stream(self, call: ModelCall, call_next: SyncStreamNext) -> Iterator[ChatGenerationChunk]:
        return call_next(call)


# -- the end of the chain: the provider's model itself ------------------------------------


def streams(model: BaseChatModel) -> bool:
    """Whether ``model`` implements streaming at all."""
    cls = type(model)
    return cls._stream is not BaseChatModel._stream or cls._astream is not BaseChatModel._astream


async def provider_agenerate(call: ModelCall) -> ChatResult:
    manager = call.run_manager
    assert manager is None or isinstance(manager, AsyncCallbackManagerForLLMRun)
    return await call.model._agenerate(
        call.messages, stop=call.stop, run_manager=manager, **call.kwargs
    )


def provider_generate(call: ModelCall) -> ChatResult:
    manager = call.run_manager
    assert manager is None or isinstance(manager, CallbackManagerForLLMRun)
    return call.model._generate(call.messages, stop=call.stop, run_manager=manager, **call.kwargs)


def _result_chunks(result: ChatResult) -> list[ChatGenerationChunk]:
    message = result.generations[0].message
    if not isinstance(message, AIMessage):
        message = AIMessage(content=message.content, id=message.id)
    return to_chunks(message)


async def provider_astream(call: ModelCall) -> AsyncIterator[ChatGenerationChunk]:
    if not streams(call.model):  # a model that cannot stream answers in one piece
        for chunk in _result_chunks(await provider_agenerate(call)):
            yield chunk
        return
    manager = call.run_manager
    assert manager is None or isinstance(manager, AsyncCallbackManagerForLLMRun)
    stream = call.model._astream(call.messages, stop=call.stop, run_manager=manager, **call.kwargs)
    async for chunk in stream:
        yield chunk


def provider_stream(call: ModelCall) -> Iterator[ChatGenerationChunk]:
    if type(call.model)._stream is BaseChatModel._stream:
        yield from _result_chunks(provider_generate(call))
        return
    manager = call.run_manager
    assert manager is None or isinstance(manager, CallbackManagerForLLMRun)
    yield from call.model._stream(call.messages, stop=call.stop, run_manager=manager, **call.kwargs)


def _chain(layers: Sequence[ModelLayer], method: str, end: Callable[[ModelCall], Any]) -> Any:
    """``end`` behind ``layers`` (first layer outermost), as one callable."""
    step = end
    for layer in reversed(layers):
        step = _bind_layer(getattr(layer, method), step)
    return step


def _bind_layer(method: Callable[[ModelCall, Any], Any], call_next: Any) -> Any:
    return lambda call: method(call, call_next)


# -- the wrapper ---------------------------------------------------------------------------


class WrappedChatModel(RunParamsMixin, BaseChatModel):
    """``inner`` behind ``layers``; in every other way it is ``inner`` (its name, its
    identifying parameters, whether it streams, how it binds tools)."""

    inner: BaseChatModel
    key: str = "default"
    """The name under ``models:``."""
    layers: SkipValidation[tuple[ModelLayer, ...]] = ()
    tool_binding: SkipValidation[ToolBinding | None] = None

    @property
    def _llm_type(self) -> str:
        return self.inner._llm_type

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return dict(self.inner._identifying_params)

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> Any:
        return self.inner._get_ls_params(stop=stop, **kwargs)

    def _should_stream(self, *, async_api: bool, run_manager: RunManager = None, **kw: Any) -> bool:
        return self.inner._should_stream(async_api=async_api, run_manager=run_manager, **kw)

    def _apply_run_params(
        self, config: RunnableConfig | None, stop: list[str] | None, kwargs: dict[str, Any]
    ) -> tuple[list[str] | None, dict[str, Any]]:
        # The provider model's own checks (what its API takes) apply to the run's settings.
        if isinstance(self.inner, RunParamsMixin):
            return self.inner._apply_run_params(config, stop, kwargs)
        return stop, kwargs

    def bind_tools(
        self, tools: Sequence[Any], *, tool_choice: Any = None, **kwargs: Any
    ) -> Runnable[LanguageModelInput, AIMessage]:
        if tool_choice is not None:
            kwargs["tool_choice"] = tool_choice
        binding = ToolBinding(list(tools), kwargs)
        # The provider formats the tools; calls still go through this wrapper.
        bound = binding.bind(self.inner)
        return self.model_copy(update={"tool_binding": binding}).bind(**bound)

    def with_structured_output(  # type: ignore[override]
        self, schema: Any, *, include_raw: bool = False, **kwargs: Any
    ) -> Runnable[LanguageModelInput, Any]:
        # Tool calling is the one structured output every provider takes, so each model a
        # layer sends the call to (a fallback) can answer it; a provider's own method
        # (OpenAI's json_schema) would bind arguments only that provider understands.
        method = kwargs.get("method")
        if method not in (None, "function_calling"):
            raise ValueError(
                f"with_structured_output(method={method!r}) is not available on "
                f"models.{self.key}, whose calls pass dockyard's policies (fallbacks may be "
                "another provider): leave method out, or use method='function_calling'"
            )
        return super().with_structured_output(schema, include_raw=include_raw, **kwargs)

    def _call(self, messages: list[BaseMessage], stop: Any, manager: Any, kw: Any) -> ModelCall:
        return ModelCall(
            self.key, self.inner, messages, stop, kw, manager, self.tool_binding, ensure_config()
        )

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        run = _chain(self.layers, "agenerate", provider_agenerate)
        result: ChatResult = await run(self._call(messages, stop, run_manager, kwargs))
        return result

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        run = _chain(self.layers, "generate", provider_generate)
        result: ChatResult = run(self._call(messages, stop, run_manager, kwargs))
        return result

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        run = _chain(self.layers, "astream", provider_astream)
        async for chunk in run(self._call(messages, stop, run_manager, kwargs)):
            yield chunk

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        run = _chain(self.layers, "stream", provider_stream)
        yield from run(self._call(messages, stop, run_manager, kwargs))


def wrap_model(
    model: BaseChatModel, layers: Sequence[ModelLayer], *, name: str
) -> WrappedChatModel:
    """``model`` behind ``layers`` (a wrapped model gets the layers in front of its own)."""
    if isinstance(model, WrappedChatModel):
        return model.model_copy(update={"layers": (*layers, *model.layers), "key": name})
    # What BaseChatModel itself does around a call (callbacks, tags, the rate limiter, the
    # output format) now happens around the wrapper's: it takes the model's settings.
    shared = {field: getattr(model, field) for field in _AROUND_THE_CALL}
    return WrappedChatModel(inner=model, layers=tuple(layers), key=name, **shared)


_AROUND_THE_CALL = ("callbacks", "tags", "metadata", "rate_limiter", "output_version")


def unwrap(model: BaseChatModel) -> BaseChatModel:
    """The provider's model inside ``model``."""
    return model.inner if isinstance(model, WrappedChatModel) else model
