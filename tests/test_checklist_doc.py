"""docs/checklist.md claims tests, settings and doc sections: each one must exist, so that
a renamed test or setting, or a moved heading, turns this red instead of leaving the page
claiming coverage that is gone."""

from __future__ import annotations

import ast
import re
import types
import typing
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from dockyard.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "checklist.md"
STATUSES = {"covered", "partly", "not covered"}

_TEST_REF = re.compile(r"tests/[\w/]+\.py::\w+")
_LINK = re.compile(r"\]\(([^)\s]+)\)")
_CODE = re.compile(r"`([^`]+)`")


def missing_tests(text: str) -> list[str]:
    """The ``tests/file.py::name`` references in ``text`` with no such file or function."""
    missing = []
    for ref in sorted(set(_TEST_REF.findall(text))):
        path, name = ref.split("::")
        if name not in _functions(ROOT / path):
            missing.append(ref)
    return missing


@cache
def _functions(path: Path) -> frozenset[str]:
    if not path.is_file():
        return frozenset()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return frozenset(
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    )


def _models(annotation: Any) -> list[type[BaseModel]]:
    """The settings classes a field's annotation may hold (through Optional, unions,
    Annotated, lists and the values of dicts)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _models(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType, list):
        return [m for arg in typing.get_args(annotation) for m in _models(arg)]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return []


def _is_dict(annotation: Any) -> Any:
    """The value type when ``annotation`` is (an optional) dict, else None."""
    origin = typing.get_origin(annotation)
    if origin is dict:
        return typing.get_args(annotation)[1]
    if origin in (typing.Union, types.UnionType, typing.Annotated):
        for arg in typing.get_args(annotation):
            value = _is_dict(arg)
            if value is not None:
                return value
    return None


def setting_exists(key: str) -> bool:
    """``key`` (``policies.budget.daily_usd``, ``models.<name>.retry``) names a setting."""
    candidates: list[Any] = [Settings]
    for part in key.split("."):
        found: list[Any] = []
        for c in candidates:
            if isinstance(c, type) and issubclass(c, BaseModel):
                if part in c.model_fields:
                    found.append(c.model_fields[part].annotation)
            else:  # a field's annotation: a dict key, or a settings class inside it
                value = _is_dict(c)
                if value is not None and re.fullmatch(r"<\w+>", part):
                    found.append(value)
                found.extend(
                    m.model_fields[part].annotation for m in _models(c) if part in m.model_fields
                )
        if not found:
            return False
        candidates = found
    return True


def _heading_slugs(path: Path) -> set[str]:
    """GitHub's anchors for the headings of ``path`` (a repeated one gets -1, -2, ...)."""
    slugs: set[str] = set()
    seen: dict[str, int] = {}
    in_code = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_code = not in_code
        if in_code or not re.match(r"#{1,6} ", line):
            continue
        text = line.lstrip("#").strip().lower()
        slug = re.sub(r"[^\w\- ]", "", text).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        slugs.add(slug if n == 0 else f"{slug}-{n}")
    return slugs


def broken_links(text: str, base: Path) -> list[str]:
    broken = []
    for target in _LINK.findall(text):
        if "://" in target:
            continue
        file, _, anchor = target.partition("#")
        path = (base / file).resolve() if file else PAGE
        if not path.is_file() or (anchor and anchor not in _heading_slugs(path)):
            broken.append(target)
    return broken


def rows(text: str) -> list[dict[str, str]]:
    """The rows of every table of ``text``, as {header: cell}."""
    out: list[dict[str, str]] = []
    header: list[str] | None = None
    for line in text.splitlines():
        if not line.startswith("|"):
            header = None
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if header is None:
            header = cells
        elif not set("".join(cells)) <= set("-: "):
            out.append(dict(zip(header, cells, strict=True)))
    return out


def row_problems(text: str) -> list[str]:
    problems = []
    for row in rows(text):
        if "Status" not in row:  # the summary
            continue
        item = row.get("Item (guide's words)", "")[:40]
        where = f"row {row.get('#')} ({item})"
        status, tests = row.get("Status", ""), row.get("Tests", "")
        if status not in STATUSES:
            problems.append(f"{where}: status {status!r} is not one of {sorted(STATUSES)}")
        elif status == "not covered" and _TEST_REF.search(tests):
            problems.append(f"{where}: not covered, yet names a test")
        elif status != "not covered" and not _TEST_REF.search(tests):
            problems.append(f"{where}: {status}, but names no test")
        if len(row.get("What dockyard does", "")) < 10:
            problems.append(f"{where}: says too little about what dockyard does")
    return problems


def test_every_cited_test_exists() -> None:
    text = PAGE.read_text(encoding="utf-8")
    assert len(set(_TEST_REF.findall(text))) > 50
    assert missing_tests(text) == []


def test_every_cited_setting_exists() -> None:
    table = rows(PAGE.read_text(encoding="utf-8"))
    keys = [key for row in table for key in _CODE.findall(row.get("Settings", ""))]
    assert len(keys) > 50
    assert [k for k in keys if not setting_exists(k)] == []


def test_every_link_reaches_its_page_and_heading() -> None:
    text = PAGE.read_text(encoding="utf-8")
    assert _LINK.search(text)
    assert broken_links(text, PAGE.parent) == []


def test_every_row_has_a_status_and_its_evidence() -> None:
    text = PAGE.read_text(encoding="utf-8")
    assert len(rows(text)) >= 100
    assert row_problems(text) == []


def _title(cell: str) -> str:
    return re.sub(r"\[(.*)\]\(.*\)", r"\1", cell)


def summary_problems(text: str) -> list[str]:
    """Where the summary's counts differ from the statuses of its sections' rows."""
    parts = re.split(r"^## ", text, flags=re.M)[1:]
    sections = {part.splitlines()[0]: part for part in parts}
    summary = [row for row in rows(sections.pop("Summary", "")) if "Section" in row]
    problems = []
    for row in summary:
        title = _title(row["Section"])
        statuses = [r["Status"] for r in rows(sections.get(title, "")) if "Status" in r]
        for status in sorted(STATUSES):
            if row[status] != str(statuses.count(status)):
                problems.append(
                    f"{title}: {status} says {row[status]}, the rows {statuses.count(status)}"
                )
    if {_title(row["Section"]) for row in summary} != set(sections):
        problems.append(f"the summary does not list exactly the sections {sorted(sections)}")
    return problems


def test_the_summary_counts_the_rows() -> None:
    text = PAGE.read_text(encoding="utf-8")
    assert "## Summary" in text
    assert summary_problems(text) == []


def test_the_checks_catch_what_is_wrong() -> None:
    assert missing_tests("`tests/test_layers.py::test_no_import_cycles`") == []
    assert missing_tests("`tests/test_layers.py::test_nothing_like_it`") == [
        "tests/test_layers.py::test_nothing_like_it"
    ]
    assert missing_tests("`tests/no_such_file.py::test_x`") == ["tests/no_such_file.py::test_x"]
    assert setting_exists("models.<name>.retry.max_attempts")
    assert setting_exists("observability.alerts.rules")
    assert setting_exists("rollouts.<name>.rollback.min_quality")
    assert not setting_exists("policies.budget.weekly_usd")
    assert not setting_exists("models.<name>.retries")
    assert not setting_exists("models.retry.max_attempts")
    assert broken_links("[r](policies.md#resilience)", PAGE.parent) == []
    assert broken_links("[r](policies.md#configuration-1)", PAGE.parent) == []
    assert broken_links("[r](policies.md#no-such-heading)", PAGE.parent) == [
        "policies.md#no-such-heading"
    ]
    table = (
        "| # | Status | What dockyard does | Settings | Tests |\n|---|---|---|---|---|\n"
        "| 1 | covered | something long enough to read | — | — |\n"
        "| 2 | not covered | something long enough to read | — | `tests/a.py::test_b` |\n"
        "| 3 | done | something long enough to read | — | — |\n"
    )
    assert len(row_problems(table)) == 3
    page = "## Summary\n\n| Section | covered | partly | not covered |\n|---|---|---|---|\n"
    assert summary_problems(f"{page}| [A](#a) | 1 | 0 | 1 |\n\n## A\n\n{table}") == []
    assert summary_problems(f"{page}| [A](#a) | 2 | 0 | 1 |\n\n## A\n\n{table}") == [
        "A: covered says 2, the rows 1"
    ]
    assert len(summary_problems(f"{page}| [A](#a) | 1 | 0 | 1 |\n\n## A\n\n{table}## B\n")) == 1
