"""HTTP servers on 127.0.0.1 that speak the Anthropic and OpenAI wire formats.

Point the real SDKs (or LangChain's models) at ``server.base_url`` and script what they
receive::

    with MockAnthropicServer() as srv:
        srv.enqueue_tool_call("lookup_order", {"order_id": "A1"})
        srv.fail_next(429, times=2, retry_after=0.1)
        client = anthropic.Anthropic(base_url=srv.base_url, api_key="test-key")
        ...
        assert len(srv.requests) == 3

Run one by hand with ``python -m dockyard.testing.mock_providers --port 0``.
"""

from dockyard.testing.mock_providers._core import MockReply, MockToolCall, RecordedRequest
from dockyard.testing.mock_providers._server import (
    MockAnthropicServer,
    MockOpenAIServer,
    MockProviderServer,
)

__all__ = [
    "MockAnthropicServer",
    "MockOpenAIServer",
    "MockProviderServer",
    "MockReply",
    "MockToolCall",
    "RecordedRequest",
]
