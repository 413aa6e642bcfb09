"""RunSpec: built once from a request, stored as the ``kwargs`` column always was, read back."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from dockyard.errors import UnsupportedFieldError
from dockyard.run_spec import RunCommand, RunSpec

STORED_KEYS = {
    "input",
    "command",
    "stream_mode",
    "stream_subgraphs",
    "config",
    "context",
    "checkpoint",
    "checkpoint_id",
    "interrupt_before",
    "interrupt_after",
    "on_completion",
    "on_disconnect",
    "durability",
    "after_seconds",
}


def test_a_request_becomes_a_typed_spec() -> None:
    spec = RunSpec.from_request(
        {
            "assistant_id": "agent",
            "command": {"resume": "yes"},
            "stream_mode": "updates",
            "interrupt_before": ["a", "b"],
            "interrupt_after": "*",
            "metadata": {"m": 1},
            "multitask_strategy": "rollback",
            "checkpoint_during": False,
            "stream_resumable": True,
            "strict_resume": True,
        }
    )
    assert spec.command == RunCommand(resume="yes")
    assert spec.stream_mode == ("updates",)
    assert spec.interrupt_before == ("a", "b") and spec.interrupt_after == "*"
    assert spec.multitask_strategy == "rollback" and spec.strict_resume is True
    assert spec.durability == "exit"  # checkpoint_during false: saved at exit only


def test_explicit_durability_wins_over_checkpoint_during() -> None:
    spec = RunSpec.from_request(
        {"assistant_id": "a", "checkpoint_during": True, "durability": "sync"}
    )
    assert spec.durability == "sync"


def test_it_is_frozen() -> None:
    spec = RunSpec(assistant_id="a")
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.input = 1  # type: ignore[misc]
    assert spec.replace(input=1).input == 1 and spec.input is None


@pytest.mark.parametrize("field", ["feedback_keys", "langsmith_tracer"])
def test_langsmith_fields_are_refused(field: str) -> None:
    with pytest.raises(UnsupportedFieldError) as e:
        RunSpec.from_request({"assistant_id": "a", field: ["k"]})
    assert e.value.param == field


def test_a_key_it_does_not_know_is_a_programming_error() -> None:
    with pytest.raises(TypeError, match="stream_mod"):
        RunSpec.from_request({"assistant_id": "a", "stream_mod": ["values"]})


def test_stored_has_the_columns_shape_and_reads_back() -> None:
    spec = RunSpec.from_request(
        {
            "assistant_id": "agent",
            "input": {"x": 1},
            "stream_mode": ["values", "updates"],
            "config": {"configurable": {"k": 1}},
            "checkpoint": {"checkpoint_id": "c1", "checkpoint_ns": "ns"},
            "interrupt_after": ["n"],
            "on_completion": "keep",
            "on_disconnect": "cancel",
            "after_seconds": 2.5,
            "metadata": {"m": 1},
            "multitask_strategy": "interrupt",
        }
    )
    stored = spec.stored()
    assert set(stored) == STORED_KEYS
    assert stored["stream_mode"] == ["values", "updates"]
    assert stored["interrupt_after"] == ["n"]
    back = RunSpec.from_stored(
        stored, assistant_id="agent", metadata={"m": 1}, multitask_strategy="interrupt"
    )
    assert back == spec
    assert back.start_checkpoint_id == "c1" and back.checkpoint_ns == "ns"


def test_rows_written_before_the_type_existed_still_load() -> None:
    """Older rows: keys missing, the command as a dict, a value no longer known."""
    old: dict[str, Any] = {
        "input": None,
        "command": {"resume": {"ok": True}, "goto": "n"},
        "config": None,
        "durability": "eventually",
    }
    spec = RunSpec.from_stored(old, assistant_id="a", metadata={}, multitask_strategy="odd")
    assert spec.stream_mode == ("values",)
    assert spec.command == RunCommand(resume={"ok": True}, goto="n")
    assert spec.durability is None and spec.multitask_strategy == "enqueue"
    assert spec.on_disconnect == "continue" and spec.interrupt_before is None


def test_checkpoint_id_wins_over_the_checkpoint_objects() -> None:
    spec = RunSpec(assistant_id="a", checkpoint={"checkpoint_id": "x"}, checkpoint_id="y")
    assert spec.start_checkpoint_id == "y"
    assert RunSpec(assistant_id="a").start_checkpoint_id is None


def test_a_stateless_runs_thread_is_deleted_unless_kept() -> None:
    assert RunSpec(assistant_id="a").deletes_thread
    assert RunSpec(assistant_id="a", on_completion="delete").deletes_thread
    assert not RunSpec(assistant_id="a", on_completion="keep").deletes_thread


def test_the_origin_of_a_run_is_stored_only_when_it_has_one() -> None:
    origin = {"request_id": "r-1", "traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01"}
    spec = RunSpec(assistant_id="a", origin=origin)
    stored = spec.stored()
    assert stored["origin"] == origin
    back = RunSpec.from_stored(stored, assistant_id="a", metadata={}, multitask_strategy="x")
    assert back.origin == origin
    assert "origin" not in RunSpec(assistant_id="a").stored()
