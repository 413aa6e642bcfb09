"""docs/prompts.md's examples load as written, and the retention sweep of a process."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dockyard.prompts import PromptRegistry, read_draft
from dockyard.runtime.prompt_uses import PromptRetention
from dockyard.settings import load_settings
from dockyard.storage.database import Storage, open_storage
from tests.conftest import eventually

DOCS = Path(__file__).parents[2] / "docs" / "prompts.md"


def test_the_documented_examples_load(tmp_path: Path) -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.S)
    assert len(blocks) == 2
    file = tmp_path / "ticket-summary.yaml"
    file.write_text(blocks[0])
    draft = read_draft(file)
    assert (draft.name, draft.kind, draft.labels) == ("ticket-summary", "chat", ("production",))
    config = tmp_path / "dockyard.yaml"
    config.write_text("graphs: {}\n" + blocks[1])
    prompts = load_settings(config).prompts
    assert (prompts.dir, prompts.refresh_seconds, prompts.retention_days) == (
        Path("prompts"),
        1.0,
        None,
    )


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[Storage]:
    config = tmp_path / "dockyard.yaml"
    config.write_text("graphs: {}\n")
    async with open_storage(load_settings(config, data_dir=tmp_path / "data")) as s:
        yield s


async def test_retention_removes_old_unlabeled_versions(storage: Storage) -> None:
    old = datetime.now(UTC) - timedelta(days=40)
    for i in range(4):
        await storage.prompts.create_version(
            "p",
            kind="text",
            template=f"v{i}",
            messages=(),
            variables=(),
            sample=None,
            config={},
            message="",
            author="t",
            now=old,
        )
    await PromptRegistry(storage.prompts).set_label("p", "production", 2, author="t")
    # nothing old enough for 60 days: nothing goes
    assert await PromptRetention(storage.prompts, days=60, interval=3600).sweep_once() == 0
    sweeper = PromptRetention(storage.prompts, days=30, interval=3600)
    await sweeper.start()  # sweeps at once, then every interval

    async def labelled_and_latest_kept() -> bool:
        return [v.version for v in await storage.prompts.versions("p")] == [2, 4]

    try:
        await eventually(labelled_and_latest_kept)
    finally:
        await sweeper.stop()
    assert await sweeper.sweep_once() == 0
