"""``policies.routing`` and ``assistants:`` on their own: the rules, the run's priority,
the tier a chat_model call is sent to, and what a wrong block says at start-up."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.tools import tool

from dockyard import chat_model
from dockyard.errors import ConfigError
from dockyard.policies.routing import Router, estimate_call_tokens, run_priority
from dockyard.providers.registry import PRIORITY_KEY, TIER_KEY, ModelRegistry
from dockyard.runtime.usage import Usage, UsageTally, add_usage
from dockyard.settings import RoutingConfig, load_settings

ROUTING: dict[str, Any] = {
    "tiers": {"fast": "fast", "balanced": "balanced", "quality": "default"},
    "rules": [
        {"tier": "fast", "min_chars": 20000},
        {"tier": "balanced", "priority": ["urgent", "high"]},
        {"tier": "quality", "min_tokens": 3000},
        {"tier": "balanced", "min_tools": 3, "max_chars": 1000},
    ],
    "default": "quality",
}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("DOCKYARD_"):
            monkeypatch.delenv(name)


def router(**over: Any) -> Router:
    return Router(RoutingConfig.model_validate({**ROUTING, **over}))


def said(text: str) -> list[BaseMessage]:
    return [HumanMessage(text)]


@tool
def lookup(query: str) -> str:
    """Look something up."""
    return query


# -- the rules ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("messages", "tools", "priority", "tier"),
    [
        (said("hi"), [], None, "quality"),  # no rule: the default
        (said("x" * 20000), [], None, "fast"),
        (said("x" * 19999), [], None, "quality"),
        (said("x" * 20000), [], "urgent", "fast"),  # the first rule that holds wins
        (said("hi"), [], "high", "balanced"),
        (said("hi"), [], "low", "quality"),
        (said("word " * 2500), [], None, "quality"),  # 12,500 chars, ~3,125 tokens
        (said("hi"), [lookup, lookup, lookup], None, "balanced"),
        (said("x" * 1001), [lookup, lookup, lookup], None, "quality"),  # every condition
    ],
)
def test_the_first_rule_that_holds_names_the_tier(
    messages: list[BaseMessage], tools: list[Any], priority: str | None, tier: str
) -> None:
    route = router().route("default", messages, tools, priority)
    assert route is not None
    assert route.tier == tier
    assert route.model == ROUTING["tiers"][tier]


def test_only_the_names_in_apply_to_are_routed() -> None:
    assert router().route("fast", said("hi"), [], None) is None
    route = router(apply_to=["fast"]).route("fast", said("x" * 20000), [], None)
    assert route is not None and route.model == "fast"


def test_tokens_count_the_tools_schemas_and_non_ascii_text() -> None:
    assert estimate_call_tokens(said("abcd" * 10), []) == 10
    assert estimate_call_tokens(said("안녕하세요"), []) == 5
    with_tool = estimate_call_tokens(said("abcd" * 10), [lookup])
    assert with_tool > 10 + 5  # the schema's JSON counts too
    schema = {"type": "function", "function": {"name": "f", "parameters": {}}}
    assert estimate_call_tokens(said(""), [schema]) > 0


@dataclass
class Ctx:
    priority: str


def test_a_runs_priority_is_its_inputs_else_its_contexts() -> None:
    assert run_priority({"priority": "urgent"}, {"priority": "low"}) == "urgent"
    assert run_priority({"messages": []}, {"priority": "low"}) == "low"
    assert run_priority(None, Ctx("high")) == "high"
    assert run_priority({"priority": 3}, None) is None  # only a string counts
    assert run_priority({"priority": ""}, None) is None


# -- through chat_model(...) -----------------------------------------------------------------


class Fake(GenericFakeChatModel):
    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        return self.bind(tools=[t.name for t in tools], **kwargs)


def fake(name: str) -> Fake:
    return Fake(messages=iter([AIMessage(f"from {name}")] * 10))


class Tiers(UsageTally):
    def __init__(self) -> None:
        super().__init__(Usage())


def test_chat_model_sends_a_call_to_its_tiers_model_and_names_the_tier(tmp_path: Path) -> None:
    registry = ModelRegistry(
        {"default": fake("quality"), "fast": fake("fast"), "balanced": fake("balanced")}, tmp_path
    )
    registry.router = router()
    model = chat_model("default")
    tally = Tiers()
    config = registry.run_config({"callbacks": [tally]})
    assert model.invoke("hi", config).content == "from quality"
    assert model.invoke("x" * 20000, config).content == "from fast"
    config["configurable"][PRIORITY_KEY] = "urgent"
    assert model.invoke("hi", config).content == "from balanced"
    # bind_tools: the tools count, the call still goes to its tier.
    del config["configurable"][PRIORITY_KEY]
    bound = model.bind_tools([lookup, lookup, lookup])
    assert bound.invoke("hi", config).content == "from balanced"
    assert [c.tier for c in tally.usage.calls] == ["quality", "fast", "balanced", "balanced"]
    assert tally.usage.as_dict()["tiers"] == {"quality": 1, "fast": 1, "balanced": 2}
    # Without a router nothing is routed, and no tier is recorded.
    registry.router = None
    assert model.invoke("x" * 20000, config).content == "from quality"
    assert tally.usage.calls[-1].tier is None


def test_streamed_calls_are_routed_too(tmp_path: Path) -> None:
    registry = ModelRegistry({"default": fake("quality"), "fast": fake("fast")}, tmp_path)
    registry.router = router(tiers={"fast": "fast", "balanced": "fast", "quality": "default"})
    text = "".join(
        str(c.content) for c in chat_model("default").stream("x" * 20000, registry.run_config())
    )
    assert text == "from fast"


def test_tiers_add_up_over_attempts() -> None:
    first, second = Usage(), Usage()
    for usage, tiers in ((first, ["fast", "fast"]), (second, ["fast", "quality"])):
        tally = UsageTally(usage)
        for tier in tiers:
            model = fake("x")
            model.invoke("hi", {"callbacks": [tally], "metadata": {TIER_KEY: tier}})
    total = add_usage(add_usage(None, first), second)
    assert total is not None
    assert total["tiers"] == {"fast": 3, "quality": 1}


# -- configuration ------------------------------------------------------------------------------


def load(tmp_path: Path, **config: Any) -> Any:
    base: dict[str, Any] = {
        "graphs": {"agent": "./agent.py:graph"},
        "models": {"fast": "openai:gpt-4o-mini", "balanced": "openai:gpt-4.1-mini"},
    }
    path = tmp_path / "dockyard.yaml"
    path.write_text(yaml.safe_dump({**base, **config}))
    return load_settings(path)


def refused(tmp_path: Path, **config: Any) -> str:
    with pytest.raises(ConfigError) as err:
        load(tmp_path, **config)
    return err.value.message


def test_routing_and_assistants_load(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        policies={"routing": ROUTING, "pii": {"action": "mask"}, "cache": {"ttl_seconds": 60}},
        assistants={
            "support": {
                "graph": "agent",
                "policies": {"pii": {"action": "redact", "entities": ["email"]}, "cache": None},
            }
        },
    )
    assert settings.policies.routing.default == "quality"
    own = settings.assistant_policies("support")
    # Each block given replaces the default's; null turns it off; the rest are the defaults.
    assert (own.pii.action, own.pii.entities) == ("redact", ["email"])
    assert own.cache is None
    assert own.routing == settings.policies.routing


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {"policies": {"routing": {**ROUTING, "tiers": {**ROUTING["tiers"], "fast": "nope"}}}},
            "policies.routing.tiers.fast: no model named 'nope'",
        ),
        (
            {"policies": {"routing": {**ROUTING, "apply_to": ["auto"]}}},
            "policies.routing.apply_to.0: no model named 'auto'",
        ),
        (
            {"policies": {"routing": {**ROUTING, "default": "cheap"}}},
            "default: no tier named 'cheap'",
        ),
        (
            {"policies": {"routing": {**ROUTING, "rules": [{"tier": "slow", "min_chars": 1}]}}},
            "rules.0.tier: no tier named 'slow'",
        ),
        (
            {"policies": {"routing": {**ROUTING, "rules": [{"tier": "fast"}]}}},
            "has no condition",
        ),
        (
            {"policies": {"routing": {**ROUTING, "rules": [{"tier": "fast", "min_char": 3}]}}},
            "policies.routing.rules.0.min_char = 3: unknown key",
        ),
        (
            {"assistants": {"support": {"graph": "agent", "policies": {"pii": {"action": "x"}}}}},
            "assistants.support.policies.pii.action = 'x'",
        ),
        (
            {"assistants": {"support": {"graph": "agent", "policies": {"piii": {}}}}},
            "assistants.support.policies.piii = {...}: unknown key",
        ),
        ({"assistants": {"support": {"graph": "nope"}}}, "assistants.support.graph: no graph"),
        ({"assistants": {"agent": {"graph": "agent"}}}, "assistants.agent: a graph has that name"),
        ({"assistants": {"fast": {"graph": "agent"}}}, "assistants.fast: a model under `models:`"),
        (
            {"assistants": {"default": {"graph": "agent"}}},
            "assistants.default: a model under `models:`",
        ),
        (
            {
                "assistants": {
                    "support": {
                        "graph": "agent",
                        "policies": {"rate_limit": {"requests_per_minute": 5}},
                    }
                }
            },
            "rate_limit cannot be set per assistant",
        ),
        (
            {
                "assistants": {
                    "s": {"graph": "agent", "policies": {"input": {"max_body_bytes": 10}}}
                }
            },
            "max_body_bytes cannot be set per assistant",
        ),
        (
            {
                "assistants": {
                    "s": {
                        "graph": "agent",
                        "policies": {"routing": {**ROUTING, "tiers": {"quality": "big"}}},
                    }
                }
            },
            "no tier named 'fast'",
        ),
        (
            {
                "assistants": {
                    "s": {
                        "graph": "agent",
                        "policies": {
                            "routing": {"tiers": {"q": "big"}, "default": "q", "rules": []}
                        },
                    }
                }
            },
            "assistants.s.policies.routing.tiers.q: no model named 'big'",
        ),
    ],
)
def test_a_wrong_block_stops_start_up_naming_it(
    tmp_path: Path, config: dict[str, Any], message: str
) -> None:
    assert message in refused(tmp_path, **config)


def test_a_create_agent_graph_is_routed_by_its_tools(tmp_path: Path) -> None:
    from langchain.agents import create_agent

    registry = ModelRegistry({"default": fake("quality"), "fast": fake("fast")}, tmp_path)
    registry.router = router(
        tiers={"fast": "fast", "balanced": "fast", "quality": "default"},
        rules=[{"tier": "fast", "min_tools": 1}],
    )
    tally = Tiers()
    config = registry.run_config({"callbacks": [tally]})
    with_tools = create_agent(chat_model("default"), tools=[lookup])
    without = create_agent(chat_model("default"), tools=[])
    assert with_tools.invoke({"messages": [("user", "hi")]}, config)["messages"][-1].text == (
        "from fast"
    )
    assert without.invoke({"messages": [("user", "hi")]}, config)["messages"][-1].text == (
        "from quality"
    )
    assert tally.usage.tiers == {"fast": 1, "quality": 1}


DOCS = Path(__file__).parents[2] / "docs" / "policies.md"


def test_the_documented_examples_load(tmp_path: Path) -> None:
    text = DOCS.read_text(encoding="utf-8")
    section = text[text.index("## Routing") : text.index("## Rate limits")]
    blocks = re.findall(r"```yaml\n(.*?)```", section, re.S)
    assert len(blocks) == 2
    path = tmp_path / "dockyard.yaml"
    path.write_text(blocks[0])
    routing = load_settings(path).policies.routing
    assert routing is not None and routing.rules[0].min_chars == 20000
    path.write_text(blocks[1])
    settings = load_settings(path)
    assert settings.assistant_policies("support").routing is None
    assert settings.assistant_policies("internal").pii is None
    assert settings.assistant_policies("internal").routing is not None
