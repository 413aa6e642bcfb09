"""examples/production/dockyard.yaml: `dockyard serve` starts on it (PostgreSQL + Redis,
the guides' values), answers a run through langgraph-sdk against the mock OpenAI server,
and applies its rate limit, as a user deploying it would see."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
from langgraph_sdk import get_sync_client

from dockyard.settings import load_settings
from dockyard.testing.mock_providers import MockAnthropicServer, MockOpenAIServer
from tests.conftest import free_port, guarded, wait_ready
from tests.pg import fresh_database_sync
from tests.redis_server import REDIS_URL, fresh_prefix

PROFILE = Path(__file__).resolve().parents[2] / "examples" / "production" / "dockyard.yaml"


def test_the_profile_holds_the_guides_values() -> None:
    s = load_settings(PROFILE)
    default = s.models["default"]
    assert not isinstance(default, str) and default.retry is not None
    assert (default.timeout, default.retry.max_attempts) == (30, 3)
    assert (default.retry.backoff_min_seconds, default.retry.backoff_max_seconds) == (4, 10)
    assert default.breaker is not None
    assert (default.breaker.failures, default.breaker.cooldown_seconds) == (5, 60)
    p = s.policies
    assert p.rate_limit is not None and p.rate_limit.requests_per_minute == 60
    assert p.input is not None and p.input.max_tokens == 4000
    assert p.summarization is not None
    assert (p.summarization.trigger_fraction, p.summarization.keep_messages) == (0.75, 50)
    assert p.cache is not None
    assert (p.cache.ttl_seconds, p.cache.min_quality) == (3600, 0.8)
    assert (s.database_pool_size, s.database_max_overflow) == (10, 20)
    assert (s.database_pool_timeout, s.database_pool_recycle_seconds) == (30, 1800)


def test_the_server_starts_on_it_and_answers(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    with (
        MockOpenAIServer() as openai_mock,
        MockAnthropicServer() as anthropic_mock,
        fresh_database_sync() as db,
        fresh_prefix() as prefix,
    ):
        env = guarded(
            {
                **os.environ,
                "DOCKYARD_DATABASE_URL": db,
                "DOCKYARD_REDIS_URL": REDIS_URL,
                "DOCKYARD_REDIS_PREFIX": prefix,
                "DOCKYARD_DATA_DIR": str(tmp_path / "data"),
                "OPENAI_API_KEY": "sk-test",
                "ANTHROPIC_API_KEY": "sk-ant-test",
                "DOCKYARD_MODELS__DEFAULT__BASE_URL": openai_mock.base_url,
                "DOCKYARD_MODELS__BACKUP__BASE_URL": anthropic_mock.base_url,
            }
        )
        openai_mock.enqueue_text("Your order A1001 shipped yesterday.")
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "dockyard",
                    "serve",
                    "-c",
                    str(PROFILE),
                    "--port",
                    str(port),
                ],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
            try:
                wait_ready(proc, url, log)
                client = get_sync_client(url=url, api_key="sk-customer-1")
                result = client.runs.wait(
                    None,
                    "support",
                    input={"messages": [{"role": "user", "content": "where is order A1001?"}]},
                )
                assert result["messages"][-1]["content"] == "Your order A1001 shipped yesterday."
                assert len(openai_mock.requests) == 1  # the default model answered
                client.close()
                r = httpx.get(f"{url}/assistants/support", headers={"x-api-key": "sk-other"})
                assert r.headers["x-ratelimit-limit"] == "60"
            finally:
                proc.terminate()
                proc.wait(timeout=30)
