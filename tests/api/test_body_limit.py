"""Request body caps (``server.max_body_bytes``, ``server.max_json_depth``) against a live
server: every route with a body refuses a body over the cap (413 ``payload_too_large``)
before reading it whole, and JSON nested over the cap (422 ``json_too_deep``) before
parsing it, in its route family's error shape; a refused request stores nothing."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.errors import APIStatusError

from dockyard.api.body_limit import json_too_deep
from dockyard.api.conversation import resume_value
from dockyard.errors import ConfigError
from dockyard.settings import load_settings
from tests.conftest import LiveServer

LIMIT = 16 * 1024  # the small server's caps: small bodies keep the sweep fast
DEPTH = 16
DEFAULT_LIMIT = 4 * 2**20
DEFAULT_DEPTH = 64
JSON = {"Content-Type": "application/json"}
PAD = "<pad>"
YEARLY = "0 0 1 1 *"
FAMILIES = {"assistants", "threads", "runs", "store", "crons", "openai", "chat"}


def nest(levels: int) -> Any:
    value: Any = 0
    for _ in range(levels):
        value = [value]
    return value


def depth(value: Any) -> int:
    """The reference: arrays and objects nested in ``value`` (recursive, small inputs only)."""
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    return 0


def exact(template: Any, size: int) -> bytes:
    """``template`` as compact JSON of exactly ``size`` bytes: its PAD string filled with x."""
    text = json.dumps(template, separators=(",", ":"))
    fill = size - len(text) + len(PAD)
    assert fill >= 0, (size, len(text))
    out = text.replace(f'"{PAD}"', '"' + "x" * fill + '"').encode()
    assert len(out) == size
    return out


def deep(template: Any, levels: int) -> bytes:
    """``template`` as JSON nesting exactly ``levels`` deep: its PAD replaced by arrays."""
    around = depth(json.loads(json.dumps(template).replace(f'"{PAD}"', "[]"))) - 1
    inner = levels - around
    body = json.dumps(template).replace(f'"{PAD}"', "[" * inner + "0" + "]" * inner)
    if levels < 200:  # the reference recurses
        assert depth(json.loads(body)) == levels
    return body.encode()


def assert_refused(r: httpx.Response, status: int, code: str) -> None:
    """The family's error shape: OpenAI's on /v1, ``{"detail", "code"}`` elsewhere."""
    assert r.status_code == status, (r.request.url.path, r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    if r.request.url.path.startswith("/v1/"):
        assert body["error"]["code"] == code, body
        assert body["error"]["type"] == "invalid_request_error", body
        message = body["error"]["message"]
    else:
        assert body["code"] == code, body
        message = body["detail"]
    setting = "max_body_bytes" if status == 413 else "max_json_depth"
    assert f"server.{setting}" in message and f"DOCKYARD_SERVER__{setting.upper()}" in message
    assert "Traceback" not in r.text


# -- the depth scan, against a recursive reference ------------------------------------------


def test_depth_scan_matches_the_parser_on_the_limit() -> None:
    for levels in (3, 4, 15, 16, 17, 64, 65, 200):
        body = json.dumps({"a": [1, {"b": nest(levels - 3)}], "c": "x"}).encode()
        assert depth(json.loads(body)) == levels
        for limit in (16, 64):
            assert json_too_deep(body, limit) is (levels > limit), (levels, limit)


def test_depth_scan_ignores_brackets_in_strings_and_escapes() -> None:
    tricky = ["[" * 100, "{" * 100 + '"', '\\"[[[[', "\\", 'a\\\\"', "]]]" * 50, "\u20ac[{"]
    body = json.dumps({"s": tricky, "t": {"u": tricky[::-1]}}).encode()
    assert depth(json.loads(body)) == 3
    assert not json_too_deep(body, 3)
    assert json_too_deep(body, 2)


def test_depth_scan_on_random_documents() -> None:
    rng = random.Random(13)
    strings = ["", "[", "]", "{", "}", '"', "\\", "\\\\", '\\"', "[[{", "x", "\n", "é"]

    def gen(budget: int) -> Any:
        kind = rng.random()
        if budget <= 0 or kind < 0.3:
            return rng.choice([1, None, True, "".join(rng.choices(strings, k=rng.randint(0, 6)))])
        if kind < 0.65:
            return [gen(budget - rng.randint(1, 3)) for _ in range(rng.randint(0, 4))]
        return {
            "".join(rng.choices(strings, k=3)): gen(budget - rng.randint(1, 3))
            for _ in range(rng.randint(0, 4))
        }

    for _ in range(400):
        doc = gen(rng.randint(1, 40))
        body = json.dumps(doc, ensure_ascii=rng.random() < 0.5).encode()
        real = depth(doc)
        for limit in {1, max(real - 1, 1), real, real + 1, 64}:
            assert json_too_deep(body, limit) is (real > limit), (body[:200], real, limit)


def test_depth_scan_refuses_the_parser_killers() -> None:
    assert json_too_deep(b"[" * 100_000 + b"]" * 100_000, 64)
    assert json_too_deep(b"[" * 100_000, 64)  # never closed: the parser still descends
    assert json_too_deep(b'{"a":' * 100_000, 64)
    assert json_too_deep(b"[[]," * 100 + b"0" + b"]" * 100, 64)  # stairs: no long "[" run
    assert not json_too_deep(b"[" + b"[[[]]]," * 10_000 + b"0]", 64)  # wide, shallow
    assert not json_too_deep(b'{"a": [1, 2', 64)  # broken but shallow: the parser says why


# -- settings -------------------------------------------------------------------------------


def test_caps_have_defaults_and_come_from_the_file(tmp_path: Path) -> None:
    defaults = load_settings(project_dir=tmp_path)
    assert defaults.server.max_body_bytes == DEFAULT_LIMIT
    assert defaults.server.max_json_depth == DEFAULT_DEPTH
    config = tmp_path / "dockyard.yaml"
    config.write_text("server:\n  max_body_bytes: 1234\n  max_json_depth: 8\n")
    settings = load_settings(config)
    assert (settings.server.max_body_bytes, settings.server.max_json_depth) == (1234, 8)


def test_bad_caps_are_refused_at_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKYARD_SERVER__MAX_JSON_DEPTH", "0")
    with pytest.raises(ConfigError) as err:
        load_settings(project_dir=tmp_path)
    assert "server.max_json_depth" in str(err.value)
    assert "DOCKYARD_SERVER__MAX_JSON_DEPTH" in str(err.value)
    monkeypatch.setenv("DOCKYARD_SERVER__MAX_JSON_DEPTH", "10")
    config = tmp_path / "dockyard.yaml"
    config.write_text("server:\n  max_body_bytes: 0\n")
    with pytest.raises(ConfigError, match=r"server\.max_body_bytes"):
        load_settings(config)


async def test_caps_from_the_environment_reach_the_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKYARD_SERVER__MAX_BODY_BYTES", "2048")
    monkeypatch.setenv("DOCKYARD_SERVER__MAX_JSON_DEPTH", "4")
    server = LiveServer(tmp_path).start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as h:
            template = {"metadata": {"pad": PAD}}
            r = await h.post("/threads", content=exact(template, 2048), headers=JSON)
            assert r.status_code == 200, r.text
            r = await h.post("/threads", content=exact(template, 2049), headers=JSON)
            assert_refused(r, 413, "payload_too_large")
            assert "2048 bytes" in r.json()["detail"]
            r = await h.post("/threads", content=deep(template, 4), headers=JSON)
            assert r.status_code == 200, r.text
            r = await h.post("/threads", content=deep(template, 5), headers=JSON)
            assert_refused(r, 422, "json_too_deep")
    finally:
        server.stop()


# -- every route, on a server with small caps ------------------------------------------------


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    caps = {"max_body_bytes": LIMIT, "max_json_depth": DEPTH}
    server = LiveServer(tmp_path_factory.mktemp("bodylimit"), server=caps).start()
    yield server
    server.stop()


@pytest.fixture
async def h(small: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=small.url, timeout=30) as client:
        yield client


@pytest.fixture
async def thread_id(h: httpx.AsyncClient) -> str:
    r = await h.post("/threads", json={})
    assert r.status_code == 200, r.text
    return str(r.json()["thread_id"])


async def stored(h: httpx.AsyncClient, thread_id: str) -> dict[str, Any]:
    """Everything a body could have created, counted."""
    items = await h.post("/store/items/search", json={"namespace_prefix": ["caps"], "limit": 1000})
    runs = await h.get(f"/threads/{thread_id}/runs", params={"limit": 1000})
    thread = await h.get(f"/threads/{thread_id}")
    return {
        "threads": (await h.post("/threads/count", json={})).json(),
        "assistants": (await h.post("/assistants/count", json={})).json(),
        "crons": (await h.post("/runs/crons/count", json={})).json(),
        "runs": len(runs.json()),
        "items": len(items.json()["items"]),
        "thread": thread.json()["metadata"],
    }


# One request per route family that stores what it is sent: (method, path, body).
STORING: dict[str, tuple[str, str, dict[str, Any]]] = {
    "threads": ("POST", "/threads", {"metadata": {"pad": PAD}}),
    "thread update": ("PATCH", "/threads/{t}", {"metadata": {"pad": PAD}}),
    "assistants": ("POST", "/assistants", {"graph_id": "trivial", "metadata": {"pad": PAD}}),
    "runs on a thread": (
        "POST",
        "/threads/{t}/runs/wait",
        {"assistant_id": "trivial", "input": {"x": 1}, "metadata": {"pad": PAD}},
    ),
    "stateless runs": (
        "POST",
        "/runs/wait",
        {
            "assistant_id": "trivial",
            "input": {"x": 1},
            "on_completion": "keep",  # its thread stays: something to count
            "metadata": {"pad": PAD},
        },
    ),
    "crons": (
        "POST",
        "/runs/crons",
        {"assistant_id": "trivial", "schedule": YEARLY, "metadata": {"pad": PAD}},
    ),
    "store": ("PUT", "/store/items", {"namespace": ["caps"], "key": "k", "value": {"pad": PAD}}),
    "openai": (
        "POST",
        "/v1/chat/completions",
        {"model": "chat", "messages": [{"role": "user", "content": PAD}]},
    ),
    "chat": (
        "POST",
        "/chat",
        {"user_id": "u", "session_id": "s", "assistant_id": "chat", "message": PAD},
    ),
}
# Their schemas hold no free-form JSON: a deep body can only be refused.
FIXED_SHAPE = {"openai", "chat"}


def headers(family: str) -> dict[str, str]:
    if family == "openai":  # a conversation on a thread of its own: something to count
        return {**JSON, "X-Thread-Id": uuid.uuid4().hex}
    return JSON


def _with_unique_keys(template: dict[str, Any]) -> dict[str, Any]:
    # A fresh store key / chat session per request, so each accepted one adds something.
    out = json.loads(json.dumps(template))
    if "key" in out:
        out["key"] = uuid.uuid4().hex
    if "session_id" in out:
        out["session_id"] = uuid.uuid4().hex
    return out


@pytest.mark.parametrize("family", list(STORING))
async def test_body_at_the_cap_is_served_one_byte_more_is_refused_unstored(
    h: httpx.AsyncClient, thread_id: str, family: str
) -> None:
    method, path, template = STORING[family]
    url = path.format(t=thread_id)
    before = await stored(h, thread_id)
    for size in (LIMIT - 1, LIMIT):
        body = exact(_with_unique_keys(template), size)
        r = await h.request(method, url, content=body, headers=headers(family))
        assert r.status_code in (200, 204), (family, size, r.text[:300])
    served = await stored(h, thread_id)
    assert served != before, "the accepted bodies stored nothing: the test cannot tell"
    for size in (LIMIT + 1, 50 * LIMIT):
        body = exact(_with_unique_keys(template), size)
        r = await h.request(method, url, content=body, headers=headers(family))
        assert_refused(r, 413, "payload_too_large")
    assert await stored(h, thread_id) == served


@pytest.mark.parametrize("family", list(STORING))
async def test_json_at_the_depth_cap_is_served_one_level_more_is_refused_unstored(
    h: httpx.AsyncClient, thread_id: str, family: str
) -> None:
    method, path, template = STORING[family]
    url = path.format(t=thread_id)
    if family not in FIXED_SHAPE:
        r = await h.request(
            method, url, content=deep(_with_unique_keys(template), DEPTH), headers=JSON
        )
        assert r.status_code in (200, 204), (family, r.text[:300])
    before = await stored(h, thread_id)
    for levels in (DEPTH + 1, 1000):
        body = deep(_with_unique_keys(template), levels)
        r = await h.request(method, url, content=body, headers=headers(family))
        assert_refused(r, 422, "json_too_deep")
    assert await stored(h, thread_id) == before


async def test_every_route_with_a_body_is_capped(h: httpx.AsyncClient, thread_id: str) -> None:
    """The routes come from the OpenAPI document, so a new one cannot be missed."""
    doc = (await h.get("/openapi.json")).json()
    routes = [
        (method.upper(), path, op["tags"][0])
        for path, ops in doc["paths"].items()
        for method, op in ops.items()
        if "requestBody" in op
    ]
    assert {tag for _, _, tag in routes} >= FAMILIES
    assistant = (await h.post("/assistants", json={"graph_id": "trivial"})).json()["assistant_id"]
    ids = {
        "thread_id": thread_id,
        "assistant_id": assistant,
        "cron_id": str(uuid.uuid4()),
        "name": "greeting",  # a prompt
        "label": "production",
    }
    oversize = exact({"pad": PAD}, LIMIT + 1)
    too_deep = b"[" * (DEPTH + 1) + b"]" * (DEPTH + 1)
    wrong = []
    for method, path, _ in routes:
        url = path.format(**ids)
        for body, status, code in (
            (oversize, 413, "payload_too_large"),
            (too_deep, 422, "json_too_deep"),
        ):
            r = await h.request(method, url, content=body, headers=JSON)
            try:
                assert_refused(r, status, code)
            except (AssertionError, KeyError):
                wrong.append((method, path, status, r.status_code, r.text[:120]))
    assert not wrong, wrong


async def test_studio_text_plain_json_is_depth_checked(h: httpx.AsyncClient) -> None:
    body = deep({"metadata": {"pad": PAD}}, DEPTH + 1)
    r = await h.post("/threads", content=body, headers={"Content-Type": "text/plain"})
    assert_refused(r, 422, "json_too_deep")


async def test_bodies_that_are_not_json_are_not_depth_checked(h: httpx.AsyncClient) -> None:
    body = b"[" * (DEPTH + 1) + b"]" * (DEPTH + 1)
    r = await h.post("/threads", content=body, headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 422, r.text  # the route's own answer: not a JSON object
    assert r.json()["code"] != "json_too_deep"


# -- bodies that stream in ------------------------------------------------------------------


async def raw_request(server: LiveServer, head: str, parts: list[bytes]) -> tuple[int, Any]:
    """Send ``head`` and ``parts`` and read the answer without finishing the body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(head.encode())
        for part in parts:
            writer.write(part)
        await writer.drain()
        async with asyncio.timeout(20):
            status_line = await reader.readline()
            headers = {}
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers["content-length"]))
        return int(status_line.split()[1]), json.loads(body)
    finally:
        writer.close()


def _head(server: LiveServer, extra: str) -> str:
    return (
        f"POST /threads HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
        f"Content-Type: application/json\r\n{extra}\r\n"
    )


async def test_chunked_body_is_refused_while_it_streams_in(small: LiveServer) -> None:
    # The body never ends: the answer can only come from counting the chunks.
    chunk = b"x" * 4096
    parts = [b'{"metadata":{"pad":"'] + [chunk] * (LIMIT // len(chunk) + 1)
    framed = [b"%x\r\n%s\r\n" % (len(p), p) for p in parts]
    status, body = await raw_request(small, _head(small, "Transfer-Encoding: chunked\r\n"), framed)
    assert (status, body["code"]) == (413, "payload_too_large"), body
    assert "received and counting" in body["detail"]


async def test_declared_length_over_the_cap_is_refused_before_the_body(
    small: LiveServer,
) -> None:
    # A gigabyte announced, a few bytes sent: answered at once, from the header alone.
    status, body = await raw_request(
        small, _head(small, "Content-Length: 1000000000\r\n"), [b'{"metadata":']
    )
    assert (status, body["code"]) == (413, "payload_too_large"), body
    assert "Content-Length: 1000000000" in body["detail"]


async def test_chunked_upload_through_httpx(h: httpx.AsyncClient) -> None:
    async def chunks(total: int) -> AsyncIterator[bytes]:
        body = exact({"metadata": {"pad": PAD}}, total)
        for i in range(0, total, 1000):
            yield body[i : i + 1000]

    before = (await h.post("/threads/count", json={})).json()
    r = await h.post("/threads", content=chunks(LIMIT), headers=JSON)
    assert r.status_code == 200, r.text
    assert r.json()["metadata"]["pad"] == "x" * (LIMIT - len('{"metadata":{"pad":""}}'))
    r = await h.post("/threads", content=chunks(LIMIT + 1), headers=JSON)
    assert_refused(r, 413, "payload_too_large")
    r = await h.post("/threads", content=chunks(20 * LIMIT), headers=JSON)
    assert_refused(r, 413, "payload_too_large")
    assert (await h.post("/threads/count", json={})).json() == before + 1
    # The connection still serves after a refused upload.
    assert (await h.get("/ok")).status_code == 200


# -- the default caps, through the SDKs, on every deployment ---------------------------------


async def test_fifty_megabytes_of_metadata_are_refused(
    client: LangGraphClient, http: httpx.AsyncClient
) -> None:
    before = await client.threads.count()
    with pytest.raises(APIStatusError) as err:
        await client.threads.create(metadata={"blob": "x" * 50_000_000})
    assert err.value.status_code == 413
    assert err.value.code == "payload_too_large"
    assert await client.threads.count() == before
    # Just under the default cap is served.
    body = exact({"metadata": {"blob": PAD}}, DEFAULT_LIMIT)
    r = await http.post("/threads", content=body, headers=JSON)
    assert r.status_code == 200, r.text[:300]
    assert await client.threads.count() == before + 1


async def test_hundred_thousand_levels_deep_is_a_422_on_every_family(
    http: httpx.AsyncClient, client: LangGraphClient
) -> None:
    body = b"[" * 100_000 + b"]" * 100_000
    thread = await client.threads.create()
    targets = [
        ("POST", "/assistants"),
        ("POST", "/threads"),
        ("POST", f"/threads/{thread['thread_id']}/runs"),
        ("POST", "/runs/stream"),
        ("PUT", "/store/items"),
        ("POST", "/runs/crons"),
        ("POST", "/v1/chat/completions"),
        ("POST", "/chat"),
    ]
    for method, path in targets:
        r = await http.request(method, path, content=body, headers=JSON)
        assert_refused(r, 422, "json_too_deep")
        assert str(DEFAULT_DEPTH) in r.text


async def test_openai_sdk_sees_its_own_error_shape(server_url: str) -> None:
    oai = openai.AsyncOpenAI(base_url=f"{server_url}/v1", api_key="unused", max_retries=0)
    try:
        with pytest.raises(openai.APIStatusError) as err:
            await oai.chat.completions.create(
                model="chat", messages=[{"role": "user", "content": "x" * (DEFAULT_LIMIT + 1)}]
            )
    finally:
        await oai.close()
    assert err.value.status_code == 413
    assert err.value.code == "payload_too_large"
    assert err.value.type == "invalid_request_error"


async def test_unparsable_body_on_the_openai_route_answers_in_its_shape(
    h: httpx.AsyncClient,
) -> None:
    # Not UTF-8: FastAPI's own 400, which the /v1 routes used to turn into a 500.
    r = await h.post("/v1/chat/completions", content=b'{"model": "\xff"}', headers=JSON)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "invalid_request"


async def test_deep_json_inside_a_string_is_not_a_500(http: httpx.AsyncClient) -> None:
    # Tool-call arguments are JSON in a string, parsed by the route: 100 000 levels
    # there used to be a RecursionError and a 500.
    args = "[" * 100_000 + "]" * 100_000
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": args}}
    messages = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": "ok"},
    ]
    r = await http.post("/v1/chat/completions", json={"model": "chat", "messages": messages})
    assert r.status_code == 422, r.text[:300]
    assert r.json()["error"]["param"] == "messages.1.tool_calls.0.function.arguments"
    # A reply to an interrupt is taken as JSON when it parses: too deep, it stays text.
    assert resume_value(args) == args
