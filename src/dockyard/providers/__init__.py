"""Chat models and embeddings chosen by a ``"provider:model"`` string.

Provider SDKs are imported only when a model of theirs is loaded; a missing SDK or key
fails with a ``ProviderSetupError`` that says what to install or set.
"""

from dockyard.providers._env import env_var_is_set
from dockyard.providers.chat import CHAT_PROVIDERS, OFFLINE_PRESETS, load_chat_model
from dockyard.providers.embeddings import EMBEDDING_PROVIDERS, load_embeddings
from dockyard.providers.registry import ModelRegistry, chat_model

__all__ = [
    "CHAT_PROVIDERS",
    "EMBEDDING_PROVIDERS",
    "OFFLINE_PRESETS",
    "ModelRegistry",
    "chat_model",
    "env_var_is_set",
    "load_chat_model",
    "load_embeddings",
]
