from __future__ import annotations

import openai
import pytest
from langchain_openai import OpenAIEmbeddings

from dockyard.errors import ConfigError, ProviderSetupError
from dockyard.providers import load_embeddings
from dockyard.testing import DeterministicEmbeddings, MockOpenAIServer


def test_fake_embeddings_by_dims() -> None:
    embeddings = load_embeddings("fake:64")

    assert isinstance(embeddings, DeterministicEmbeddings)
    assert len(embeddings.embed_query("hello")) == 64


@pytest.mark.parametrize("spec", ["fake:abc", "fake:0"])
def test_fake_needs_positive_dims(spec: str) -> None:
    with pytest.raises(ConfigError, match="expected 'fake:<dims>'"):
        load_embeddings(spec)


def test_unknown_provider_suggests_one() -> None:
    with pytest.raises(ConfigError, match="did you mean 'openai:text-embedding-3-small'"):
        load_embeddings("openia:text-embedding-3-small")


def test_missing_key_names_the_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)

    with pytest.raises(ProviderSetupError, match="OPENAI_API_KEY"):
        load_embeddings("openai:text-embedding-3-small")


async def test_openai_embeddings_against_the_mock(
    mock_openai: MockOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    # Own HTTP clients (extra kwargs reach OpenAIEmbeddings) so the test can close them.
    with openai.DefaultHttpxClient() as http_client:
        async with openai.DefaultAsyncHttpxClient() as http_async_client:
            embeddings = load_embeddings(
                "openai:text-embedding-3-small",
                base_url=mock_openai.base_url,
                dimensions=32,
                http_client=http_client,
                http_async_client=http_async_client,
            )
            vectors = await embeddings.aembed_documents(["refund policy", "shipping times"])
            query = embeddings.embed_query("refund policy")

    assert isinstance(embeddings, OpenAIEmbeddings)
    expected = DeterministicEmbeddings(32).embed_documents(["refund policy", "shipping times"])
    assert vectors == [pytest.approx(v, abs=1e-6) for v in expected]
    assert query == pytest.approx(expected[0], abs=1e-6)
    request = mock_openai.requests[0]
    assert request.body["input"] == ["refund policy", "shipping times"]  # text, not token ids
    assert request.body["dimensions"] == 32
    assert request.api_key == "not-needed"
