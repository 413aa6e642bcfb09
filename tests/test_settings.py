"""Configuration loading: dockyard.yaml, an unchanged langgraph.json, DOCKYARD_* overrides,
and one clear message for a bad value."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dockyard.errors import ConfigError
from dockyard.settings import find_config_file, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No DOCKYARD_* variable of the developer's shell leaks into these tests."""
    import os

    for name in list(os.environ):
        if name.upper().startswith("DOCKYARD_"):
            monkeypatch.delenv(name)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


DOCKYARD_YAML = """\
graphs:
  agent: ./agent.py:graph
  other: my_pkg.graphs:build
models:
  fast: openai:gpt-4o-mini
  careful:
    model: anthropic:claude-sonnet-4-5
    temperature: 0.1
    max_tokens: 512
runs:
  max_concurrency: 8
  timeout_seconds: 120
threads:
  default_ttl_minutes: 1440
store:
  ttl:
    default_ttl: 60
    sweep_interval_minutes: 5
port: 9000
log_level: debug
data_dir: state
"""

# As `langgraph new` writes it, plus the build-only keys LangGraph Platform reads.
LANGGRAPH_JSON = {
    "$schema": "https://langgra.ph/schema.json",
    "dependencies": [".", "./libs/helpers"],
    "graphs": {
        "agent": "./src/agent/graph.py:graph",
        "described": {"path": "./src/agent/other.py:graph", "description": "the other one"},
    },
    "env": ".env",
    "python_version": "3.11",
    "pip_config_file": "pip.conf",
    "dockerfile_lines": ["RUN echo hi"],
    "image_distro": "wolfi",
}


def test_dockyard_yaml_loads(tmp_path: Path) -> None:
    config = write(tmp_path / "dockyard.yaml", DOCKYARD_YAML)
    s = load_settings(config)
    assert s.config_file == config
    assert s.project_dir == tmp_path
    assert s.graphs == {"agent": "./agent.py:graph", "other": "my_pkg.graphs:build"}
    assert s.models["fast"].model == "openai:gpt-4o-mini"
    assert s.models["careful"].model == "anthropic:claude-sonnet-4-5"
    assert (s.models["careful"].temperature, s.models["careful"].max_tokens) == (0.1, 512)
    assert (s.runs.max_concurrency, s.runs.timeout_seconds) == (8, 120)
    assert s.runs.stream_max_events == 10_000  # defaults fill what the file leaves out
    assert s.threads.default_ttl_minutes == 1440
    assert s.store.ttl is not None and s.store.ttl.default_ttl == 60
    assert s.store.index is None
    assert (s.port, s.log_level) == (9000, "debug")
    assert s.sqlite_dir == tmp_path / "state"  # relative to the project, not the cwd


def test_config_file_is_found_in_the_project_dir(tmp_path: Path) -> None:
    write(tmp_path / "langgraph.json", json.dumps({"graphs": {"g": "./g.py:graph"}}))
    assert find_config_file(tmp_path) == tmp_path / "langgraph.json"
    write(tmp_path / "dockyard.yaml", "graphs: {y: ./y.py:graph}\n")
    assert find_config_file(tmp_path) == tmp_path / "dockyard.yaml"  # dockyard.yaml wins
    s = load_settings(project_dir=tmp_path)
    assert s.graphs == {"y": "./y.py:graph"}
    assert s.config_file == tmp_path / "dockyard.yaml"


def test_config_file_named_by_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write(tmp_path / "elsewhere.yaml", "graphs: {e: ./e.py:graph}\nport: 7000\n")
    monkeypatch.setenv("DOCKYARD_CONFIG_FILE", str(config))
    s = load_settings(project_dir=tmp_path / "not-here")
    assert s.graphs == {"e": "./e.py:graph"} and s.port == 7000


def test_unchanged_langgraph_json_loads(tmp_path: Path) -> None:
    config = write(tmp_path / "langgraph.json", json.dumps(LANGGRAPH_JSON, indent=2))
    s = load_settings(config)
    assert s.graphs == {
        "agent": "./src/agent/graph.py:graph",
        "described": "./src/agent/other.py:graph",
    }
    assert s.env == ".env"
    assert s.project_dir == tmp_path
    assert s.port == 8123 and s.runs.max_concurrency == 16  # dockyard's defaults


def test_langgraph_json_env_mapping_and_store(tmp_path: Path) -> None:
    raw = {
        "graphs": {"agent": "./agent.py:graph"},
        "env": {"OPENAI_API_KEY": "sk-test", "MODE": "dev"},
        "store": {"ttl": {"default_ttl": 10, "refresh_on_read": False}},
    }
    s = load_settings(write(tmp_path / "langgraph.json", json.dumps(raw)))
    assert s.env == {"OPENAI_API_KEY": "sk-test", "MODE": "dev"}
    assert s.store.ttl is not None
    assert (s.store.ttl.default_ttl, s.store.ttl.refresh_on_read) == (10, False)


def test_a_bad_auth_path_is_refused_naming_it(tmp_path: Path) -> None:
    config = write(tmp_path / "langgraph.json", json.dumps({"auth": {"path": "auth.py"}}))
    with pytest.raises(ConfigError) as err:
        load_settings(config)
    assert "auth.path = 'auth.py'" in str(err.value)


@pytest.mark.parametrize("key", ["no_such_key"])
def test_unknown_langgraph_json_key_is_refused(tmp_path: Path, key: str) -> None:
    raw = {"graphs": {"agent": "./agent.py:graph"}, key: {"path": "./auth.py:auth"}}
    config = write(tmp_path / "langgraph.json", json.dumps(raw))
    with pytest.raises(ConfigError) as err:
        load_settings(config)
    message = str(err.value)
    assert str(config) in message
    assert repr(key) in message
    assert "not supported" in message and "graphs" in message  # what is supported


PLATFORM = Path(__file__).parent / "fixtures" / "platform" / "langgraph.json"

# The platform fixture's sections, as dockyard.yaml writes them.
PLATFORM_YAML = """\
graphs:
  trivial: ../project/graphs.py:trivial
http:
  app: ./webapp.py:app
  mount_prefix: /api/
  cors:
    allow_origins: [https://studio.example]
    allow_methods: [GET, POST]
    allow_headers: [content-type, x-api-key]
    allow_credentials: true
    expose_headers: [x-pagination-next]
    max_age: 120
  disable_store: true
checkpointer:
  ttl: {strategy: keep_latest, default_ttl: 10080, sweep_interval_minutes: 60}
webhooks:
  env_prefix: LG_WEBHOOK_
  url:
    allowed_domains: [hooks.example.com, "*.hooks.example.com"]
    allowed_ports: [443, 8443]
    require_https: true
    disable_loopback: false
    max_url_length: 300
  headers:
    Authorization: Bearer ${{ env.LG_WEBHOOK_TOKEN }}
    X-Source: dockyard-fixture
"""


def test_platform_langgraph_json_and_the_same_dockyard_yaml(tmp_path: Path) -> None:
    lg = load_settings(PLATFORM)
    assert lg.http.app == "./webapp.py:app" and lg.http.mount_prefix == "/api"
    assert lg.http.cors is not None and lg.http.cors.allow_origins == ["https://studio.example"]
    assert (lg.http.cors.allow_credentials, lg.http.cors.max_age) == (True, 120)
    assert lg.http.disable_store and not lg.http.disable_threads
    assert lg.checkpointer.ttl is not None and lg.checkpointer.ttl.strategy == "keep_latest"
    assert lg.thread_ttl == ("keep_latest", 10080)
    assert lg.thread_sweep_interval_seconds == 3600
    assert lg.store.ttl.default_ttl == 1440
    assert lg.webhooks.url.allowed_ports == [443, 8443] and lg.webhooks.url.require_https
    assert lg.webhooks.allowed_domains == ["hooks.example.com", "*.hooks.example.com"]
    assert lg.webhooks.headers["X-Source"] == "dockyard-fixture"

    yml = load_settings(write(tmp_path / "dockyard.yaml", PLATFORM_YAML))
    for section in ("http", "checkpointer"):
        assert getattr(yml, section) == getattr(lg, section), section
    assert (yml.webhooks.url, yml.webhooks.headers) == (lg.webhooks.url, lg.webhooks.headers)


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        (
            {"auth": {"path": "./auth.py:auth", "disable_studio_auth": True}},
            "auth.disable_studio_auth",
        ),
        ({"encryption": {"path": "./e.py:e"}}, "encryption"),
        ({"ui": {"agent": "./ui.tsx"}}, "ui"),
        ({"http": {"configurable_headers": {"includes": ["x-*"]}}}, "http.configurable_headers"),
        ({"http": {"middleware_order": "auth_first"}}, "http.middleware_order"),
        ({"http": {"disable_mcp": False}}, "http.disable_mcp"),
        ({"checkpointer": {"path": "./cp.py:make"}}, "checkpointer.path"),
        ({"checkpointer": {"serde": {"pickle_fallback": False}}}, "checkpointer.serde"),
        ({"webhooks": {"signing": {"secret": "s3cret"}}}, "webhooks.signing"),
    ],
)
def test_what_dockyard_cannot_honour_is_refused_by_name(
    tmp_path: Path, raw: dict[str, object], key: str
) -> None:
    config = write(tmp_path / "langgraph.json", json.dumps({"graphs": {}, **raw}))
    with pytest.raises(ConfigError) as err:
        load_settings(config)
    message = str(err.value)
    assert str(config) in message and repr(key) in message
    assert "not supported by dockyard" in message
    assert "s3cret" not in message  # a section's values are not printed


def test_switches_for_what_dockyard_does_not_serve_are_accepted_when_true(
    tmp_path: Path,
) -> None:
    raw = {"http": {"disable_mcp": True, "disable_a2a": True, "disable_ui": True}}
    assert load_settings(write(tmp_path / "langgraph.json", json.dumps(raw))).http.app is None


@pytest.mark.parametrize(
    ("yaml_text", "words"),
    [
        ("http:\n  mount_prefix: api\n", ["http.mount_prefix", "'/api'"]),
        ("http:\n  app: webapp.py\n", ["http.app", "'path/to/file.py:attr'"]),
        ("http:\n  cors:\n    allow_origin_regex: '('\n", ["allow_origin_regex", "regular"]),
        ("checkpointer:\n  ttl:\n    strategy: archive\n", ["checkpointer.ttl.strategy"]),
        (
            "threads:\n  default_ttl_minutes: 5\ncheckpointer:\n  ttl:\n    default_ttl: 5\n",
            ["threads.default_ttl_minutes or checkpointer.ttl.default_ttl"],
        ),
        (
            "webhooks:\n  allowed_hosts: [a.example]\n  url:\n    allowed_domains: [b.example]\n",
            ["webhooks.allowed_hosts or webhooks.url.allowed_domains"],
        ),
        (
            "webhooks:\n  headers:\n    X-Key: ${{ env.HOME }}\n",
            ["env.HOME", "env_prefix 'LG_WEBHOOK_'"],
        ),
    ],
)
def test_bad_platform_sections_stop_with_one_message(
    tmp_path: Path, yaml_text: str, words: list[str]
) -> None:
    config = write(tmp_path / "dockyard.yaml", yaml_text)
    with pytest.raises(ConfigError) as err:
        load_settings(config)
    for word in words:
        assert word in str(err.value), str(err.value)


def test_webhook_header_templates_are_filled_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = "webhooks:\n  headers:\n    X-Key: k=${{ env.LG_WEBHOOK_KEY }}/${{env.LG_WEBHOOK_B}}\n"
    s = load_settings(write(tmp_path / "dockyard.yaml", text))
    with pytest.raises(ConfigError, match="LG_WEBHOOK_B, LG_WEBHOOK_KEY") as err:
        s.webhooks.resolve_headers()
    monkeypatch.setenv("LG_WEBHOOK_KEY", "secret-value")
    monkeypatch.setenv("LG_WEBHOOK_B", "b")
    assert s.webhooks.resolve_headers() == {"X-Key": "k=secret-value/b"}
    assert "secret-value" not in repr(s) + str(err.value)


def test_env_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = write(tmp_path / "dockyard.yaml", DOCKYARD_YAML)
    monkeypatch.setenv("DOCKYARD_PORT", "9100")
    monkeypatch.setenv("DOCKYARD_RUNS__MAX_CONCURRENCY", "3")
    monkeypatch.setenv("DOCKYARD_LOG_LEVEL", "warning")
    monkeypatch.setenv("DOCKYARD_GRAPHS", '{"agent": "./env.py:graph"}')
    s = load_settings(config)
    assert s.port == 9100
    assert s.log_level == "warning"
    assert s.runs.max_concurrency == 3
    assert s.runs.timeout_seconds == 120  # the rest of the file's group stays
    # A mapping merges key by key, as nested groups do.
    assert s.graphs == {"agent": "./env.py:graph", "other": "my_pkg.graphs:build"}
    # Keyword arguments (the CLI) beat both.
    assert load_settings(config, port=9200).port == 9200


def test_env_alone_without_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKYARD_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DOCKYARD_THREADS__DEFAULT_TTL_MINUTES", "30")
    s = load_settings(project_dir=tmp_path)
    assert s.config_file is None
    assert s.sqlite_dir == tmp_path / "data"
    assert s.threads.default_ttl_minutes == 30


@pytest.mark.parametrize(
    ("yaml_text", "key", "value", "expected"),
    [
        ("runs:\n  max_concurrency: lots\n", "runs.max_concurrency", "'lots'", "valid integer"),
        ("runs:\n  max_concurrency: 0\n", "runs.max_concurrency", "0", "greater than 0"),
        ("port: 70000\n", "port", "70000", "less than or equal to 65535"),
        ("log_level: loud\n", "log_level", "'loud'", "'debug', 'info', 'warning' or 'error'"),
        ("models:\n  fast: gpt-4o\n", "models.fast.model", "'gpt-4o'", "'provider:model'"),
        ("graphs:\n  agent: agent.py\n", "graphs", "{...}", "'path/to/file.py:attr'"),
        ("threads:\n  default_ttl_minutes: -5\n", "threads.default_ttl_minutes", "-5", "than 0"),
        ("runs:\n  max_concurrency: 4\n  workers: 2\n", "runs.workers", "2", "unknown key"),
    ],
)
def test_bad_value_in_the_file_stops_with_one_message(
    tmp_path: Path, yaml_text: str, key: str, value: str, expected: str
) -> None:
    config = write(tmp_path / "dockyard.yaml", yaml_text)
    with pytest.raises(ConfigError) as err:
        load_settings(config)
    message = str(err.value)
    assert f"{key} = {value}" in message, message
    assert expected in message, message
    assert str(config) in message  # where to fix it
    assert "DOCKYARD_" + key.replace(".", "__").upper() in message  # or which variable


def test_bad_values_are_reported_together(tmp_path: Path) -> None:
    config = write(tmp_path / "dockyard.yaml", "port: high\nruns:\n  max_concurrency: -1\n")
    with pytest.raises(ConfigError) as err:
        load_settings(config)
    message = str(err.value)
    assert "port = 'high'" in message and "runs.max_concurrency = -1" in message
    assert message.startswith("invalid configuration")
    assert "Traceback" not in message and "pydantic.dev" not in message


def test_bad_env_value_names_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKYARD_RUNS__MAX_CONCURRENCY", "many")
    with pytest.raises(ConfigError) as err:
        load_settings(project_dir=tmp_path)
    message = str(err.value)
    assert "runs.max_concurrency = 'many'" in message
    assert "DOCKYARD_RUNS__MAX_CONCURRENCY" in message and "valid integer" in message


def test_bad_json_in_env_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKYARD_STORE", "{not json")
    with pytest.raises(ConfigError) as err:
        load_settings(project_dir=tmp_path)
    message = str(err.value)
    assert "DOCKYARD_STORE" in message and "'{not json'" in message and "JSON" in message


@pytest.mark.parametrize(
    ("name", "text", "words"),
    [
        ("dockyard.yaml", "graphs: [unclosed\n", ["not valid YAML"]),
        ("dockyard.yaml", "- a\n- b\n", ["expected a mapping", "list"]),
        ("langgraph.json", '{"graphs": ', ["not valid JSON"]),
    ],
)
def test_unreadable_file_is_one_clear_error(
    tmp_path: Path, name: str, text: str, words: list[str]
) -> None:
    config = write(tmp_path / name, text)
    with pytest.raises(ConfigError) as err:
        load_settings(config)
    assert str(config) in str(err.value)
    for w in words:
        assert w in str(err.value)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(tmp_path / "nope.yaml")
    assert "does not exist" in str(err.value) and "nope.yaml" in str(err.value)


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path / "dockyard.yaml", ""))
    assert s.graphs == {} and s.port == 8123 and s.database_url is None
