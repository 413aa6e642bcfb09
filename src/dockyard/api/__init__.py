"""The HTTP API: Agent Server routes, OpenAI-compatible routes, ops."""

from dockyard.api.app import create_app

__all__ = ["create_app"]
