"""Two server processes on PostgreSQL and Redis: a label moved or rolled back by the CLI
(another process, straight to the database) is served by both, and used by their runs,
without a restart. How fast is measured in bench/prompt_bench.py (docs/perf.md); here
only that it happens, within a generous bound."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from langgraph_sdk import get_sync_client

from tests.cluster import Cluster, Proc, cluster

PROJECT = Path(__file__).parent / "project"
NAME = "ticket-summary"


def prompts_cli(c: Cluster, *args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "dockyard", "prompts", *args, "-c", str(c.config)],
        env=c.env,
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode()


def served(proc: Proc) -> int:
    r = httpx.get(
        f"{proc.url}/prompts/{NAME}", params={"label": "production", "cached": True}, timeout=10
    )
    assert r.status_code == 200, r.text
    version: int = r.json()["version"]
    return version


def until_served(procs: list[Proc], version: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        now = {p.port: served(p) for p in procs}
        if all(v == version for v in now.values()):
            return
        assert time.monotonic() < deadline, f"still serving {now}, not {version}"
        time.sleep(0.05)


def run_text(proc: Proc) -> Any:
    client = get_sync_client(url=proc.url)
    values = client.runs.wait(None, "summarize", input={"ticket": "t"})
    return values["text"]  # type: ignore[index]


def test_a_rollback_reaches_every_process(tmp_path: Path) -> None:
    with cluster(tmp_path, apis=0, workers=0, config=PROJECT / "dockyard.yaml") as c:
        procs = [c.start_api(executes=True) for _ in range(2)]
        for p in procs:
            c.wait_ready(p)
        # Both pushed the project file at start: one version, labelled once.
        until_served(procs, 1)
        v2 = tmp_path / "v2.yaml"
        v2.write_text(
            (PROJECT / "prompts" / "ticket-summary.yaml")
            .read_text()
            .replace("Summarize this ticket:", "TL;DR:")
        )
        prompts_cli(c, "push", str(v2), "-m", "v2")
        until_served(procs, 2)
        assert {run_text(p) for p in procs} == {"TL;DR: t"}

        prompts_cli(c, "rollback", NAME)
        until_served(procs, 1)
        assert {run_text(p) for p in procs} == {"Summarize this ticket: t"}
        history = httpx.get(f"{procs[0].url}/prompts/{NAME}/history").json()
        assert [(m["kind"], m["to_version"]) for m in history] == [
            ("set", 1),
            ("set", 2),
            ("rollback", 1),
        ]


def test_an_api_write_reaches_the_other_process_through_redis(tmp_path: Path) -> None:
    # Polls every 60 s: within the 20 s allowed here only the Redis notice can tell B.
    with cluster(
        tmp_path,
        apis=2,
        workers=0,
        config=PROJECT / "dockyard.yaml",
        prompts__refresh_seconds="60",
    ) as c:
        a, b = c.apis
        create = ["keys", "create", "--tenant", "ops", "--scopes", "admin", "--json"]
        done = subprocess.run(
            [sys.executable, "-m", "dockyard", *create, "-c", str(c.config)],
            env=c.env,
            capture_output=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr.decode()
        headers = {"x-api-key": json.loads(done.stdout)["key"]}
        r = httpx.post(
            f"{a.url}/prompts/{NAME}/versions",
            headers=headers,
            json={
                "type": "text",
                "template": "TL;DR: {{ ticket }}",
                "sample": {"ticket": "x"},
                "labels": ["production"],
            },
            timeout=30,
        )
        assert r.status_code == 201, r.text
        until_served([a, b], 2, timeout=20)
        r = httpx.post(
            f"{a.url}/prompts/{NAME}/labels/production/rollback", headers=headers, timeout=30
        )
        assert r.status_code == 200, r.text
        until_served([a, b], 1, timeout=20)
