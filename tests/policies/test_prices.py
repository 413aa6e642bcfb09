"""The price table: the math per call, cached and cache-write tokens, names as providers
report them, configured prices over the shipped ones, and no price for an unknown model."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.errors import ConfigError
from dockyard.policies.prices import DEFAULT_PRICES, SHIPPED, Price, PriceTable
from dockyard.settings import ModelPrice, load_settings


def test_cost_is_per_million_tokens() -> None:
    price = Price(input=3, output=15)
    assert price.cost(1_000_000, 0) == pytest.approx(3.0)
    assert price.cost(0, 1_000_000) == pytest.approx(15.0)
    assert price.cost(2_000, 500) == pytest.approx(2_000 * 3e-6 + 500 * 15e-6)
    assert price.cost(0, 0) == 0


def test_cached_and_cache_write_tokens_are_part_of_the_input_count() -> None:
    # LangChain counts cache reads and writes inside input_tokens (both providers).
    price = Price(input=3, output=15, cached_input=0.30, cache_write=3.75)
    cost = price.cost(input_tokens=10_000, output_tokens=100, cached_input_tokens=8_000)
    assert cost == pytest.approx(2_000 * 3e-6 + 8_000 * 0.30e-6 + 100 * 15e-6)
    cost = price.cost(10_000, 0, cached_input_tokens=1_000, cache_write_tokens=4_000)
    assert cost == pytest.approx(5_000 * 3e-6 + 1_000 * 0.30e-6 + 4_000 * 3.75e-6)


def test_without_a_cache_price_cached_tokens_cost_the_input_price() -> None:
    price = Price(input=30, output=180)
    assert price.cost(1_000, 0, cached_input_tokens=600) == pytest.approx(1_000 * 30e-6)


def test_a_long_prompt_is_charged_at_the_long_context_prices_on_every_token() -> None:
    haiku = SHIPPED["claude-haiku-5-5"]
    short = haiku.cost(100_000, 1_000)
    assert short == pytest.approx(100_000 * 0.10e-6 + 1_000 * 0.50e-6)
    long = haiku.cost(100_001, 1_000)
    assert long == pytest.approx(100_001 * 0.50e-6 + 1_000 * 2.50e-6)


def test_names_match_as_providers_report_them() -> None:
    table = PriceTable(SHIPPED)
    found = table.lookup("gpt-4o-mini-2024-07-18")
    assert found is not None and found[0] == "gpt-4o-mini"
    found = table.lookup("claude-haiku-4-5-20251001")
    assert found is not None and found[0] == "claude-haiku-4-5"
    found = table.lookup("openai:gpt-4.1")
    assert found is not None and found[0] == "gpt-4.1"
    # A snapshot priced apart from its alias keeps its own price.
    dated = table.lookup("gpt-4o-2024-05-13")
    alias = table.lookup("gpt-4o")
    assert dated is not None and alias is not None and dated[1] != alias[1]
    # The first name with a price wins: the name asked for, then the one served.
    found = table.lookup(None, "my-proxy-alias", "gpt-5-mini")
    assert found is not None and found[0] == "gpt-5-mini"


def test_an_unknown_model_has_no_price() -> None:
    assert DEFAULT_PRICES.lookup("my-local-llama") is None
    assert DEFAULT_PRICES.lookup("gpt-4o-mini-turbo") is None  # no guessing by prefix
    assert DEFAULT_PRICES.lookup() is None


def test_configured_prices_add_models_and_replace_shipped_ones() -> None:
    table = PriceTable.from_config(
        {
            "gpt-4o-mini": ModelPrice(input=1, output=2),
            "openai:house-model": ModelPrice(input=0.5, output=1, cached_input=0.05),
        }
    )
    found = table.lookup("gpt-4o-mini")
    assert found is not None and found[1] == Price(input=1, output=2)
    found = table.lookup("openai:house-model", "house-model")
    assert found is not None and found[1].cached_input == 0.05
    assert table.lookup("anthropic:house-model", "house-model") is None
    assert DEFAULT_PRICES.lookup("gpt-4o-mini") == ("gpt-4o-mini", SHIPPED["gpt-4o-mini"])


def test_every_shipped_price_is_sane() -> None:
    for name, price in SHIPPED.items():
        assert 0 < price.input <= price.output, name
        for p in (price.cached_input, price.cache_write):
            assert p is None or p > 0, name


def test_prices_in_dockyard_yaml(tmp_path: Path) -> None:
    config = tmp_path / "dockyard.yaml"
    config.write_text(
        "policies:\n  prices:\n    house-model: {input: 0.5, output: 1.5, cached_input: 0.05}\n"
    )
    settings = load_settings(config)
    assert settings.policies.prices["house-model"] == ModelPrice(
        input=0.5, output=1.5, cached_input=0.05
    )
    config.write_text("policies:\n  prices:\n    house-model: {input: 0.5, outptu: 1.5}\n")
    with pytest.raises(ConfigError, match=r"policies\.prices\.house-model\.outptu"):
        load_settings(config)
    config.write_text("policies:\n  prices:\n    house-model: {input: -1, output: 1}\n")
    with pytest.raises(ConfigError, match=r"policies\.prices\.house-model\.input"):
        load_settings(config)
