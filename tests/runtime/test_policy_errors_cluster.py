"""PolicyError raised in a worker process (2 API-only servers, 2 workers, PostgreSQL and
Redis): the run ends with its code, and each API process answers with its status and
code, whichever process ran the run or created it."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest
from langgraph_sdk import get_client

from tests.cluster import Cluster, cluster
from tests.policy_checks import check_chat_refusal, check_openai_refusal, check_run_refusal

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def prod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with cluster(tmp_path_factory.mktemp("policy-cluster")) as c:
        yield c


async def test_refusals_from_workers_reach_every_api(prod: Cluster) -> None:
    a, b = (api.url for api in prod.apis)
    client_a, client_b = get_client(url=a, timeout=60), get_client(url=b, timeout=60)
    oai = openai.AsyncOpenAI(base_url=f"{b}/v1", api_key="unused", max_retries=0)
    try:
        async with httpx.AsyncClient(base_url=b, timeout=60) as http_b:
            # Streamed from API A, read back and waited on through API B.
            await check_run_refusal(
                client_a, http_b, "RateLimitedError", "model", 7, reader=client_b
            )
            await check_run_refusal(client_b, http_b, "BudgetExceededError", "tool", None)
            await check_openai_refusal(oai, "RateLimitedError", 7)
            await check_chat_refusal(http_b, "ProviderUnavailableError", 2.5)
    finally:
        await oai.close()
        await client_a.aclose()
        await client_b.aclose()
