# Users enable these with pytest_plugins = ["dockyard.testing.pytest_plugin"]; a
# non-root conftest may not declare pytest_plugins, so import the fixtures instead.
from dockyard.testing.pytest_plugin import mock_anthropic, mock_openai

__all__ = ["mock_anthropic", "mock_openai"]
