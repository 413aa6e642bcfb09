"""``assistants:`` with policies of their own: each configured assistant's runs get the
process's models under its policies (a registry and a chain of its own, the provider's
models and the breakers shared), and the file is the source of those assistants."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage

from dockyard import chat_model
from dockyard.policies.chain import model_wrap
from dockyard.providers.offline.base import FakeChatModelBase, ToolSpec
from dockyard.providers.registry import ModelRegistry
from dockyard.runtime.assistants import configured_assistant_id, ensure_configured_assistants
from dockyard.runtime.graphs import load_registry
from dockyard.settings import Settings, load_settings
from dockyard.storage.base import Assistant
from tests.conftest import FIXTURE_PROJECT

GRAPHS = {"trivial": str(FIXTURE_PROJECT / "graphs.py") + ":trivial"}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("DOCKYARD_"):
            monkeypatch.delenv(name)


class Recorder(FakeChatModelBase):
    seen: list[str] = []

    def _reply(self, messages: list[BaseMessage], tools: list[ToolSpec]) -> AIMessage:
        self.seen.append(messages[-1].text)
        return AIMessage(content="fine")


def settings(tmp_path: Path, **assistants: Any) -> Settings:
    return load_settings(
        None,
        project_dir=tmp_path,
        graphs=GRAPHS,
        policies={"cache": {"ttl_seconds": 60, "force": True}},
        assistants=assistants,
    )


def test_one_chat_model_caches_for_one_assistant_and_not_for_another(tmp_path: Path) -> None:
    s = settings(
        tmp_path,
        cached={"graph": "trivial"},
        fresh={"graph": "trivial", "policies": {"cache": None}},
    )
    chain = model_wrap(s)
    recorder = Recorder()
    recorder.seen = []
    base = ModelRegistry({"default": recorder}, tmp_path, s.policies, wrap=chain)

    def own(name: str) -> ModelRegistry:
        policies = s.assistant_policies(name)
        return base.derive(policies, wrap=chain.for_policies(s, policies, scope=name))

    cached, fresh = own("cached"), own("fresh")
    model = chat_model("default")  # one module-level model for all of them
    for registry in (base, base, cached, cached, fresh, fresh):
        assert model.invoke("hi", registry.run_config()).content == "fine"
    # base: 1 call, then a hit; cached: its own entries (not base's), 1 call; fresh: 2.
    assert len(recorder.seen) == 4
    assert fresh.raw("default") is base.raw("default") is recorder  # one provider model
    assert fresh.get("default") is not base.get("default")  # wrapped in another chain


def test_the_quality_hook_reaches_every_assistants_cache(tmp_path: Path) -> None:
    s = settings(tmp_path, cached={"graph": "trivial"})
    chain = model_wrap(s)
    own = chain.for_policies(s, s.assistant_policies("cached"), scope="cached")
    chain.set_quality(lambda messages, answer: 1.0)
    assert chain.cache is not None and own.cache is not None
    assert own.cache.quality is chain.cache.quality is not None


def test_load_registry_gives_each_configured_assistant_its_policies(tmp_path: Path) -> None:
    s = settings(
        tmp_path,
        fresh={
            "graph": "trivial",
            "policies": {
                "cache": None,
                "routing": {"tiers": {"only": "default"}, "default": "only"},
            },
        },
    )
    registry = load_registry(s)
    fresh = registry.models_for(configured_assistant_id("fresh"))
    assert fresh is not registry.models
    assert fresh.policies.cache is None and fresh.router is not None
    assert registry.models.policies.cache is not None and registry.models.router is None
    # Any other assistant (the graph's own, one made over the API): the defaults.
    assert registry.models_for("2f0c3a0e-0000-0000-0000-000000000000") is registry.models


class Store:
    """The part of an AssistantStore ``ensure_configured_assistants`` uses."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}
        self.updates = 0

    async def get(self, assistant_id: str) -> Assistant | None:
        row = self.rows.get(assistant_id)
        return dict(row) if row else None  # type: ignore[return-value]

    async def create(self, **row: Any) -> Assistant:
        self.rows.setdefault(row["assistant_id"], row)
        return row  # type: ignore[return-value]

    async def update(self, assistant_id: str, **changes: Any) -> Assistant:
        self.updates += 1
        self.rows[assistant_id].update({k: v for k, v in changes.items() if v is not None})
        return self.rows[assistant_id]  # type: ignore[return-value]


async def test_the_file_is_the_source_of_configured_assistants(tmp_path: Path) -> None:
    store = Store()
    first = settings(tmp_path, support={"graph": "trivial", "description": "help desk"})
    await ensure_configured_assistants(first, store)  # type: ignore[arg-type]
    await ensure_configured_assistants(first, store)  # type: ignore[arg-type]
    (row,) = store.rows.values()
    assert row["assistant_id"] == configured_assistant_id("support")
    assert (row["name"], row["graph_id"], row["description"]) == ("support", "trivial", "help desk")
    assert row["metadata"] == {"created_by": "system", "dockyard_assistant": "support"}
    assert store.updates == 0  # started again unchanged: nothing to do
    moved = load_settings(
        None,
        project_dir=tmp_path,
        graphs={**GRAPHS, "other": GRAPHS["trivial"]},
        assistants={"support": {"graph": "other", "description": "help desk"}},
    )
    await ensure_configured_assistants(moved, store)  # type: ignore[arg-type]
    assert (store.updates, store.rows[row["assistant_id"]]["graph_id"]) == (1, "other")
