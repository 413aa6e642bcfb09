"""dockyard: a self-hosted production runtime for LangGraph agents."""

from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("dockyard")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0"

__all__ = ["ModelRegistry", "__version__", "chat_model", "middleware", "prompt"]


def __getattr__(name: str) -> Any:
    # Imported on first use: `import dockyard` (the CLI, settings) stays free of LangChain.
    if name in ("ModelRegistry", "chat_model"):
        from dockyard.providers import registry

        return getattr(registry, name)
    if name == "middleware":
        from dockyard.providers import agent_middleware

        return agent_middleware.middleware
    if name == "prompt":
        from dockyard.prompt_source import prompt

        return prompt
    raise AttributeError(f"module 'dockyard' has no attribute {name!r}")
