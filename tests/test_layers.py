"""dockyard's imports only point down.

* cli → api → runtime → storage → ``dockyard`` → providers → settings → errors (``LAYERS``);
  ``testing`` and ``agents`` are for users and imported by nothing (``SIDE``);
* no route module imports another (what they share lives in ``api/``);
* no module takes another module's ``_name``, nor another package's ``_module``;
* no import cycle between modules;
* a storage backend package (``STORAGE_BACKENDS``) is imported only by itself and by
  ``storage.database``, which picks one: the backends build on the shared storage
  modules, never on each other, and nothing shared leans on a backend.

Every import in ``src/dockyard`` counts: at module level, inside a function, under
``TYPE_CHECKING``. A new subpackage or top-level module must be placed in ``LAYERS`` (or
``SIDE``) before this passes, which is the point: where it sits is a decision.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"
ROOT = "dockyard"  # the package itself: __version__ and the public chat_model / ModelRegistry

# Lowest first. A unit may import its own modules and any unit of a lower layer.
LAYERS: tuple[frozenset[str], ...] = tuple(
    frozenset(layer)
    for layer in (
        {"errors"},
        # small leaf modules (prompt_template: a prompt version and its {{ name }} syntax;
        # variants: the configurable keys a run varies by (prompt, model) and the experiment
        # key, read by the CLI, providers and the runtime)
        {
            "langgraph_json",
            "extras",
            "sampling",
            "run_spec",
            "caller",
            "events",
            "prompt_template",
            "variants",
        },
        {"settings"},
        {"providers"},
        # prompt_source: `dockyard.prompt()` and the hook the process sets (as chat_model's)
        {ROOT, "prompt_source"},
        {"storage"},
        # The registry's writes, cache and project files: built on storage only; below
        # policies, which may read prompts (a judge's rubric) but not the other way round.
        {"prompts"},
        {"policies"},
        # quality scorers: use the PII detector (policies); the runtime's quality gate and
        # `dockyard eval` use them
        {"quality"},
        {"observability"},  # metrics, logs, traces, alerts: may use policies (the PII redactor)
        # gradual rollouts: assignment, rollback check (alert notifiers), promote (prompt
        # registry); the runtime's admission and a process component use them
        {"rollouts"},
        {"runtime"},
        {"api"},
        # `dockyard eval`: runs datasets through a server, scores, stores, reports; used
        # by the CLI only
        {"evals"},
        {"cli"},
        {"__main__"},
    )
)
RANK = {unit: rank for rank, layer in enumerate(LAYERS) for unit in layer}

# Shipped for users, imported by nothing in dockyard: the test doubles (fake models are in
# providers.offline, the mock servers here) and the sample graphs, which are written like a
# user's graph (providers and the public `dockyard` API, no runtime or API internals).
SIDE = {"testing": RANK[ROOT], "agents": RANK[ROOT]}

ROUTES = "dockyard.api.routes."

STORAGE_BACKENDS = ("dockyard.storage.sqlite", "dockyard.storage.postgres")
BACKEND_CHOOSER = "dockyard.storage.database"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted((SRC / ROOT).rglob("*.py"))}


MODULES = all_modules()


def imports_of(name: str, path: Path, known: set[str]) -> Iterator[tuple[str, int]]:
    """(imported module, line) for every import in the file, at any depth; ``known``: the
    modules that ``from package import name`` may name."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            for alias in node.names:
                # `from dockyard.storage import pg_vector` imports the module pg_vector
                submodule = f"{target}.{alias.name}"
                yield (submodule if submodule in known else target), node.lineno
                if submodule not in known and _private(alias.name):
                    yield f"{target}:{alias.name}", node.lineno


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def internal_imports(
    name: str, path: Path, known: set[str] | None = None
) -> Iterator[tuple[str, int]]:
    """Each imported dockyard module once per line; a private name taken from one comes
    as ``module:name`` (only ``private_name_imports`` looks at those)."""
    seen = set()
    for target, line in imports_of(name, path, set(MODULES) | (known or set())):
        if (target == ROOT or target.startswith(ROOT + ".")) and (target, line) not in seen:
            seen.add((target, line))
            yield target, line


def module_imports(
    name: str, path: Path, known: set[str] | None = None
) -> Iterator[tuple[str, int]]:
    return ((t, line) for t, line in internal_imports(name, path, known) if ":" not in t)


def unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ROOT


def backend_of(module: str) -> str | None:
    return next((b for b in STORAGE_BACKENDS if module == b or module.startswith(b + ".")), None)


def test_every_unit_has_a_place() -> None:
    units = {unit(m) for m in MODULES}
    unplaced = sorted(units - RANK.keys() - SIDE.keys())
    assert not unplaced, f"place these in tests/test_layers.py LAYERS or SIDE: {unplaced}"


def layering_violations(modules: dict[str, Path]) -> list[str]:
    problems = []
    for name, path in modules.items():
        src = unit(name)
        for target, line in module_imports(name, path, set(modules)):
            dst = unit(target)
            where = f"{name}:{line} imports {target}"
            if name.startswith(ROUTES) and target.startswith(ROUTES) and target != name:
                problems.append(f"{where}: a route module imports no other (share via api/)")
            if backend_of(target) not in (None, backend_of(name)) and name != BACKEND_CHOOSER:
                problems.append(f"{where}: only {BACKEND_CHOOSER} picks a storage backend")
            if dst == src or not {src, dst} <= RANK.keys() | SIDE.keys():
                continue  # unplaced units: test_every_unit_has_a_place
            if dst in SIDE:
                problems.append(f"{where}: nothing in dockyard may import dockyard.{dst}")
            elif src in SIDE:
                if RANK[dst] > SIDE[src]:
                    problems.append(f"{where}: dockyard.{src} may only use layers up to {ROOT}")
            elif RANK[dst] > RANK[src]:
                problems.append(f"{where}: {src} is below {dst}")
    return problems


def test_imports_only_point_down() -> None:
    assert layering_violations(MODULES) == []


def private_name_imports(modules: dict[str, Path]) -> list[str]:
    """A ``_name`` is its module's own; a ``_module`` is its package's own."""
    problems = []
    for name, path in modules.items():
        for target, line in internal_imports(name, path, set(modules)):
            module, _, private_name = target.partition(":")
            where = f"{name}:{line} imports {target.replace(':', '.')}"
            if private_name and module != name:
                problems.append(f"{where}: a private name of another module")
                continue
            parts = module.split(".")
            for i, part in enumerate(parts):
                owner = ".".join(parts[:i])
                if _private(part) and not (name == owner or name.startswith(owner + ".")):
                    problems.append(f"{where}: a private module of {owner}")
                    break
    return problems


def test_no_private_names_across_modules() -> None:
    assert private_name_imports(MODULES) == []


def import_cycles(modules: dict[str, Path]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), sorted."""
    graph = {
        name: {t for t, _ in module_imports(name, path, set(modules)) if t in modules and t != name}
        for name, path in modules.items()
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(cycles)


def test_no_import_cycles() -> None:
    assert import_cycles(MODULES) == []


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        # runtime reaching up into the API, as runtime/worker.py once did
        (
            "dockyard.runtime.worker",
            "from dockyard.api.responses import json_response\n",
            "runtime is below api",
        ),
        ("dockyard.providers.chat", "import dockyard.testing\n", "may import dockyard.testing"),
        (
            "dockyard.storage.sqlite.store",
            "def f():\n    from dockyard.runtime import serde\n",
            "storage is below runtime",
        ),
        (
            "dockyard.agents.support",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
            "    from dockyard.runtime.process import Runtime\n",
            "may only use layers up to",
        ),
    ],
)
def test_an_upward_import_is_caught(
    tmp_path: Path, module: str, source: str, expected: str
) -> None:
    path = tmp_path / "module.py"
    path.write_text(source)
    problems = layering_violations({module: path})
    assert len(problems) == 1 and expected in problems[0], problems


def test_a_route_importing_a_route_is_caught(tmp_path: Path) -> None:
    path = tmp_path / "runs.py"
    path.write_text("from dockyard.api.routes.threads import get_thread\n")
    problems = layering_violations({"dockyard.api.routes.runs": path})
    assert len(problems) == 1 and "a route module imports no other" in problems[0], problems


@pytest.mark.parametrize(
    "source",
    [
        "from dockyard.storage.common import _upgrade\n",
        "def f():\n    from dockyard.storage.sql._common import P\n",
    ],
)
def test_a_private_import_is_caught(tmp_path: Path, source: str) -> None:
    path = tmp_path / "postgres.py"
    path.write_text(source)
    problems = private_name_imports({"dockyard.storage.postgres.store": path})
    assert len(problems) == 1 and "private" in problems[0], problems


def test_a_cycle_is_caught(tmp_path: Path) -> None:
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text("from dockyard.storage import b\n")
    b.write_text("def f():\n    from dockyard.storage.a import x\n")
    modules = {"dockyard.storage.a": a, "dockyard.storage.b": b}
    assert import_cycles(modules) == [["dockyard.storage.a", "dockyard.storage.b"]]


@pytest.mark.parametrize(
    ("module", "source"),
    [
        # a shared module leaning on one backend
        ("dockyard.storage.sql.runs", "from dockyard.storage.postgres.direct import DirectPg\n"),
        # one backend borrowing from the other
        ("dockyard.storage.postgres.store", "from dockyard.storage.sqlite import store\n"),
        # a layer above choosing a backend itself
        (
            "dockyard.runtime.process",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
            "    import dockyard.storage.sqlite.wal\n",
        ),
    ],
)
def test_a_backend_import_outside_database_is_caught(
    tmp_path: Path, module: str, source: str
) -> None:
    path = tmp_path / "module.py"
    path.write_text(source)
    problems = layering_violations({module: path})
    assert len(problems) == 1 and "picks a storage backend" in problems[0], problems
