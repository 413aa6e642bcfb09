"""``python -m dockyard.testing.mock_providers``: run a mock provider server by hand."""

from __future__ import annotations

import argparse
import contextlib
import threading

from dockyard.testing.mock_providers._server import (
    MockAnthropicServer,
    MockOpenAIServer,
    MockProviderServer,
)

_SERVERS: dict[str, type[MockProviderServer]] = {
    "both": MockProviderServer,
    "anthropic": MockAnthropicServer,
    "openai": MockOpenAIServer,
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m dockyard.testing.mock_providers",
        description="Serve mock Anthropic / OpenAI APIs on 127.0.0.1 (replies echo the input).",
    )
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    parser.add_argument("--provider", choices=sorted(_SERVERS), default="both")
    parser.add_argument("--api-key", default=None, help="reject requests with another key")
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=0.0,
        help="milliseconds each model request waits before its answer starts (default 0)",
    )
    parser.add_argument(
        "--no-record",
        action="store_true",
        help="keep no record of the requests (for long benchmarks: bounded memory)",
    )
    args = parser.parse_args(argv)
    if args.latency_ms < 0:
        parser.error("--latency-ms must be >= 0")

    server = _SERVERS[args.provider](
        api_key=args.api_key,
        port=args.port,
        latency=args.latency_ms / 1000,
        record_requests=not args.no_record,
    )
    with server:
        if "anthropic" in server.providers:
            print(f"anthropic base_url: {server.url}", flush=True)
        if "openai" in server.providers:
            print(f"openai base_url: {server.url}/v1", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
