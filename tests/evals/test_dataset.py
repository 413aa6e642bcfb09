"""Datasets: the lines read, the errors that name the file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.evals import DatasetError, Item, load_dataset, write_dataset
from dockyard.evals.dataset import fingerprint


def test_items_read_and_written_back(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text(
        '{"id": "a", "input": "hi", "expected": "hello"}\n'
        "\n// a comment\n"
        '{"input": [{"role": "user", "content": "yo"}], "metadata": {"source": "doc"}}\n'
        '{"id": 7, "input": {"messages": [], "topic": "x"}}\n'
    )
    items = load_dataset(path)
    assert [i.id for i in items] == ["a", "4", "7"]
    assert items[0].graph_input() == {"messages": [{"role": "user", "content": "hi"}]}
    assert items[1].graph_input() == {"messages": [{"role": "user", "content": "yo"}]}
    assert items[1].source() == "doc" and items[0].source() == "hi"
    assert items[2].graph_input() == {"messages": [], "topic": "x"}
    copy = tmp_path / "copy.jsonl"
    assert write_dataset(items, copy) == 3
    assert load_dataset(copy) == items
    assert fingerprint(items) == fingerprint(load_dataset(copy))
    assert fingerprint(items) != fingerprint([Item("a", "hi")])


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ('{"input": "a"}\n{"input": "b"\n', r"d\.jsonl:2: not JSON"),
        ('["a"]\n', r"d\.jsonl:1: expected a JSON object"),
        ('{"input": "a", "answer": "b"}\n', r"d\.jsonl:1: unknown field\(s\) answer"),
        ('{"expected": "b"}\n', r"d\.jsonl:1: no input"),
        ('{"input": 3}\n', "input must be"),
        ('{"id": "x", "input": "a"}\n{"id": "x", "input": "b"}\n', "id 'x' already used on line 1"),
        ("\n\n", "no items"),
    ],
)
def test_bad_lines_are_named(tmp_path: Path, lines: str, message: str) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text(lines)
    with pytest.raises(DatasetError, match=message) as info:
        load_dataset(path)
    assert info.value.code == "bad_dataset"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="No such file"):
        load_dataset(tmp_path / "none.jsonl")
