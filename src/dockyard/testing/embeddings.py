"""Deterministic embeddings (they live in ``providers.offline``; this module keeps
``from dockyard.testing.embeddings import DeterministicEmbeddings`` working)."""

from dockyard.providers.offline.embeddings import DeterministicEmbeddings

__all__ = ["DeterministicEmbeddings"]
