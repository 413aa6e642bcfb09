"""Named chat models for graphs: ``models:`` in dockyard.yaml, reached with ``chat_model(name)``.

Each process (the API server, every ``dockyard worker``) builds one ``ModelRegistry``
from its settings when it starts, and every run carries it in its config under
``configurable["__dockyard_models"]``. A graph asks for a model by name, once, at module
level::

    from dockyard import chat_model

    model = chat_model("default")   # any name under `models:`

``chat_model`` returns a stand-in that picks the real model on each call, from the
registry of the run making the call, so one module-level object serves every assistant
and every process. The registry hands out each model wrapped in the process's policy
chain (``wrap``, see ``ModelWrap`` and ``providers.wrapper``: retries, fallbacks and
breakers, ``docs/policies.md``), so no policy branches in the graph. It is a
``BaseChatModel``: ``invoke``, ``stream``, ``bind_tools`` and ``with_structured_output``
all work, and the bound or structured forms are built from the real model at call time.

``default`` always exists: ``models.default`` when set, else Claude when an Anthropic key
is set, else GPT-4o mini when an OpenAI key is set, else the offline ``offline:support``
model, so a graph runs with no key at all.

Outside a run (a test calling the graph directly), the registry comes from the settings
this process can find (``DOCKYARD_CONFIG_FILE`` or the project file in the working
directory, and ``DOCKYARD_*`` variables), built once on first use; pass
``registry.run_config()`` as the graph's config to choose one instead.
"""

from __future__ import annotations

import difflib
import functools
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple, Protocol, TypeAlias

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatResult
from langchain_core.runnables import Runnable, RunnableConfig, ensure_config
from pydantic import SecretStr

from dockyard.errors import ConfigError, ProviderSetupError
from dockyard.providers._env import env_var_is_set
from dockyard.providers.chat import load_chat_model
from dockyard.providers.message_guard import MessageGuard
from dockyard.settings import ModelSpec, PoliciesConfig, Settings, load_settings
from dockyard.variants import model_override

log = logging.getLogger("dockyard.models")

MODELS_KEY = "__dockyard_models"
"""The ``configurable`` key a run's ``ModelRegistry`` travels under. LangGraph and
LangChain copy no ``__``-prefixed key into checkpoint or trace metadata, and dockyard
takes it out of the configs it streams (``debug``, ``checkpoints``)."""

PRIORITY_KEY = "__dockyard_priority"
"""The ``configurable`` key under which a run carries its ``priority`` (from its input or
context) for routing; set by the run attempt, never taken from a client."""

TIER_KEY = "dockyard_tier"
"""The metadata key a routed model call carries its tier in (the usage tally reads it)."""

MODEL_NAME_KEY = "dockyard_model"
"""The metadata key every model the registry hands out carries its ``models:`` name in, so
that callbacks (usage, metrics, traces) name a call as the configuration does (``default``),
not only as the provider does (``gpt-4o-mini``, which two names may share)."""

DEFAULT = "default"
OFFLINE_DEFAULT = "offline:support"
# When models.default is not set: the first provider whose key is set, else offline.
_KEYED_DEFAULTS = (
    ("ANTHROPIC_API_KEY", "anthropic:claude-sonnet-4-6"),
    ("OPENAI_API_KEY", "openai:gpt-4o-mini"),
)

ModelEntry: TypeAlias = ModelSpec | BaseChatModel | str
"""A registry entry: a ``ModelSpec``, a ``"provider:model"`` string or a built model."""

ModelWrap: TypeAlias = Callable[[str, BaseChatModel, "ModelRegistry"], BaseChatModel]
"""``wrap(name, model, registry)``: the model the registry hands out for ``name``, given
the provider's; how the policies (``dockyard.policies``) put their chain around every
model without the providers knowing them. It may call ``registry.raw(...)`` at call time,
not while wrapping."""


class Route(NamedTuple):
    """Where a router sends a call: the tier's name and its model's name."""

    tier: str
    model: str


class ModelRouter(Protocol):
    """Chooses the model of a call to ``name`` (``policies.routing``); None: not routed."""

    def routes(self, name: str) -> bool:
        """Whether calls to ``name`` are routed at all (before their messages are read)."""
        ...

    def route(
        self,
        name: str,
        messages: Sequence[BaseMessage],
        tools: Sequence[Any],
        priority: str | None,
    ) -> Route | None: ...


def default_model_spec() -> ModelSpec:
    """What ``default`` means when ``models.default`` is not set."""
    for env_var, spec in _KEYED_DEFAULTS:
        if env_var_is_set(env_var):
            return ModelSpec(model=spec)
    return ModelSpec(model=OFFLINE_DEFAULT)


def load_model_spec(spec: ModelSpec, project_dir: Path = Path(".")) -> BaseChatModel:
    """``load_chat_model`` with a ``ModelSpec``'s client settings (and key file)."""
    api_key: SecretStr | None = None
    if spec.api_key_file is not None:
        path = spec.api_key_file
        if not path.is_absolute():
            path = project_dir / path
        try:
            api_key = SecretStr(path.read_text(encoding="utf-8").strip())
        except OSError as e:
            raise ConfigError(
                f"models: api_key_file {path} for {spec.model!r} cannot be read ({e.strerror})"
            ) from e
    return load_chat_model(
        spec.model,
        base_url=spec.base_url,
        api_key=api_key,
        temperature=spec.temperature,
        max_tokens=spec.max_tokens,
        timeout=spec.timeout,
        max_retries=spec.sdk_max_retries,
    )


class ModelRegistry:
    """The chat models of one process, by name.

    Entries given (from ``models:``) are built when the registry is (``build()``), so a
    bad spec, a missing SDK or key stops start-up. Without a ``default`` entry, the one
    ``default_model_spec()`` gives when the registry is made is built on first use, as it
    may never be asked for.
    """

    def __init__(
        self,
        entries: Mapping[str, ModelEntry] | None = None,
        project_dir: Path = Path("."),
        policies: PoliciesConfig | None = None,
        *,
        wrap: ModelWrap | None = None,
    ) -> None:
        """``wrap``: puts each model built into its policy chain (``ModelWrap``)."""
        # The model-level policies every run of this process gets (``dockyard.middleware()``
        # reads them from the run's registry, as ``chat_model`` reads its models).
        self.policies = policies if policies is not None else PoliciesConfig()
        # Attached from above at start-up (runtime/graphs.py): e.g. policies.pii, routing.
        self.message_guards: list[MessageGuard] = []
        self.router: ModelRouter | None = None
        self._entries: dict[str, ModelEntry] = dict(entries or {})
        self._configured = list(self._entries)
        self._stand_ins: dict[str, str] = {}  # offline_stand_in's models, by spec
        # Chosen now, from the keys set when the process starts; built on first use.
        self._entries.setdefault(DEFAULT, default_model_spec())
        self._project_dir = project_dir
        self._wrap = wrap
        self._raw: dict[str, BaseChatModel] = {}
        self._models: dict[str, BaseChatModel] = {}
        self._lock = threading.Lock()

    @property
    def wrap(self) -> ModelWrap | None:
        return self._wrap

    def derive(self, policies: PoliciesConfig, *, wrap: ModelWrap | None) -> ModelRegistry:
        """The same models under other policies (an assistant's): the provider's models
        are shared with this registry, each is wrapped in ``wrap`` on first use."""
        other = ModelRegistry.__new__(ModelRegistry)
        other.policies = policies
        other.message_guards = []
        other.router = None
        other._entries, other._configured = self._entries, self._configured
        other._stand_ins = self._stand_ins
        other._project_dir = self._project_dir
        other._wrap = wrap
        # Shared, with the lock that guards it: a provider's model (its client) is built once.
        other._raw, other._lock = self._raw, self._lock
        other._models = {}
        return other

    def routed(
        self,
        name: str,
        messages: Sequence[BaseMessage],
        tools: Sequence[Any] = (),
        priority: str | None = None,
    ) -> tuple[BaseChatModel, Route | None]:
        """The model a call to ``name`` goes to (its tier's, when ``router`` routes it)."""
        route = self.router.route(name, messages, tools, priority) if self.router else None
        return self.get(route.model if route is not None else name), route

    @classmethod
    def from_settings(cls, settings: Settings, *, wrap: ModelWrap | None = None) -> ModelRegistry:
        """The registry of ``settings.models``, built."""
        registry = cls(settings.models, settings.project_dir, settings.policies, wrap=wrap)
        registry.build()
        return registry

    @property
    def names(self) -> list[str]:
        return sorted(self._entries)

    def build(self) -> None:
        """Build every configured model now (errors name the ``models.<name>`` key)."""
        for name in self._configured:
            self.get(name)

    def get(self, name: str) -> BaseChatModel:
        """The model named ``name``; ``ConfigError`` (code ``unknown_model``) if none is."""
        model = self._models.get(name)
        if model is not None:
            return model
        with self._lock:
            model = self._models.get(name)
            if model is None:
                raw = self._raw.get(name)  # built already when a derived registry shares it
                if raw is None:
                    raw = self._raw[name] = self._build(name)
                model = self._wrap(name, raw, self) if self._wrap else raw
                model.metadata = {**(model.metadata or {}), MODEL_NAME_KEY: name}
                self._models[name] = model
        return model

    def raw(self, name: str) -> BaseChatModel:
        """The provider's model ``name``, outside its policy chain (a fallback calls it)."""
        self.get(name)
        return self._raw[name]

    def spec(self, name: str) -> ModelSpec | None:
        """The ``ModelSpec`` of ``name``, when it has one (not a built model)."""
        entry = self._entries.get(name)
        if isinstance(entry, str):
            return ModelSpec(model=entry)
        return entry if isinstance(entry, ModelSpec) else None

    def offline_stand_in(self, name: str, offline: str) -> str:
        """``offline`` (a model spec such as ``"offline:memory"``) when ``name`` is ``default``
        and nothing chose a model for it (no ``models.default``, no provider key), else
        ``name``: an agent's own scripted model then stands in for ``offline:support``."""
        if name != DEFAULT or DEFAULT in self._configured:
            return name
        entry = self._entries.get(DEFAULT)
        if not (isinstance(entry, ModelSpec) and entry.model == OFFLINE_DEFAULT):
            return name
        # Kept beside the entries, not among them: it is no `models:` name (/v1/models,
        # the metrics' model list and error messages list those).
        with self._lock:
            self._stand_ins.setdefault(offline, offline)
        return offline

    def _build(self, name: str) -> BaseChatModel:
        entry = self._entries.get(name) or self._stand_ins.get(name)
        if entry is None:
            raise self._unknown(name)
        if isinstance(entry, BaseChatModel):
            return entry
        spec = ModelSpec(model=entry) if isinstance(entry, str) else entry
        try:
            return load_model_spec(spec, self._project_dir)
        except (ConfigError, ProviderSetupError) as e:
            # A bad spec, a missing SDK or key: a configuration error naming the entry,
            # which stops start-up (`dockyard serve` exits 2 with the message).
            raise ConfigError(f"models.{name}: {e.message}", code=e.code) from e

    def _unknown(self, name: str) -> ConfigError:
        close = difflib.get_close_matches(name, self.names, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        return ConfigError(
            f"no chat model named {name!r}: {hint}models configured: "
            f"{', '.join(self.names)} (add it under `models:` in dockyard.yaml, "
            f"or set DOCKYARD_MODELS__{name.upper()})",
            code="unknown_model",
        )

    async def aclose(self) -> None:
        """Release what the ``wrap`` holds (its Redis clients), if it has an ``aclose``."""
        close = getattr(self._wrap, "aclose", None)
        if close is not None:
            await close()

    def run_config(self, config: RunnableConfig | None = None) -> RunnableConfig:
        """``config`` (a copy) with this registry in it, for running a graph yourself."""
        out: dict[str, Any] = dict(config or {})
        out["configurable"] = {**(out.get("configurable") or {}), MODELS_KEY: self}
        return out  # type: ignore[return-value]

    def __repr__(self) -> str:
        return f"ModelRegistry({', '.join(self.names)})"


@functools.cache
def _settings_registry() -> ModelRegistry:
    try:
        settings = load_settings()
    except ConfigError as e:
        raise ConfigError(
            "a chat_model(...) was called outside a dockyard run and the project's settings "
            f"do not load ({e.message}); fix them, or pass registry.run_config() as the "
            "graph's config"
        ) from e
    log.debug("chat_model outside a run: models from %s", settings.config_file or "env")
    return ModelRegistry.from_settings(settings)


def run_registry(config: RunnableConfig | None = None) -> ModelRegistry:
    """The registry of the run ``config`` (default: the running node's) belongs to."""
    configurable = ensure_config(config).get("configurable") or {}
    registry = configurable.get(MODELS_KEY)
    if isinstance(registry, ModelRegistry):
        return registry
    return _settings_registry()


def chat_model(name: str = DEFAULT, *, offline: str | None = None) -> BaseChatModel:
    """The model ``name`` of ``models:``, resolved on each call from the run's registry.

    Call it once, at module level; see the module docstring. ``offline`` (an
    ``"offline:<preset>"`` spec) replaces ``offline:support`` as the no-key model of
    ``default``: what a reference agent with a scripted model of its own passes.
    """
    if not isinstance(name, str) or not name:
        raise ConfigError(f"chat_model() takes a model name such as 'default', not {name!r}")
    return RegistryChatModel(key=name, offline=offline)


class RegistryChatModel(BaseChatModel):
    """Stands for ``models.<name>``: each call goes to that model of the calling run's
    registry, which reports callbacks (streaming, usage) as if called directly."""

    key: str
    """The name under ``models:``."""
    offline: str | None = None
    """The model spec that stands in for ``default`` when nothing chose one (``chat_model``)."""

    @property
    def _llm_type(self) -> str:
        return "dockyard-registry"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model": self.key}

    def _name(self, config: RunnableConfig | None, registry: ModelRegistry) -> str:
        # A run may name another model for every chat_model() call (dockyard eval --model,
        # rollouts): variants.MODEL_KEY.
        name = model_override(ensure_config(config).get("configurable"), self.key)
        return name if self.offline is None else registry.offline_stand_in(name, self.offline)

    def resolve(self, config: RunnableConfig | None = None) -> BaseChatModel:
        """The model this stands for in the run ``config`` belongs to (not routed)."""
        registry = run_registry(config)
        return registry.get(self._name(config, registry))

    def route(
        self, config: RunnableConfig, input: LanguageModelInput, tools: Sequence[Any] = ()
    ) -> tuple[BaseChatModel, RunnableConfig]:
        """The model a call with ``input`` goes to in the run ``config`` belongs to, and the
        config to call it with: under ``policies.routing``, the model of the tier the call
        is routed to, with the tier in the call's metadata (``TIER_KEY``)."""
        registry = run_registry(config)
        name = self._name(config, registry)
        if registry.router is None or not registry.router.routes(name):
            return registry.get(name), config
        messages = self._convert_input(input).to_messages()
        priority = (config.get("configurable") or {}).get(PRIORITY_KEY)
        model, route = registry.routed(
            name, messages, tools, priority if isinstance(priority, str) else None
        )
        if route is None:
            return model, config
        metadata = {**(config.get("metadata") or {}), TIER_KEY: route.tier}
        return model, {**config, "metadata": metadata}

    def invoke(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> Any:
        model, config = self.route(ensure_config(config), input)
        return model.invoke(input, config, stop=stop, **kwargs)

    async def ainvoke(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> Any:
        model, config = self.route(ensure_config(config), input)
        return await model.ainvoke(input, config, stop=stop, **kwargs)

    def stream(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> Iterator[Any]:
        model, config = self.route(ensure_config(config), input)
        return model.stream(input, config, stop=stop, **kwargs)

    async def astream(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[Any]:
        model, config = self.route(ensure_config(config), input)
        async for chunk in model.astream(input, config, stop=stop, **kwargs):
            yield chunk

    def bind_tools(
        self,
        tools: Sequence[Any],
        *,
        tool_choice: Any = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, Any]:
        if tool_choice is not None:
            kwargs["tool_choice"] = tool_choice
        return PerRunModel(self, lambda model: model.bind_tools(tools, **kwargs), tools)

    def with_structured_output(  # type: ignore[override]
        self, schema: Any, *, include_raw: bool = False, **kwargs: Any
    ) -> Runnable[LanguageModelInput, Any]:
        return PerRunModel(
            self,
            lambda model: model.with_structured_output(schema, include_raw=include_raw, **kwargs),
            [schema],  # answered through a tool (or a format the provider is told)
        )

    # Reached only through generate()/agenerate() called on this object itself.
    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        model, _ = self.route(ensure_config(), messages, kwargs.get("tools") or ())
        return model._generate(messages, stop, run_manager, **kwargs)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        model, _ = self.route(ensure_config(), messages, kwargs.get("tools") or ())
        return await model._agenerate(messages, stop, run_manager, **kwargs)


class PerRunModel(Runnable[LanguageModelInput, Any]):
    """``make(model)`` of the run's model (``bind_tools``, ``with_structured_output``),
    made once per underlying model. ``tools``: what the calls are given to choose from
    (routing counts them)."""

    def __init__(
        self,
        source: RegistryChatModel,
        make: Callable[[BaseChatModel], Runnable[Any, Any]],
        tools: Sequence[Any] = (),
    ) -> None:
        self.source = source
        self._make = make
        self._tools = list(tools)
        # Keyed by id() with the model kept alive beside it: models need not be hashable.
        self._made: dict[int, tuple[BaseChatModel, Runnable[Any, Any]]] = {}

    def _made_for(self, model: BaseChatModel) -> Runnable[Any, Any]:
        made = self._made.get(id(model))
        if made is None or made[0] is not model:
            made = self._made[id(model)] = (model, self._make(model))
        return made[1]

    def resolve(self, config: RunnableConfig | None = None) -> Runnable[Any, Any]:
        return self._made_for(self.source.resolve(config))

    def route(
        self, config: RunnableConfig, input: Any
    ) -> tuple[Runnable[Any, Any], RunnableConfig]:
        model, config = self.source.route(config, input, self._tools)
        return self._made_for(model), config

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        runnable, config = self.route(ensure_config(config), input)
        return runnable.invoke(input, config, **kwargs)

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        runnable, config = self.route(ensure_config(config), input)
        return await runnable.ainvoke(input, config, **kwargs)

    def stream(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Iterator[Any]:
        runnable, config = self.route(ensure_config(config), input)
        return runnable.stream(input, config, **kwargs)

    async def astream(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[Any]:
        runnable, config = self.route(ensure_config(config), input)
        async for chunk in runnable.astream(input, config, **kwargs):
            yield chunk
