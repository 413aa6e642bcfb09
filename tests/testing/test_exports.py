"""Keep ``__all__`` honest for the public packages (as httpx does)."""

from __future__ import annotations

import importlib

import pytest


@pytest.mark.parametrize(
    "module_name",
    [
        "dockyard.testing",
        "dockyard.testing.mock_providers",
        "dockyard.providers",
        "dockyard.providers.offline",
    ],
)
def test_all_lists_exactly_the_public_names(module_name: str) -> None:
    module = importlib.import_module(module_name)
    public = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and getattr(value, "__module__", "").startswith("dockyard")
    }

    assert sorted(module.__all__) == sorted(set(module.__all__))
    assert set(module.__all__) >= public
    assert all(hasattr(module, name) for name in module.__all__)
