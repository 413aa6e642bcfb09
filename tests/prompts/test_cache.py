"""The per-process prompt cache over real SQLite storage: refresh on change, the last
good copy while the database is away, and ``dockyard.prompt()`` outside a process."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from dockyard import prompt
from dockyard.errors import ConfigError, InvalidRequestError, NotFoundError
from dockyard.prompt_source import use_source
from dockyard.prompts import Draft, FileSource, PromptCache, PromptRegistry
from dockyard.settings import load_settings
from dockyard.storage.database import Storage, open_storage
from tests.conftest import eventually

PROJECT = Path(__file__).parent / "project"


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[Storage]:
    config = tmp_path / "dockyard.yaml"
    config.write_text("graphs: {}\n")
    async with open_storage(load_settings(config, data_dir=tmp_path / "data")) as s:
        yield s


class Flaky:
    """The real store, which can be made to fail like a database that went away."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.down = False
        self.failures = 0

    def __getattr__(self, name: str) -> Any:
        if self.down:
            self.failures += 1
            raise ConnectionRefusedError("database is down")
        return getattr(self.store, name)


def text(name: str, template: str, *labels: str) -> Draft:
    return Draft(name=name, kind="text", template=template, sample={}, labels=labels)


async def test_refresh_follows_writes_from_another_handle(storage: Storage) -> None:
    cache = PromptCache(storage.prompts, refresh_seconds=0.05)
    await cache.start()
    try:
        writer = PromptRegistry(storage.prompts)  # no cache: as another process writes
        await writer.push(text("hello", "v1", "production"), author="t")
        found = await eventually(lambda: cache._by_label.get(("hello", "production")))
        assert found.version == 1
        await writer.push(text("hello", "v2", "production"), author="t")
        await eventually(lambda: cache.lookup("hello", "production", None).version == 2)
        assert cache.lookup("hello", None, None).version == 2  # latest
        assert cache.lookup("hello", None, 1).template == "v1"
        await writer.rollback("hello", "production", author="t")
        await eventually(lambda: cache.lookup("hello", "production", None).version == 1)
        with pytest.raises(NotFoundError, match="no label 'staging'"):
            cache.lookup("hello", "staging", None)
        with pytest.raises(NotFoundError, match="no prompt named 'nope'"):
            cache.lookup("nope", None, None)
    finally:
        await cache.stop()


async def test_last_good_copy_while_the_database_is_down(
    storage: Storage, caplog: pytest.LogCaptureFixture
) -> None:
    registry = PromptRegistry(storage.prompts)
    await registry.push(text("hello", "v1", "production"), author="t")
    flaky = Flaky(storage.prompts)
    cache = PromptCache(flaky, refresh_seconds=0.02)  # type: ignore[arg-type]
    await cache.start()
    try:
        flaky.down = True
        with caplog.at_level(logging.WARNING, logger="dockyard.prompts"):
            await eventually(lambda: "refresh failed" in caplog.text)
            # several failed polls, one warning
            before = cache.revision
            await eventually(lambda: flaky.failures >= 3)
            assert cache.lookup("hello", "production", None).template == "v1"
        warnings = [r for r in caplog.records if "refresh failed" in r.message]
        assert len(warnings) == 1 and cache.revision == before
        flaky.down = False
        await registry.push(text("hello", "v2", "production"), author="t")
        await eventually(lambda: cache.lookup("hello", "production", None).template == "v2")
    finally:
        await cache.stop()


async def test_a_registry_write_reloads_its_own_cache_at_once(storage: Storage) -> None:
    cache = PromptCache(storage.prompts, refresh_seconds=3600)
    await cache.start()
    try:
        registry = PromptRegistry(storage.prompts, cache)
        await registry.push(text("hello", "v1", "production"), author="t")
        assert cache.lookup("hello", "production", None).template == "v1"
        await registry.push(text("hello", "v2"), author="t")
        assert cache.lookup("hello", None, None).template == "v2"
    finally:
        await cache.stop()


def test_prompt_outside_a_process_needs_a_source() -> None:
    previous = use_source(None)
    try:
        with pytest.raises(ConfigError, match="needs a prompt source"):
            prompt("ticket-summary")
        use_source(FileSource(PROJECT / "prompts"))
        p = prompt("ticket-summary", label="production")
        assert (p.name, p.version, p.label) == ("ticket-summary", 1, "production")
        assert p.render(ticket="x") == "Summarize this ticket: x"
        with pytest.raises(InvalidRequestError, match="'ticket' is missing"):
            p.render()
        assert p.langchain().format(ticket="y") == "Summarize this ticket: y"
        with pytest.raises(NotFoundError):
            prompt("ticket-summary", label="staging")
    finally:
        use_source(previous)
