"""Embedding models by string, for the store's vector index."""

from __future__ import annotations

from typing import Any

from langchain.embeddings import init_embeddings
from langchain_core.embeddings import Embeddings
from pydantic import SecretStr

from dockyard.errors import ConfigError
from dockyard.providers._spec import OPENAI, require_sdk, resolve_api_key, split_spec
from dockyard.providers.offline.embeddings import DeterministicEmbeddings

EMBEDDING_PROVIDERS = ("openai", "local", "fake")


def load_embeddings(
    spec: str,
    *,
    base_url: str | None = None,
    api_key: str | SecretStr | None = None,
    **kwargs: Any,
) -> Embeddings:
    """Build the embeddings named by ``spec``.

    * ``openai:<model>``: ``OpenAIEmbeddings``; ``base_url`` points it at any
      OpenAI-compatible server (a missing key then becomes a placeholder). Pass
      ``dimensions=`` to shorten vectors where the model supports it.
    * ``local:all-MiniLM-L6-v2``: ``LocalEmbeddings``, 384 dimensions computed on this
      machine by an ONNX model (needs ``dockyard[local-embeddings]``; no network).
    * ``fake:<dims>``: ``DeterministicEmbeddings(dims)``, e.g. ``"fake:256"``.
    """
    provider, model = split_spec(spec, EMBEDDING_PROVIDERS, what="embeddings")
    kwargs = {name: value for name, value in kwargs.items() if value is not None}
    if provider == "fake":
        if not model.isdigit() or int(model) < 1:
            raise ConfigError(f"embeddings {spec!r}: expected 'fake:<dims>', e.g. 'fake:256'")
        return DeterministicEmbeddings(int(model))
    if provider == "local":
        from dockyard.providers.local_embeddings import LocalEmbeddings

        return LocalEmbeddings(model)

    require_sdk(OPENAI)
    key = resolve_api_key(OPENAI, api_key, local_server=base_url is not None)
    if key is not None:
        kwargs["api_key"] = key
    if base_url is not None:
        kwargs["base_url"] = base_url
        # Other servers take text, not OpenAI's token ids, and computing those ids
        # would make tiktoken download its tables.
        kwargs.setdefault("check_embedding_ctx_length", False)

    return init_embeddings(model, provider="openai", **kwargs)
