"""Models that answer with no network and no API key: ``fake:``, ``offline:`` and
``fake:<dims>`` embeddings.

They live here, beside the providers that build them by string (``providers.chat``,
``providers.embeddings``); ``dockyard.testing`` re-exports them for users' tests and
``dockyard.agents.support`` runs on ``SupportOfflineModel`` when no key is set, the
research team (``dockyard.agents.research``) on ``ResearchOfflineModel``.
"""

from dockyard.providers.offline.base import FakeChatModelBase, ToolSpec
from dockyard.providers.offline.embeddings import DeterministicEmbeddings
from dockyard.providers.offline.models import (
    SUPPORT_RULES,
    OfflineChatModel,
    OfflineRule,
    ScriptedChatModel,
    ScriptedResponse,
    ScriptExhaustedError,
)
from dockyard.providers.offline.research import ResearchOfflineModel
from dockyard.providers.offline.support import SUPPORT_AGENT_RULES, SupportOfflineModel

__all__ = [
    "SUPPORT_AGENT_RULES",
    "SUPPORT_RULES",
    "DeterministicEmbeddings",
    "FakeChatModelBase",
    "OfflineChatModel",
    "OfflineRule",
    "ResearchOfflineModel",
    "ScriptExhaustedError",
    "ScriptedChatModel",
    "ScriptedResponse",
    "SupportOfflineModel",
    "ToolSpec",
]
