"""Test doubles shipped with dockyard, so you can test your own agents offline.

* ``ScriptedChatModel`` / ``OfflineChatModel``: chat models with no network.
* ``DeterministicEmbeddings``: stable fake vectors.
  (These three live in ``dockyard.providers.offline``, which serves them as ``fake:`` and
  ``offline:`` models; they are re-exported here.)
* ``MockAnthropicServer`` / ``MockOpenAIServer``: HTTP servers on 127.0.0.1 speaking the
  providers' wire formats, with scripted replies and injectable faults, for driving the
  real SDKs. Their pytest fixtures live in ``dockyard.testing.pytest_plugin``.
* ``block_model_requests()``: any request to a model provider off this machine fails the
  test (``ModelRequestBlocked``); the plugin's ``no_model_requests`` fixture applies it.
"""

from dockyard.providers.offline.embeddings import DeterministicEmbeddings
from dockyard.providers.offline.models import (
    SUPPORT_RULES,
    OfflineChatModel,
    OfflineRule,
    ScriptedChatModel,
    ScriptedResponse,
    ScriptExhaustedError,
)
from dockyard.testing.mock_providers import (
    MockAnthropicServer,
    MockOpenAIServer,
    MockProviderServer,
    MockReply,
    MockToolCall,
    RecordedRequest,
)
from dockyard.testing.model_requests import (
    ModelRequestBlocked,
    ModelRequestGuard,
    block_model_requests,
)

__all__ = [
    "SUPPORT_RULES",
    "DeterministicEmbeddings",
    "MockAnthropicServer",
    "MockOpenAIServer",
    "MockProviderServer",
    "MockReply",
    "MockToolCall",
    "ModelRequestBlocked",
    "ModelRequestGuard",
    "OfflineChatModel",
    "OfflineRule",
    "RecordedRequest",
    "ScriptExhaustedError",
    "ScriptedChatModel",
    "ScriptedResponse",
    "block_model_requests",
]
