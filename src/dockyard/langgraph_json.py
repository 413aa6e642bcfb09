"""langgraph.json, as LangGraph Platform users have it, in Settings' field names.

Each section dockyard can honour maps onto the Settings section of the same name
(dockyard.yaml takes the same sections). Any other key stops start-up with a message
naming it and what is supported: ignoring ``auth`` silently would serve an open API to
someone who believes it protected.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dockyard.errors import ConfigError

# Keys that only shape a container build; a local server has nothing to do with them,
# so they are accepted and left alone.
BUILD_KEYS = frozenset(
    {
        "dependencies",
        "dockerfile_lines",
        "python_version",
        "node_version",
        "pip_config_file",
        "pip_installer",
        "image_distro",
        "keep_pkg_tools",
        "$schema",
    }
)

# Section -> the keys of it dockyard honours (None: the section's value as a whole).
# The keys' own values are checked by the Settings models.
_SECTIONS: dict[str, frozenset[str] | None] = {
    "graphs": None,
    "env": None,
    "store": frozenset({"index", "ttl"}),
    "checkpointer": frozenset({"ttl"}),
    "http": frozenset(
        {
            "app",
            "cors",
            "mount_prefix",
            "disable_assistants",
            "disable_threads",
            "disable_runs",
            "disable_store",
            "disable_meta",
            "disable_webhooks",
        }
    ),
    "webhooks": frozenset({"url", "headers", "env_prefix"}),
    "auth": frozenset({"path"}),
}

# http switches for what dockyard does not serve at all: true is already the case.
_ABSENT = {"disable_mcp": "MCP endpoint", "disable_a2a": "A2A endpoint", "disable_ui": "UI server"}


def _shown(value: Any) -> str:
    # Sections may hold secrets (webhook headers): a mapping is not printed.
    return "{...}" if isinstance(value, dict) else repr(value)


def _refuse(path: Path, key: str, value: Any, supported: str) -> ConfigError:
    return ConfigError(
        f"config file {path}: key {key!r} = {_shown(value)} is not supported by dockyard; "
        f"supported: {supported}"
    )


def _section(path: Path, name: str, value: Any) -> Any:
    keys = _SECTIONS[name]
    if keys is None or not isinstance(value, dict):
        return value  # the Settings model reports a wrong type
    out = {}
    for key, sub in value.items():
        if name == "http" and key in _ABSENT:
            if sub is True:
                continue
            raise ConfigError(
                f"config file {path}: key 'http.{key}' = {sub!r} is not supported by dockyard: "
                f"it serves no {_ABSENT[key]} (so true is accepted); remove the key"
            )
        if key not in keys:
            raise _refuse(path, f"{name}.{key}", sub, f"{', '.join(sorted(keys))} under {name}")
        out[key] = sub
    return out


def from_langgraph_json(path: Path, raw: dict[str, Any]) -> dict[str, Any]:
    """The Settings fields a parsed langgraph.json sets; ConfigError on a key dockyard
    cannot honour."""
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key in BUILD_KEYS:
            continue
        if key not in _SECTIONS:
            raise _refuse(
                path,
                key,
                value,
                f"{', '.join(_SECTIONS)} (and the build-only keys {', '.join(sorted(BUILD_KEYS))})",
            )
        out[key] = _section(path, key, value)
    graphs = out.get("graphs")
    if isinstance(graphs, dict):
        # langgraph.json allows {"path": ..., "description": ...} objects too.
        out["graphs"] = {
            k: (v.get("path") if isinstance(v, dict) else v) for k, v in graphs.items()
        }
    return out
