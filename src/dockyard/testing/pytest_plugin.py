"""pytest fixtures for testing agents against mock providers, with no real model requests.

Enable with ``pytest_plugins = ["dockyard.testing.pytest_plugin"]`` in your top-level
``conftest.py``. Each mock provider fixture gives a freshly started server for one test.
To make every test refuse real model requests, add to the same ``conftest.py``::

    @pytest.fixture(autouse=True)
    def _no_real_models(no_model_requests: ModelRequestGuard) -> None: ...
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dockyard.testing.mock_providers import MockAnthropicServer, MockOpenAIServer
from dockyard.testing.model_requests import ModelRequestGuard, block_model_requests


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


@pytest.fixture
def no_model_requests() -> Iterator[ModelRequestGuard]:
    """Requests to hosts off this machine (a real model provider) raise
    ``ModelRequestBlocked`` during the test, in every thread; if any was refused the test
    also fails at teardown with the URLs, in case the code under test caught the error.
    A test that provokes the error on purpose does so inside its own
    ``with block_model_requests():``.
    """
    with block_model_requests() as guard:
        yield guard
    if guard.blocked:
        pytest.fail(
            "real model request(s) refused during the test (dockyard.testing."
            f"block_model_requests): {', '.join(guard.blocked)}",
            pytrace=False,
        )
