"""Limits across processes: 2 API servers and 2 workers over PostgreSQL + Redis, keys made
with `dockyard keys create` against the same database. Requests per minute hold in total
whichever API a request reaches; tokens per minute hold whichever worker runs the call;
a key revoked is refused by both APIs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml
from langgraph_sdk import get_client

from dockyard.testing import MockOpenAIServer
from dockyard.testing.mock_providers import MockReply
from tests.cluster import Cluster, cluster
from tests.policies.test_token_limit_live import AGENT

pytestmark = pytest.mark.timeout(300)

REQUESTS = 6


def project(root: Path, openai_url: str) -> Path:
    (root / "agent.py").write_text(AGENT)
    config = {
        "graphs": {"answer": "./agent.py:graph"},
        "models": {"default": {"model": "openai:gpt-4o-mini", "base_url": openai_url}},
        "policies": {"rate_limit": {"requests_per_minute": REQUESTS, "tokens_per_minute": 10_000}},
        "auth": {"required": True, "cache_seconds": 0},
    }
    path = root / "dockyard.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def keys(c: Cluster, *args: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "dockyard", "keys", *args, "-c", str(c.config)],
        env=c.env,
        capture_output=True,
        check=True,
        timeout=60,
    )
    return out.stdout.decode()


async def test_limits_hold_across_apis_and_workers(
    tmp_path: Path, mock_openai: MockOpenAIServer
) -> None:
    config = project(tmp_path, mock_openai.base_url)
    with cluster(tmp_path, apis=2, workers=2, config=config, auth__required="true") as c:
        made = json.loads(keys(c, "create", "--tenant", "acme", "--json"))
        key = made["key"]
        statuses = []
        async with httpx.AsyncClient(headers={"x-api-key": key}, timeout=30) as h:
            for i in range(2 * REQUESTS):
                r = await h.post(f"{c.apis[i % 2].url}/assistants/search", json={})
                statuses.append(r.status_code)
            assert statuses == [200] * REQUESTS + [429] * REQUESTS
            # Tokens: a key of its own limit, its runs executed by either worker.
            small = json.loads(
                keys(
                    c,
                    "create",
                    "--tenant",
                    "acme",
                    "--json",
                    "--policy",
                    "rate_limit.tokens_per_minute=40",
                )
            )["key"]
            for _ in range(5):
                mock_openai.enqueue(MockReply(text="ok", input_tokens=10, output_tokens=20))
            msg = {"messages": [{"role": "user", "content": "hi"}]}
            outcomes = []
            for i in range(3):
                sdk = get_client(url=c.apis[i % 2].url, api_key=small, timeout=60)
                try:
                    await sdk.runs.wait(None, "answer", input=msg)
                    outcomes.append(200)
                except httpx.HTTPStatusError as e:
                    outcomes.append(e.response.status_code)
                    assert e.response.json()["code"] == "rate_limited"
                finally:
                    await sdk.aclose()
            assert outcomes == [200, 200, 429]
            assert len([r for r in mock_openai.requests if r.method == "POST"]) == 2
            # Revoked with the CLI: both APIs refuse it (cache_seconds 0).
            keys(c, "revoke", made["id"])
            for api in c.apis:
                r = await h.post(f"{api.url}/threads/search", json={})
                assert r.status_code == 401 and r.json()["code"] == "unauthorized"
