"""docs/observability.md, "Metrics", says what is exported: every family and its type, and
its settings example loads."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from dockyard.settings import Settings
from tests.observability.scrape import FAMILIES

DOC = Path(__file__).resolve().parents[2] / "docs" / "observability.md"


def _section() -> str:
    text = DOC.read_text()
    return text.split("## Metrics\n", 1)[1].split("\n## ", 1)[0]


def test_the_table_lists_every_family_with_its_type() -> None:
    rows = re.findall(r"^\| `(dockyard_[a-z_]+)` \| (\w+) \|", _section(), re.M)
    documented = {name: kind for name, kind in rows}
    exported = {
        (f"{name}_total" if kind == "counter" else name): kind for name, kind in FAMILIES.items()
    }
    assert documented == exported


def test_the_settings_example_loads() -> None:
    block = re.search(r"```yaml\n(.*?)```", _section(), re.S)
    assert block is not None
    settings = Settings(**yaml.safe_load(block.group(1)))
    assert settings.observability.metrics.port == 9464
