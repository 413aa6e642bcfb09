"""A setting that needs an optional package says which ``pip install`` brings it.

The packages are hidden here by ``None`` in ``sys.modules`` (import then fails as for a
missing package); tests/test_plain_install.py checks the same on a real plain install.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import uvicorn
from typer.testing import CliRunner

from dockyard.cli.main import app
from dockyard.errors import ConfigError
from dockyard.extras import EXTRAS, require_extra
from tests.conftest import FIXTURE_PROJECT

runner = CliRunner()


@pytest.fixture
def no_server(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("dockyard serve started a server; it should have refused")

    monkeypatch.setattr(uvicorn, "run", refuse)


@pytest.mark.parametrize(
    ("env", "hidden", "message"),
    [
        (
            {"DOCKYARD_REDIS_URL": "redis://127.0.0.1:6379/0"},
            "redis",
            "redis_url needs the 'redis' package, which is not installed; "
            'install it with: pip install "dockyard[redis]"',
        ),
        (
            {"DOCKYARD_DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/postgres"},
            "psycopg_pool",
            "database_url (PostgreSQL) needs the 'psycopg_pool' package, which is not "
            'installed; install it with: pip install "dockyard[postgres]"',
        ),
        (
            {"DOCKYARD_DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/postgres"},
            "langgraph.checkpoint.postgres",
            "database_url (PostgreSQL) needs the 'langgraph.checkpoint.postgres' package, "
            'which is not installed; install it with: pip install "dockyard[postgres]"',
        ),
        (
            {
                "DOCKYARD_STORE__INDEX__EMBED": "local:all-MiniLM-L6-v2",
                "DOCKYARD_STORE__INDEX__DIMS": "384",
            },
            "onnxruntime",
            "store.index.embed 'local:all-MiniLM-L6-v2' needs the 'onnxruntime' package, which "
            'is not installed; install it with: pip install "dockyard[local-embeddings]"',
        ),
    ],
    ids=["redis_url", "database_url-psycopg_pool", "database_url-checkpointer", "local-embeddings"],
)
@pytest.mark.usefixtures("no_server")
def test_serve_refuses_a_setting_whose_extra_is_missing(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], hidden: str, message: str
) -> None:
    monkeypatch.setitem(sys.modules, hidden, None)

    result = runner.invoke(app, ["serve", "-c", str(FIXTURE_PROJECT / "dockyard.yaml")], env=env)

    assert result.exit_code == 2, result.output
    assert result.stderr == f"configuration error: {message}\n"


def test_worker_refuses_redis_url_without_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)
    env = {
        "DOCKYARD_REDIS_URL": "redis://127.0.0.1:6379/0",
        "DOCKYARD_DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/postgres",
    }

    result = runner.invoke(app, ["worker", "-c", str(FIXTURE_PROJECT / "dockyard.yaml")], env=env)

    assert result.exit_code == 2, result.output
    assert 'pip install "dockyard[redis]"' in result.stderr


def test_a_package_that_fails_to_import_is_not_called_missing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "dockyard_broken_dep.py").write_text(
        "raise ImportError('libfoo.so.1: cannot open shared object file')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(EXTRAS, "redis", ("dockyard_broken_dep",))

    with pytest.raises(ConfigError) as caught:
        require_extra("redis", "redis_url")

    assert caught.value.message == (
        "redis_url needs the 'dockyard_broken_dep' package, which fails to import "
        "(libfoo.so.1: cannot open shared object file); "
        'install it with: pip install "dockyard[redis]"'
    )


def test_every_extra_is_declared_in_pyproject() -> None:
    import tomllib

    pyproject = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())
    extras = pyproject["project"]["optional-dependencies"]
    assert set(EXTRAS) <= set(extras)
    assert extras["all"] == [f"dockyard[{','.join(sorted(EXTRAS))}]"]
    assert "dockyard[all]" in extras["dev"]
