"""Chat models that need no network and no API key (they live in ``providers.offline``;
this module keeps ``from dockyard.testing.models import ...`` working)."""

from dockyard.providers.offline.models import (
    SUPPORT_RULES,
    OfflineChatModel,
    OfflineRule,
    ScriptedChatModel,
    ScriptedResponse,
    ScriptExhaustedError,
)

__all__ = [
    "SUPPORT_RULES",
    "OfflineChatModel",
    "OfflineRule",
    "ScriptExhaustedError",
    "ScriptedChatModel",
    "ScriptedResponse",
]
