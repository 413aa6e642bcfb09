"""Deterministic embeddings for tests and for running memory search without a model."""

from __future__ import annotations

from langchain_core.embeddings import Embeddings

from dockyard.providers.offline.text import embed_text


class DeterministicEmbeddings(Embeddings):
    """Unit vectors of ``dims`` floats derived from the words of each text.

    The same text always gets the same vector, on every machine, and texts that share
    words are closer than texts that do not, so a vector store's ranking is meaningful
    in tests. The mock OpenAI server's ``/v1/embeddings`` returns the very same vectors.
    """

    def __init__(self, dims: int = 256) -> None:
        if dims < 1:
            raise ValueError(f"dims must be >= 1, got {dims}")
        self.dims = dims

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [embed_text(text, self.dims) for text in texts]

    def embed_query(self, text: str) -> list[float]:
        return embed_text(text, self.dims)

    def __repr__(self) -> str:
        return f"DeterministicEmbeddings(dims={self.dims})"
