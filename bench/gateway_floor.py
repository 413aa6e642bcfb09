"""The floor for issue 15's gateway benchmark: the least a Python gateway can do.

    python bench/gateway_floor.py --upstream http://127.0.0.1:PORT/v1 --port 8140 --key sk-mock

A Starlette route on uvicorn (the stack dockyard and LiteLLM's proxy both run on) that
parses the body, names the upstream model, forwards it with one shared ``httpx`` client and
relays the answer, streamed or not. No key check, no policy, no usage: what is left of a
gateway's added latency and CPU per request when it does nothing else, on this machine.
``gateway_bench.py --targets ...,floor`` measures it in the same run as the others.
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator

import httpx
import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route


def build(upstream: str, key: str, model: str) -> Starlette:
    client = httpx.AsyncClient(
        base_url=upstream,
        timeout=60,
        limits=httpx.Limits(max_connections=1000, max_keepalive_connections=1000),
        headers={"authorization": f"Bearer {key}", "content-type": "application/json"},
    )

    async def chat(request: Request) -> Response:
        body = orjson.loads(await request.body())
        body["model"] = model
        content = orjson.dumps(body)
        if not body.get("stream"):
            r = await client.post("/chat/completions", content=content)
            return Response(r.content, r.status_code, media_type="application/json")
        upstream_request = client.build_request("POST", "/chat/completions", content=content)
        r = await client.send(upstream_request, stream=True)

        async def relay() -> AsyncIterator[bytes]:
            try:
                async for part in r.aiter_raw():
                    yield part
            finally:
                await r.aclose()

        return StreamingResponse(relay(), r.status_code, media_type="text/event-stream")

    async def models(request: Request) -> Response:
        return Response(b'{"object":"list","data":[]}', media_type="application/json")

    return Starlette(
        routes=[
            Route("/v1/chat/completions", chat, methods=["POST"]),
            Route("/v1/models", models),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--key", default="sk-mock")
    parser.add_argument("--model", default="gpt-4o-mini")
    args = parser.parse_args()
    app = build(args.upstream, args.key, args.model)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
