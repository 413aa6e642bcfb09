"""Load the graphs a project declares and hand out ready-to-run Pregel objects.

A spec is ``path/to/file.py:attr`` (relative to the project folder) or
``package.module:attr``. The attribute may be a ``StateGraph``, a compiled
graph, or a factory (sync or async, taking nothing or a RunnableConfig) that
returns either.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import StateGraph
from langgraph.pregel import Pregel
from langgraph.store.base import BaseStore

from dockyard.errors import ConfigError, NotFoundError
from dockyard.policies.chain import model_wrap
from dockyard.policies.pii import PiiMessageGuard, PiiPolicy
from dockyard.policies.routing import Router
from dockyard.providers.registry import ModelRegistry
from dockyard.runtime import quality
from dockyard.runtime.assistants import configured_assistant_id
from dockyard.settings import PoliciesConfig, Settings


def import_attr(key: str, spec: str, project_dir: Path, module_name: str) -> Any:
    """The object ``spec`` names; ConfigError naming ``key`` (the setting) when it cannot.
    A file is imported as module ``module_name``."""
    target, _, attr = spec.rpartition(":")
    if not target or not attr:
        raise ConfigError(f"{key} = {spec!r}: expected 'path/to/file.py:attr' or 'module:attr'")
    if target.endswith(".py") or "/" in target:
        path = (project_dir / target).resolve()
        if not path.is_file():
            raise ConfigError(f"{key} = {spec!r}: file {path} does not exist")
        mod_name = f"{module_name}_{abs(hash(str(path)))}"
        mod_spec = importlib.util.spec_from_file_location(mod_name, path)
        if mod_spec is None or mod_spec.loader is None:
            raise ConfigError(f"{key} = {spec!r}: cannot import {path}")
        module = importlib.util.module_from_spec(mod_spec)
        sys.modules[mod_name] = module
        # Let the graph file import its siblings, as `langgraph dev` does.
        if str(path.parent) not in sys.path:
            sys.path.insert(0, str(path.parent))
        try:
            mod_spec.loader.exec_module(module)
        except Exception as e:
            raise ConfigError(
                f"{key} = {spec!r}: importing {path} failed: {type(e).__name__}: {e}"
            ) from e
    else:
        if str(project_dir.resolve()) not in sys.path:
            sys.path.insert(0, str(project_dir.resolve()))
        try:
            module = importlib.import_module(target)
        except Exception as e:
            raise ConfigError(
                f"{key} = {spec!r}: importing module {target!r} failed: {type(e).__name__}: {e}"
            ) from e
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ConfigError(f"{key} = {spec!r}: {target} has no attribute {attr!r}") from None


class GraphRegistry:
    def __init__(
        self,
        specs: dict[str, str],
        project_dir: Path,
        models: ModelRegistry | None = None,
        assistant_models: dict[str, ModelRegistry] | None = None,
    ) -> None:
        """Import every graph now, so a bad spec stops start-up with a clear message.
        ``models``: the chat models every run of these graphs is handed;
        ``assistant_models``: by assistant id, those of assistants with policies of their own."""
        self.models = models if models is not None else ModelRegistry(project_dir=project_dir)
        self.assistant_models = dict(assistant_models or {})
        self.checkpointer: BaseCheckpointSaver[Any] | None = None
        self.store: BaseStore | None = None
        # Checkpoints of runs whose thread is deleted when they end (stateless
        # runs): kept in memory for the run's life instead of written to storage
        # only to be deleted. Such a run cut short by a crash starts over anyway.
        self.ephemeral = InMemorySaver()
        self._ephemeral_graphs: dict[str, Pregel[Any, Any, Any, Any]] = {}
        self._raw: dict[str, Any] = {}
        self._graphs: dict[str, Pregel[Any, Any, Any, Any]] = {}
        self._factories: dict[str, Callable[..., Any]] = {}
        for name, spec in specs.items():
            obj = import_attr(f"graphs.{name}", spec, project_dir, f"dockyard_graph_{name}")
            if isinstance(obj, StateGraph | Pregel):
                self._raw[name] = obj
            elif callable(obj):
                self._factories[name] = obj
            else:
                raise ConfigError(
                    f"graphs.{name} = {spec!r}: got a {type(obj).__name__}; expected a "
                    "StateGraph, a compiled graph or a function returning one"
                )

    def bind(self, checkpointer: BaseCheckpointSaver[Any], store: BaseStore) -> None:
        """Give every graph the server's checkpointer and store."""
        self.checkpointer, self.store = checkpointer, store
        self._graphs = {name: self._attach(obj) for name, obj in self._raw.items()}
        self._ephemeral_graphs = {
            name: self._attach(obj, ephemeral=True) for name, obj in self._raw.items()
        }

    def _attach(self, graph: Any, ephemeral: bool = False) -> Pregel[Any, Any, Any, Any]:
        if isinstance(graph, StateGraph):
            graph = graph.compile()
        if not isinstance(graph, Pregel):
            raise ConfigError(f"a graph factory returned {type(graph).__name__}, not a graph")
        checkpointer = self.ephemeral if ephemeral else self.checkpointer
        return graph.copy(update={"checkpointer": checkpointer, "store": self.store})

    @property
    def names(self) -> list[str]:
        return [*self._raw, *self._factories]

    def models_for(self, assistant_id: str) -> ModelRegistry:
        """The models (under their policies) the runs of ``assistant_id`` are handed."""
        return self.assistant_models.get(assistant_id, self.models)

    def __contains__(self, name: object) -> bool:
        return name in self._raw or name in self._factories

    async def get(
        self, name: str, config: RunnableConfig | None = None, *, ephemeral: bool = False
    ) -> Pregel[Any, Any, Any, Any]:
        """The graph bound to storage, or (``ephemeral``) to the in-memory checkpointer."""
        graphs = self._ephemeral_graphs if ephemeral else self._graphs
        if name in graphs:
            return graphs[name]
        factory = self._factories.get(name)
        if factory is None:
            raise NotFoundError(
                f"graph {name!r} is not declared; declared graphs: {', '.join(self.names)}",
                code="graph_not_found",
            )
        params = inspect.signature(factory).parameters
        result = factory(config or {}) if params else factory()
        if inspect.isawaitable(result):
            result = await result
        return self._attach(result, ephemeral)


def apply_project_env(settings: Settings) -> None:
    """langgraph.json's ``env`` (a dotenv path or a mapping) reaches the graphs' process."""
    env = settings.env
    if env is None:
        return
    if isinstance(env, str):
        path = Path(env)
        if not path.is_absolute():
            path = settings.project_dir / path
        if not path.is_file():
            return
        pairs: dict[str, str] = {}
        for line in path.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                k, _, v = line.partition("=")
                pairs[k.strip().removeprefix("export ").strip()] = v.strip().strip("'\"")
        env = pairs
    for k, v in env.items():
        os.environ.setdefault(k, v)


def load_registry(settings: Settings) -> GraphRegistry:
    """Build the project's models and import its graphs, with its ``env`` applied first
    (models and graphs may need keys from it)."""
    apply_project_env(settings)
    # /v1/chat/completions answers a graph's name with the graph and a model's name with
    # the model (api/gateway.py): one name cannot be both.
    if clash := sorted(set(settings.graphs) & {*settings.models, "default"}):
        raise ConfigError(
            f"graphs and models share the name(s) {clash}: /v1/chat/completions could not "
            "tell the assistant from the model; rename one (the model `default` always exists)"
        )
    chain = model_wrap(settings)
    quality.install(chain, settings)  # before any model is wrapped: each gets its gate
    models = ModelRegistry.from_settings(settings, wrap=chain)
    _attach(models, settings.policies)
    # Each configured assistant's runs get the same models under its own policies.
    assistants: dict[str, ModelRegistry] = {}
    for name in settings.assistants:
        policies = settings.assistant_policies(name)
        own = models.derive(policies, wrap=chain.for_policies(settings, policies, scope=name))
        _attach(own, policies)
        assistants[configured_assistant_id(name)] = own
    return GraphRegistry(settings.graphs, settings.project_dir, models, assistants)


def _attach(models: ModelRegistry, policies: PoliciesConfig) -> None:
    """The policies a registry carries beside its chain: PII on tool results
    (``dockyard.middleware()``) and routing."""
    if policies.pii is not None:
        models.message_guards.append(PiiMessageGuard(PiiPolicy.from_config(policies.pii)))
    if policies.routing is not None:
        models.router = Router(policies.routing)
