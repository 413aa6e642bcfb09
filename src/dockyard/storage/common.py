"""What every storage backend shares: the ``Storage`` it opens, the migrations it runs
and the ``index`` argument of its LangGraph store.

The backend packages (``storage.sqlite``, ``storage.postgres``) import this module and
``storage.database`` picks one of them, so nothing here imports a backend.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.store.base import BaseStore
from sqlalchemy.ext.asyncio import AsyncEngine

from dockyard.settings import Settings
from dockyard.storage.base import (
    AssistantStore,
    CronStore,
    EvalStore,
    KeyStore,
    RunStore,
    ThreadStore,
    UsageStore,
)
from dockyard.storage.checkpoints import CheckpointAdmin
from dockyard.storage.inline import InlineEngine
from dockyard.storage.prompts import PromptStore
from dockyard.storage.rollouts import RolloutStore

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


@dataclass
class Storage:
    engine: AsyncEngine | InlineEngine
    assistants: AssistantStore
    threads: ThreadStore
    runs: RunStore
    crons: CronStore
    checkpointer: BaseCheckpointSaver[Any]
    checkpoint_admin: CheckpointAdmin
    store: BaseStore
    backend: str
    usage: UsageStore
    keys: KeyStore
    prompts: PromptStore
    evals: EvalStore
    rollouts: RolloutStore

    async def ping(self, timeout: float = 3.0) -> dict[str, str]:  # noqa: ASYNC109
        """Problems per component; empty when everything answers within ``timeout``."""
        problems: dict[str, str] = {}

        async def select_one() -> None:
            async with self.engine.connect() as conn:
                await conn.execute(sa.text("SELECT 1"))

        for name, check in (
            ("database", select_one),
            ("checkpoints", self.checkpoint_admin.ping),
        ):
            try:
                async with asyncio.timeout(timeout):
                    await check()
            except TimeoutError:
                problems[name] = f"no answer within {timeout:g}s"
            except Exception as e:  # any driver error means "not ready"
                problems[name] = f"{type(e).__name__}: {e}"
        return problems


def _upgrade(sync_conn: sa.Connection) -> None:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = sync_conn
    command.upgrade(cfg, "head")


async def migrate(engine: AsyncEngine | InlineEngine) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade)


def index_config(settings: Settings) -> dict[str, Any] | None:
    """LangGraph's ``index`` argument for ``store.index`` (SQLite and PostgreSQL alike)."""
    index = settings.store.index
    if index is None:
        return None
    from dockyard.providers import load_embeddings

    config: dict[str, Any] = {
        "dims": index.dims,
        "embed": load_embeddings(index.embed, base_url=index.base_url),
    }
    if index.fields is not None:
        config["fields"] = index.fields
        # LangGraph's SQLite store reads the undocumented "text_fields" and embeds
        # the whole item without it (langchain-ai/langgraph#8808).
        config["text_fields"] = index.fields
    return config
