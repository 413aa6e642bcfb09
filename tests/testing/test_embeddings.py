from __future__ import annotations

import math

import pytest

from dockyard.testing import DeterministicEmbeddings


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_vectors_are_stable_unit_length_and_sized() -> None:
    embeddings = DeterministicEmbeddings(dims=32)

    first = embeddings.embed_query("refund policy")
    again = DeterministicEmbeddings(dims=32).embed_documents(["refund policy"])[0]

    assert first == again
    assert len(first) == 32
    assert math.isclose(math.sqrt(sum(v * v for v in first)), 1.0)


def test_texts_sharing_words_rank_closer() -> None:
    embeddings = DeterministicEmbeddings(dims=128)
    query = embeddings.embed_query("what is the refund policy")
    related, unrelated = embeddings.embed_documents(
        ["our refund policy lasts 30 days", "the weather in Paris"]
    )

    assert cosine(query, related) > cosine(query, unrelated) + 0.2


def test_rejects_non_positive_dims() -> None:
    with pytest.raises(ValueError, match="dims must be >= 1"):
        DeterministicEmbeddings(dims=0)
