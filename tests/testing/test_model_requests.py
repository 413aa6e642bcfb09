"""No real model requests in tests (dockyard.testing.model_requests): a provider URL off this
machine fails at once, naming the URL; mock providers on 127.0.0.1 still answer."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import anthropic
import httpx
import openai
import pytest
from langchain_anthropic import ChatAnthropic
from langchain_openai import ChatOpenAI
from langgraph_sdk import get_client
from tests.conftest import LiveServer, guarded

from dockyard.testing import (
    MockAnthropicServer,
    MockOpenAIServer,
    ModelRequestBlocked,
    block_model_requests,
    model_requests,
)
from dockyard.testing.model_requests import ModelRequestGuard, is_loopback

MESSAGES = "https://api.anthropic.com/v1/messages"
# A failing test must not wait for a network timeout either.
TIMEOUT = 10.0


def ask_anthropic(client: anthropic.Anthropic) -> anthropic.types.Message:
    return client.messages.create(
        model="claude-sonnet-4-5", max_tokens=5, messages=[{"role": "user", "content": "hi"}]
    )


def test_the_anthropic_sdk_fails_at_once_naming_the_url() -> None:
    # Default retries: an SDK that caught the refusal would retry and say "Connection error".
    client = anthropic.Anthropic(api_key="sk-test", timeout=TIMEOUT)
    started = time.monotonic()
    with block_model_requests() as guard, pytest.raises(ModelRequestBlocked) as refused:
        ask_anthropic(client)
    assert time.monotonic() - started < 2  # no retry, no backoff, no connect timeout
    assert refused.value.url == MESSAGES
    assert f"real model request to {MESSAGES} refused" in str(refused.value)
    assert guard.blocked == [MESSAGES]


async def test_langchain_models_without_base_url_fail_at_once() -> None:
    with block_model_requests():
        with pytest.raises(ModelRequestBlocked, match=re.escape(MESSAGES)):
            await ChatAnthropic(model="claude-sonnet-4-5", api_key="k", timeout=TIMEOUT).ainvoke(
                "hi"
            )
        completions = "https://api.openai.com/v1/chat/completions"
        with pytest.raises(ModelRequestBlocked, match=re.escape(completions)):
            await ChatOpenAI(model="gpt-4o-mini", api_key="k", timeout=TIMEOUT).ainvoke("hi")


async def test_the_url_is_shown_without_its_query_or_user_info() -> None:
    with block_model_requests() as guard, pytest.raises(ModelRequestBlocked) as refused:
        async with httpx.AsyncClient(timeout=TIMEOUT) as h:
            await h.get("https://user:pw@generativelanguage.googleapis.com:8443/v1/m?key=secret")
    assert refused.value.url == "https://generativelanguage.googleapis.com:8443/v1/m"
    assert "secret" not in str(refused.value) and "pw" not in str(refused.value)
    assert guard.blocked == [refused.value.url]


async def test_mock_providers_on_loopback_still_answer() -> None:
    with block_model_requests() as guard:
        with MockAnthropicServer() as srv:
            srv.enqueue_text("from the mock")
            client = anthropic.Anthropic(api_key="k", base_url=srv.base_url)
            assert ask_anthropic(client).content[0].text == "from the mock"
            model = ChatAnthropic(model="m", api_key="k", base_url=srv.base_url)
            assert (await model.ainvoke("echo me")).content == "echo me"
        async with MockOpenAIServer() as srv:
            model_openai = ChatOpenAI(model="m", api_key="k", base_url=srv.base_url)
            assert (await model_openai.ainvoke("echo me too")).content == "echo me too"
            localhost = srv.base_url.replace("127.0.0.1", "localhost")
            async with openai.AsyncOpenAI(api_key="k", base_url=localhost) as sdk:
                assert [m.id async for m in sdk.models.list()]
    assert guard.blocked == []


async def test_other_threads_are_refused_too() -> None:
    client = anthropic.Anthropic(api_key="k", timeout=TIMEOUT)
    with block_model_requests() as guard, pytest.raises(ModelRequestBlocked):
        await asyncio.to_thread(ask_anthropic, client)
    assert guard.blocked == [MESSAGES]


async def test_a_served_graph_calling_a_real_model_ends_its_run_with_the_url(
    tmp_path: Path,
) -> None:
    """A server the test runs in a thread: the run fails at once, its error names the URL."""
    (tmp_path / "agent.py").write_text(
        textwrap.dedent(
            f"""
            from langchain_anthropic import ChatAnthropic
            from langgraph.graph import START, MessagesState, StateGraph

            model = ChatAnthropic(model="claude-sonnet-4-5", api_key="k", timeout={TIMEOUT})

            async def call(state):
                return {{"messages": [await model.ainvoke(state["messages"])]}}

            graph = StateGraph(MessagesState).add_node("call", call).add_edge(START, "call")
            """
        )
    )
    (tmp_path / "dockyard.yaml").write_text("graphs:\n  agent: ./agent.py:graph\n")
    server = LiveServer(tmp_path / "data", config=tmp_path / "dockyard.yaml").start()
    try:
        client = get_client(url=server.url, timeout=30)
        thread = await client.threads.create()
        with block_model_requests() as guard:
            parts = [
                part
                async for part in client.runs.stream(
                    thread["thread_id"], "agent", input={"messages": [("user", "hi")]}
                )
            ]
        assert parts[-1].event == "error"
        assert parts[-1].data["error"] == "ModelRequestBlocked"
        assert f"real model request to {MESSAGES} refused" in parts[-1].data["message"]
        assert guard.blocked == [MESSAGES]
        await client.aclose()
    finally:
        server.stop()


def test_hosts_can_be_allowed(mock_openai: MockOpenAIServer) -> None:
    # 0.0.0.0 is not a loopback address, though Linux connects it to this machine.
    url = mock_openai.base_url.replace("127.0.0.1", "0.0.0.0") + "/models"
    with block_model_requests() as guard, pytest.raises(ModelRequestBlocked):
        httpx.get(url, timeout=TIMEOUT)
    assert guard.blocked == [url]
    with block_model_requests(allow_hosts=["0.0.0.0"]) as guard:
        assert httpx.get(url, timeout=TIMEOUT).status_code == 200
    assert guard.blocked == []


def test_loopback_hosts() -> None:
    for host in ("localhost", "LOCALHOST.", "api.localhost", "127.0.0.1", "127.8.9.10", "::1"):
        assert is_loopback(host), host
    for host in ("api.anthropic.com", "0.0.0.0", "10.0.0.1", "localhost.example.com", "::"):
        assert not is_loopback(host), host


def test_httpx_is_left_as_it_was(no_model_requests: ModelRequestGuard) -> None:
    no_model_requests.stop()  # the suite's own guard, started again below
    try:
        original = httpx.HTTPTransport.handle_request, httpx.AsyncHTTPTransport.handle_async_request
        assert original[0].__module__ == "httpx._transports.default"
        with block_model_requests(), block_model_requests():
            assert httpx.HTTPTransport.handle_request.__module__ == model_requests.__name__
        assert (
            httpx.HTTPTransport.handle_request,
            httpx.AsyncHTTPTransport.handle_async_request,
        ) == original
    finally:
        no_model_requests.start()


def test_the_pytest_fixture_fails_a_test_whose_refusal_was_caught(tmp_path: Path) -> None:
    """As a user enables it: the plugin and an autouse fixture in their conftest."""
    (tmp_path / "conftest.py").write_text(
        textwrap.dedent(
            """
            import pytest

            pytest_plugins = ["dockyard.testing.pytest_plugin"]

            @pytest.fixture(autouse=True)
            def _offline(no_model_requests): ...
            """
        )
    )
    (tmp_path / "test_user.py").write_text(
        textwrap.dedent(
            """
            import threading

            import httpx
            import pytest

            from dockyard.testing import ModelRequestBlocked

            from dockyard.testing import block_model_requests

            def test_provoked_on_purpose():
                with block_model_requests(), pytest.raises(ModelRequestBlocked):
                    httpx.post("https://api.anthropic.com/v1/messages?key=secret", json={})

            def test_caught_by_the_code_under_test():
                def call():
                    try:
                        httpx.get("https://api.openai.com/v1/models?key=secret")
                    except Exception:
                        pass  # a fallback, a retry loop, a server's error handler

                t = threading.Thread(target=call)
                t.start()
                t.join()
            """
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "2 passed, 1 error" in out.stdout, out.stdout + out.stderr
    assert "ERROR at teardown of test_caught_by_the_code_under_test" in out.stdout, out.stdout
    assert "refused during the test" in out.stdout and "https://api.openai.com/v1/models" in (
        out.stdout
    )
    assert "secret" not in out.stdout


def test_processes_the_tests_start_refuse_too() -> None:
    """tests/subprocess_guard, on the PYTHONPATH of the servers the suite starts."""
    with MockAnthropicServer() as srv:
        script = textwrap.dedent(
            f"""
            import anthropic
            ask = dict(model="m", max_tokens=5, messages=[{{"role": "user", "content": "hi"}}])
            local = anthropic.Anthropic(api_key="k", base_url="{srv.base_url}")
            print(local.messages.create(**ask).content[0].text)
            anthropic.Anthropic(api_key="k", timeout={TIMEOUT}).messages.create(**ask)
            """
        )
        started = time.monotonic()
        out = subprocess.run(
            [sys.executable, "-c", script],
            env=guarded(dict(os.environ)),
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert out.stdout.strip() == "hi"  # the mock on 127.0.0.1 answered
    assert out.returncode != 0
    assert f"ModelRequestBlocked: real model request to {MESSAGES} refused" in out.stderr
    assert time.monotonic() - started < 60
