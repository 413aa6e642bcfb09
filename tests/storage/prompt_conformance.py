"""The prompt registry part of the conformance suite (``StorageConformance`` inherits it)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from dockyard.prompt_template import Message
from dockyard.storage.prompts import PromptStore


class PromptBackend(Protocol):
    prompts: PromptStore


T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


async def new_version(
    b: PromptBackend, name: str = "greet", text: str = "Hi {{ who }}", **kw: Any
) -> Any:
    version, created = await b.prompts.create_version(
        name,
        kind="text",
        template=text,
        messages=(),
        variables=("who",),
        sample=kw.pop("sample", {"who": "Ann"}),
        config=kw.pop("config", {}),
        message=kw.pop("message", "m"),
        author=kw.pop("author", "ci"),
        now=kw.pop("now", T0),
        **kw,
    )
    return version, created


class PromptConformance:
    async def test_prompt_versions_count_up_per_name(self, b: PromptBackend) -> None:
        assert await b.prompts.revision() == 0
        v1, created = await new_version(b, config={"temperature": 0.2})
        assert created and v1.version == 1 and v1.author == "ci"
        v2, _ = await new_version(b, text="Hello {{ who }}")
        other, _ = await new_version(b, "other")
        assert (v2.version, other.version) == (2, 1)
        assert await b.prompts.get("greet") == v2
        assert await b.prompts.get("greet", 1) == v1
        assert (await b.prompts.get("greet", 1)).config == {"temperature": 0.2}  # type: ignore[union-attr]
        assert await b.prompts.get("greet", 9) is None
        assert await b.prompts.get("nope") is None
        assert [v.version for v in await b.prompts.versions("greet")] == [1, 2]
        assert await b.prompts.names() == ["greet", "other"]
        assert await b.prompts.revision() == 3

    async def test_chat_messages_round_trip(self, b: PromptBackend) -> None:
        msgs = (Message("system", "Be {{ tone }}"), Message("user", "{{ q }}"))
        v, _ = await b.prompts.create_version(
            "chat",
            kind="chat",
            template=None,
            messages=msgs,
            variables=("tone", "q"),
            sample=None,
            config={},
            message="",
            author="ci",
            now=T0,
        )
        assert await b.prompts.get("chat") == v
        assert v.messages == msgs and v.sample is None

    async def test_if_changed_keeps_the_latest(self, b: PromptBackend) -> None:
        v1, _ = await new_version(b)
        same, created = await new_version(b, if_changed=True, message="again")
        assert not created and same == v1
        revision = await b.prompts.revision()
        v2, created = await new_version(b, sample={"who": "Bo"}, if_changed=True)
        assert created and v2.version == 2
        assert await b.prompts.revision() > revision

    async def test_concurrent_creates_get_distinct_numbers(self, b: PromptBackend) -> None:
        made = await asyncio.gather(*(new_version(b, text=f"v{i} {{{{ who }}}}") for i in range(5)))
        assert sorted(v.version for v, _ in made) == [1, 2, 3, 4, 5]

    async def test_label_moves_are_kept(self, b: PromptBackend) -> None:
        await new_version(b)
        await new_version(b, text="Hey {{ who }}")
        first = await b.prompts.move_label("greet", "production", 1, kind="set", author="a", now=T0)
        assert first is not None and first.from_version is None
        later = T0 + timedelta(minutes=1)
        move = await b.prompts.move_label(
            "greet", "production", 2, kind="set", author="b", now=later
        )
        assert move is not None and (move.from_version, move.to_version) == (1, 2)
        assert await b.prompts.labels("greet") == {"production": 2}
        # expect: only while the label is still where the caller saw it
        assert (
            await b.prompts.move_label(
                "greet", "production", 1, kind="rollback", author="c", now=later, expect=1
            )
            is None
        )
        assert (
            await b.prompts.move_label(
                "greet", "staging", 1, kind="set", author="c", now=later, expect=None
            )
            is not None
        )
        assert (
            await b.prompts.move_label(
                "greet", "staging", 2, kind="set", author="c", now=later, expect=None
            )
            is None
        )
        history = await b.prompts.history("greet", "production")
        assert [(m.from_version, m.to_version, m.author) for m in history] == [
            (None, 1, "a"),
            (1, 2, "b"),
        ]
        assert history[1].at == later
        assert len(await b.prompts.history("greet")) == 3

    async def test_snapshot_has_every_version_and_label(self, b: PromptBackend) -> None:
        await new_version(b)
        await new_version(b, text="Yo {{ who }}")
        await b.prompts.move_label("greet", "production", 1, kind="set", author="a", now=T0)
        snap = await b.prompts.snapshot()
        assert snap.revision == await b.prompts.revision()
        assert [(v.name, v.version) for v in snap.versions] == [("greet", 1), ("greet", 2)]
        assert dict(snap.labels) == {("greet", "production"): 1}

    async def test_retention_keeps_labelled_and_latest(self, b: PromptBackend) -> None:
        for i in range(4):
            await new_version(b, text=f"{i} {{{{ who }}}}", now=T0 + timedelta(days=i))
        await b.prompts.move_label("greet", "production", 2, kind="set", author="a", now=T0)
        revision = await b.prompts.revision()
        assert await b.prompts.delete_unlabeled(T0 + timedelta(days=30)) == 2
        assert [v.version for v in await b.prompts.versions("greet")] == [2, 4]
        assert await b.prompts.revision() > revision
        assert await b.prompts.delete_unlabeled(T0 + timedelta(days=30)) == 0
        # versions newer than the cut stay, labelled or not
        await new_version(b, text="5 {{ who }}", now=T0 + timedelta(days=40))
        await new_version(b, text="6 {{ who }}", now=T0 + timedelta(days=41))
        assert await b.prompts.delete_unlabeled(T0 + timedelta(days=35)) == 1  # 4 went
        assert [v.version for v in await b.prompts.versions("greet")] == [2, 5, 6]
