"""A plain ``pip install dockyard`` (no extras) serves a ``dockyard init`` project.

The wheel is built from this checkout and installed with ``--no-deps`` into a fresh venv.
Its dependencies come from the suite's own environment, but only the distributions a
plain install would bring: dockyard's requirements without extras, followed through
their own requirements, linked file by file (dist-info included) into the new venv. The
optional packages are then absent there as on a user's machine, not merely hidden (the
first test checks it), and everything stays offline: the wheel is built without build
isolation by the hatchling of the dev extra.
"""

from __future__ import annotations

import email.parser
import json
import os
import signal
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path, PurePosixPath

import httpx
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import free_port, guarded, wait_ready

ROOT = Path(__file__).resolve().parent.parent

# What the extras bring (and their compiled parts); none may be importable after a plain
# install. asyncpg is in the postgres extra though dockyard does not import it.
OPTIONAL_MODULES = (
    "redis",
    "hiredis",
    "psycopg",
    "psycopg_binary",
    "psycopg_pool",
    "asyncpg",
    "anthropic",
    "openai",
    "langchain_anthropic",
    "langchain_openai",
    "langgraph.checkpoint.postgres",
    "langgraph.store.postgres",
    "deepagents",
    "langchain_google_genai",
)


@dataclass
class PlainInstall:
    venv: Path
    env: dict[str, str]

    def run(self, *args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.venv / "bin" / args[0]), *args[1:]],
            cwd=cwd,
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=120,
        )


def _wanted(requires: list[str] | None, extra: str) -> list[Requirement]:
    """The requirements that apply to this platform when installing with ``extra``."""
    reqs = [Requirement(r) for r in requires or ()]
    return [r for r in reqs if r.marker is None or r.marker.evaluate({"extra": extra})]


def _plain_install_closure(wheel: Path) -> list[metadata.Distribution]:
    """The suite's installed distributions that ``pip install <wheel>`` would bring."""
    with zipfile.ZipFile(wheel) as zf:
        [name] = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
        meta = email.parser.Parser().parsestr(zf.read(name).decode())
    todo = [(r, "") for r in _wanted(meta.get_all("Requires-Dist"), "")]
    seen: set[tuple[str, str]] = set()
    found: dict[str, metadata.Distribution] = {}
    while todo:
        req, _ = todo.pop()
        name = canonicalize_name(req.name)
        if name not in found:
            try:
                found[name] = metadata.distribution(name)
            except metadata.PackageNotFoundError:
                pytest.fail(f"{req} (a plain install's dependency) is not in the suite's venv")
        for extra in ("", *sorted(req.extras)):
            if (name, extra) not in seen:
                seen.add((name, extra))
                todo += [(r, extra) for r in _wanted(found[name].requires, extra)]
    return list(found.values())


def _link_distributions(dists: list[metadata.Distribution], site: Path) -> None:
    for dist in dists:
        if dist.files is None:
            pytest.fail(f"{dist.metadata['Name']} has no RECORD: cannot tell its files")
        for file in dist.files:
            if PurePosixPath(file).parts[0] == "..":  # scripts in bin/: not imported
                continue
            target = site / file
            if target.exists():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(Path(dist.locate_file(file)).resolve())


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> PlainInstall:
    work = tmp_path_factory.mktemp("plain-install")
    pip = [sys.executable, "-m", "pip", "--quiet", "--disable-pip-version-check"]
    offline = ["--no-deps", "--no-index"]
    subprocess.run(
        [*pip, "wheel", *offline, "--no-build-isolation", "-w", str(work / "dist"), str(ROOT)],
        check=True,
        timeout=300,
    )
    [wheel] = (work / "dist").glob("dockyard-*.whl")
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [*pip, "--python", str(python), "install", *offline, str(wheel)],
        check=True,
        timeout=300,
    )
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    _link_distributions(_plain_install_closure(wheel), Path(site))
    # As a user's shell would have it: the venv's bin first, nothing of this suite's
    # interpreter, checkout or configuration; but for the guard that refuses real model
    # requests (a sitecustomize that imports the installed dockyard).
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DOCKYARD_", "PYTHON", "VIRTUAL_ENV", "ANTHROPIC_", "OPENAI_"))
    }
    env.update(
        PATH=f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', os.defpath)}",
        PYTHONNOUSERSITE="1",
        HOME=str(work),
    )
    return PlainInstall(venv, guarded(env))


def test_optional_packages_are_absent(plain: PlainInstall, tmp_path: Path) -> None:
    probe = (
        "import importlib.util, json, sys, dockyard\n"
        "found = [m for m in sys.argv[1:] if importlib.util.find_spec(m) is not None]\n"
        "guarded = 'dockyard.testing.model_requests' in sys.modules\n"
        "print(json.dumps({'found': found, 'dockyard': dockyard.__file__, 'guarded': guarded}))\n"
    )
    out = plain.run("python", "-c", probe, *OPTIONAL_MODULES, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["found"] == []
    assert Path(result["dockyard"]).is_relative_to(plain.venv)  # the wheel, not the checkout
    assert result["guarded"], out.stderr  # tests/subprocess_guard loaded: no real model calls


def test_init_project_serves_a_run(plain: PlainInstall, tmp_path: Path) -> None:
    init = plain.run("dockyard", "init", "x", cwd=tmp_path)
    assert init.returncode == 0, init.stderr
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(plain.venv / "bin" / "dockyard"), "serve", "--port", str(port)],
            cwd=tmp_path / "x",
            env=plain.env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(proc, url, log)
        with httpx.Client(base_url=url, timeout=60) as http:
            thread = http.post("/threads", json={})
            assert thread.status_code == 200, thread.text
            run = http.post(
                f"/threads/{thread.json()['thread_id']}/runs/wait",
                json={
                    "assistant_id": "agent",
                    "input": {"messages": [{"role": "user", "content": "where is order B2042?"}]},
                },
            )
        assert run.status_code == 200, run.text
        assert "Order B2042 has shipped" in run.json()["messages"][-1]["content"]
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    # uvicorn shuts down cleanly, then re-raises the signal it caught.
    assert proc.returncode in (0, -signal.SIGTERM), log.read_text()
    assert "Application shutdown complete" in log.read_text()
    assert "Traceback" not in log.read_text()


@pytest.mark.parametrize(
    ("env", "model", "needs"),
    [
        ({"DOCKYARD_REDIS_URL": "redis://127.0.0.1:6379/0"}, None, ("redis_url", "redis")),
        (
            {},
            "anthropic:claude-sonnet-4-6",
            ("the 'anthropic' provider", "anthropic"),
        ),
    ],
    ids=["redis_url", "anthropic-model"],
)
def test_a_setting_needing_an_extra_says_what_to_install(
    plain: PlainInstall,
    tmp_path: Path,
    env: dict[str, str],
    model: str | None,
    needs: tuple[str, str],
) -> None:
    assert plain.run("dockyard", "init", "x", cwd=tmp_path).returncode == 0
    if model is not None:
        config = tmp_path / "x" / "dockyard.yaml"
        text = config.read_text().replace("default: offline:support", f"default: {model}")
        config.write_text(text)
    serve = plain.run("dockyard", "serve", "--port", str(free_port()), cwd=tmp_path / "x", **env)
    what, extra = needs
    assert serve.returncode == 2, serve.stdout + serve.stderr
    assert serve.stderr.startswith("configuration error: ")
    assert f"{what} needs the {extra!r} package, which is not installed" in serve.stderr
    assert f'install it with: pip install "dockyard[{extra}]"' in serve.stderr
    assert "Traceback" not in serve.stderr
