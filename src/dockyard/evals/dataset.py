"""Eval datasets: JSON Lines, one item a line::

    {"id": "t1", "input": "Where is order A1?", "expected": "shipped", "metadata": {"lang": "en"}}

``input`` is what the assistant is run with: a string (sent as one user message), a list
of messages, or a dict (the graph's input as is). ``expected`` is what the scorers
compare with (any JSON; optional). ``metadata`` is free (a scorer may read it: the JSON
schema scorer reads ``metadata.schema``, every scorer ``metadata.source``). ``id``
defaults to the line number. Blank lines and lines starting with ``//`` are skipped.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dockyard.errors import InvalidRequestError
from dockyard.quality import text_of

_FIELDS = {"id", "input", "expected", "metadata"}


class DatasetError(InvalidRequestError):
    default_code = "bad_dataset"


@dataclass(frozen=True)
class Item:
    id: str
    input: Any
    expected: Any = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def graph_input(self) -> Any:
        """What the run is created with."""
        if isinstance(self.input, str):
            return {"messages": [{"role": "user", "content": self.input}]}
        if isinstance(self.input, list):
            return {"messages": self.input}
        return self.input

    def source(self) -> str:
        """The text scorers compare the answer with (``metadata.source`` or the input's)."""
        given = self.metadata.get("source")
        return given if isinstance(given, str) else text_of(self.input)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "input": self.input}
        if self.expected is not None:
            out["expected"] = self.expected
        if self.metadata:
            out["metadata"] = dict(self.metadata)
        return out


def parse_line(text: str, where: str, default_id: str) -> Item:
    try:
        row = json.loads(text)
    except json.JSONDecodeError as e:
        raise DatasetError(f"{where}: not JSON ({e.msg} at column {e.colno})") from None
    if not isinstance(row, dict):
        raise DatasetError(f"{where}: expected a JSON object, got {type(row).__name__}")
    unknown = sorted(set(row) - _FIELDS)
    if unknown:
        raise DatasetError(
            f"{where}: unknown field(s) {', '.join(unknown)}; an item has id, input, "
            "expected, metadata (put anything else under metadata)"
        )
    if "input" not in row or row["input"] in (None, "", [], {}):
        raise DatasetError(f"{where}: no input")
    if not isinstance(row["input"], str | list | dict):
        raise DatasetError(f"{where}: input must be a string, a list of messages or an object")
    metadata = row.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise DatasetError(f"{where}: metadata must be an object")
    item_id = row.get("id", default_id)
    if not isinstance(item_id, str | int) or item_id == "":
        raise DatasetError(f"{where}: id must be a non-empty string or a number")
    return Item(str(item_id), row["input"], row.get("expected"), metadata)


def load_dataset(path: Path) -> list[Item]:
    """The items of a JSONL file; ``DatasetError`` naming the file and line otherwise."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise DatasetError(f"{path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise DatasetError(f"{path}: not UTF-8 text") from None
    items: list[Item] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("//"):
            continue
        where = f"{path}:{number}"
        item = parse_line(line, where, str(number))
        if item.id in seen:
            raise DatasetError(f"{where}: id {item.id!r} already used on line {seen[item.id]}")
        seen[item.id] = number
        items.append(item)
    if not items:
        raise DatasetError(f"{path}: no items")
    return items


def write_dataset(items: Iterable[Item], path: Path) -> int:
    """Write ``items`` as JSONL; the number written."""
    count = 0
    with path.open("w", encoding="utf-8") as f:
        for item in items:
            f.write(json.dumps(item.as_dict(), ensure_ascii=False) + "\n")
            count += 1
    return count


def fingerprint(items: Iterable[Item]) -> str:
    """A short hash of the items: two experiments on the same dataset share it."""
    digest = hashlib.sha256()
    for item in items:
        digest.update(json.dumps(item.as_dict(), sort_keys=True, ensure_ascii=False).encode())
        digest.update(b"\n")
    return digest.hexdigest()[:16]
