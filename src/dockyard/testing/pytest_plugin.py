"""pytest fixtures for testing agents against mock providers.

Enable with ``pytest_plugins = ["dockyard.testing.pytest_plugin"]`` in your top-level
``conftest.py``. Each fixture gives a freshly started server for one test.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dockyard.testing.mock_providers import MockAnthropicServer, MockOpenAIServer


@pytest.fixture
def mock_anthropic() -> Iterator[MockAnthropicServer]:
    """A running ``MockAnthropicServer``; pass ``mock_anthropic.base_url`` to the client."""
    with MockAnthropicServer() as server:
        yield server


@pytest.fixture
def mock_openai() -> Iterator[MockOpenAIServer]:
    """A running ``MockOpenAIServer``; its ``base_url`` already ends in ``/v1``."""
    with MockOpenAIServer() as server:
        yield server
