"""What a guard over the messages a model gets and gives looks like. Guards are attached
to the model registry from above (``policies.pii`` is one; runtime/graphs.py attaches
them) and run around every model call of a ``create_agent`` graph built with
``dockyard.middleware()`` (providers/agent_middleware.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from langchain_core.messages import AIMessage, BaseMessage


class MessageGuard(Protocol):
    def model_input(self, messages: Sequence[BaseMessage]) -> list[BaseMessage]:
        """The messages to send instead (or a PolicyError refusing them)."""
        ...

    def model_output(self, message: AIMessage) -> AIMessage:
        """The answer to hand on instead (or a PolicyError refusing it)."""
        ...
