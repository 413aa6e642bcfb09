"""The assignment rule without a server: sticky by hash, named users and keys, pinned
runs left alone, thread stickiness, and what a candidate run carries."""

from __future__ import annotations

from typing import Any

from dockyard import caller
from dockyard.rollouts import RolloutBoard, assign, bucket, choose
from dockyard.run_spec import RunSpec
from dockyard.settings import RolloutConfig
from dockyard.storage.rollouts import RolloutRecord


def config(**kw: Any) -> RolloutConfig:
    return RolloutConfig.model_validate(
        {"assistant": "support", "candidate": {"prompt": "ticket-summary@4"}, **kw}
    )


def board(state: str = "active", **kw: Any) -> RolloutBoard:
    b = RolloutBoard(store=None)  # type: ignore[arg-type]
    definition = config(**kw).model_dump(mode="json")
    b.install([RolloutRecord("r", "support", definition, "config", state, None, None)])  # type: ignore[arg-type]
    return b


def test_raising_the_share_only_moves_users_to_the_candidate() -> None:
    users = [f"u{i}" for i in range(400)]
    at = {
        s: {u for u in users if choose("r", config(share=s), user=u) == "candidate"}
        for s in (0.1, 0.5)
    }
    assert at[0.1] < at[0.5]
    assert 20 <= len(at[0.1]) <= 60 and 160 <= len(at[0.5]) <= 240
    # Another rollout draws another sample.
    other = {u for u in users if bucket("other", u) < 0.5}
    assert other != at[0.5]
    assert choose("r", config(share=0.0, users=["vip"]), user="vip") == "candidate"
    assert choose("r", config(share=0.0), user="vip") == "stable"


def test_thread_stickiness_and_keys() -> None:
    sticky = config(share=0.5, sticky="thread")
    threads = [f"t{i}" for i in range(50)]
    got = {t: choose("r", sticky, user="same-user", thread_id=t) for t in threads}
    assert set(got.values()) == {"stable", "candidate"}  # per thread, not per user
    assert all(got[t] == choose("r", sticky, user="another", thread_id=t) for t in threads)
    keyed = config(share=0.0, keys=["canary"])
    assert choose("r", keyed, user="x", keys=("canary", "key-id")) == "candidate"


def test_a_candidate_run_carries_its_prompt_and_a_pinned_run_is_left_alone() -> None:
    b = board(share=1.0)
    spec = RunSpec(assistant_id="a", metadata={"user_id": "u1", "dockyard_rollout": "forged"})
    out = assign(b, spec, "support", "support-graph", None)
    assert out.metadata["dockyard_rollout"] == {"name": "r", "variant": "candidate"}
    assert out.metadata["user_id"] == "u1"
    assert out.config == {
        "configurable": {"dockyard_prompt": {"name": "ticket-summary", "version": 4}}
    }
    pinned = RunSpec(
        assistant_id="a",
        config={"configurable": {"dockyard_prompt": {"name": "ticket-summary", "version": 1}}},
    )
    assert assign(b, pinned, "support", "g", None) is pinned
    assert assign(b, spec, "billing", "other-graph", None) is spec  # not its assistant
    assert assign(board(state="aborted", share=1.0), spec, "support", "g", None) is spec


def test_the_api_key_is_the_user_when_nothing_else_names_one() -> None:
    b = board(share=0.5)
    keys = [f"key-{i}" for i in range(30)]
    seen = set()
    for key in keys:
        with caller.use(caller.Caller(key_id=key, tenant=None)):
            out = assign(b, RunSpec(assistant_id="a"), "support", "g", None)
        variant = out.metadata["dockyard_rollout"]["variant"]
        assert variant == ("candidate" if bucket("r", key) < 0.5 else "stable")
        seen.add(variant)
    assert seen == {"stable", "candidate"}


def test_a_promoted_model_rollout_sends_every_run_to_the_model() -> None:
    b = RolloutBoard(store=None)  # type: ignore[arg-type]
    definition = RolloutConfig.model_validate(
        {"assistant": "support", "candidate": {"model": "fast"}, "share": 0.1}
    ).model_dump(mode="json")
    b.install([RolloutRecord("m", "support", definition, "config", "promoted", None, None)])
    out = assign(b, RunSpec(assistant_id="a", metadata={"user_id": "u"}), "support", "g", None)
    assert out.config == {"configurable": {"dockyard_model": "fast"}}
    assert "dockyard_rollout" not in out.metadata


def test_a_rollout_that_cannot_be_read_is_ignored(caplog: Any) -> None:
    b = board(share=1.0)
    good = b.records[0]
    broken = RolloutRecord("old", "billing", {"assistant": "billing"}, "api", "active", None, None)
    b.install([good, broken])
    b.install([good, broken])
    assert [r.name for r in b.active()] == ["r"]
    assert b.for_assistant("billing", "g") is None and b.for_assistant("support", "g")
    assert caplog.text.count("rollout old cannot be read") == 1
