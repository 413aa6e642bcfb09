"""What metrics, logs and traces cost a run: A/B of the trivial graph in one run.

    .venv/bin/python bench/observability_bench.py [--rounds 4] [--duration 10] [--clients 20]
        [--kinds wait,stream] [--variants off,on,on+otlp,on+otlp@0.1] [--markdown] [--json PATH]

Starts one embedded dockyard per variant on 127.0.0.1 (bench/langgraph.json, auth off),
all at once, plus a local OTLP/HTTP receiver that accepts and counts trace exports; then
drives each server in turn with ``agent_server_bench.py`` (the lean client, closed loop),
alternating the variants round by round so that the machine's drift falls on all of them
alike. Variants:

* ``off``: metrics, JSON logs and traces switched off (``observability.*.enabled: false``);
* ``on``: the defaults (metrics and JSON logs on, tracing on with no exporter, so no SDK);
* ``on+otlp``: the defaults plus an OTLP exporter to the local receiver (every span
  recorded, batched and sent).

Reported per variant: runs/s and the server's CPU per run (ms), each round and the mean,
and the overhead against ``off``. The target (issue 16): under 5% of the trivial graph's
runs/s. Nothing is asserted; the numbers go to docs/perf.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import yaml
from deploy import _die_with_parent, free_port
from machine import machine_summary

BENCH = Path(__file__).resolve().parent
STARTUP_TIMEOUT = 90.0


class _Receiver(BaseHTTPRequestHandler):
    """OTLP/HTTP collector stand-in: 200 to every export, counting bytes and requests."""

    exports = 0
    bytes = 0

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        self.rfile.read(length)
        type(self).exports += 1
        type(self).bytes += length
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return None


def start_receiver() -> tuple[ThreadingHTTPServer, str]:
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host, port = server.server_address[:2]
    return server, f"http://{host}:{port}"


def variants(otlp_url: str) -> dict[str, dict[str, Any]]:
    off = {
        "metrics": {"enabled": False},
        "logs": {"enabled": False},
        "traces": {"enabled": False},
    }
    return {
        "off": {"observability": off},
        "on": {},
        "on+otlp": {"observability": {"traces": {"endpoint": otlp_url}}},
        # A busy deployment's setting: one trace in ten recorded and exported.
        "on+otlp@0.1": {
            "observability": {"traces": {"endpoint": otlp_url, "sample_ratio": 0.1}}
        },
    }


@dataclass
class Server:
    name: str
    port: int
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Results:
    # variant -> kind -> list of (runs/s, server CPU ms per run) per round
    rows: dict[str, dict[str, list[tuple[float, float]]]] = field(default_factory=dict)

    def add(self, variant: str, kind: str, rps: float, cpu_ms: float) -> None:
        self.rows.setdefault(variant, {}).setdefault(kind, []).append((rps, cpu_ms))


def start_server(name: str, extra: dict[str, Any], workdir: Path) -> Server:
    config = {
        "graphs": {"trivial": str(BENCH / "graphs.py") + ":trivial"},
        "auth": {"required": False},
        "data_dir": str(workdir / f"data-{name}"),
        **extra,
    }
    path = workdir / f"{name.replace('+', '_')}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    port = free_port()
    log = workdir / f"{name.replace('+', '_')}.log"
    with log.open("wb") as out:
        popen = subprocess.Popen(
            [sys.executable, "-m", "dockyard", "serve", "-c", str(path), "--port", str(port)],
            cwd=BENCH,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
    return Server(name, port, popen, log)


def wait_ready(server: Server) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if server.popen.poll() is not None:
            raise RuntimeError(f"{server.name} exited:\n{server.log.read_text()[-2000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(server.url + "/ok", timeout=2).status_code == 200:
                return
        time.sleep(0.25)
    raise RuntimeError(f"{server.name} not ready after {STARTUP_TIMEOUT:g} s")


def measure(server: Server, kind: str, args: argparse.Namespace, out: Path) -> tuple[float, float]:
    argv = [
        sys.executable,
        str(BENCH / "agent_server_bench.py"),
        "--url",
        server.url,
        "--clients",
        str(args.clients),
        "--duration",
        str(args.duration),
        "--warmup",
        str(args.warmup),
        "--graph",
        "trivial",
        "--kind",
        kind,
        "--client",
        "lean",
        "--server-pid",
        str(server.popen.pid),
        "--no-samples",
        "--json",
        str(out),
    ]
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    scenario = json.loads(out.read_text())["scenarios"][0]
    summary = scenario["summary"]
    if summary["errors"]:
        print(f"  {server.name} {kind}: {summary['errors']} errors", file=sys.stderr)
    cpu = scenario["server_cpu_seconds"] or 0.0
    ok = max(1, summary["ok"])
    return summary["runs_per_s"], 1000.0 * cpu / ok


def report(results: Results, kinds: list[str], args: argparse.Namespace) -> str:
    lines = []
    if args.markdown:
        lines += [
            f"- **Command:** `python bench/observability_bench.py {' '.join(sys.argv[1:])}`",
            f"- **Machine:** {machine_summary()}",
            f"- **Date:** {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
            "",
        ]
    lines += [
        "| variant | kind | runs/s per round | mean runs/s | vs off | server CPU ms/run (mean) "
        "| vs off |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for kind in kinds:
        base = results.rows.get("off", {}).get(kind, [])
        base_rps = statistics.mean(r for r, _ in base) if base else None
        base_cpu = statistics.mean(c for _, c in base) if base else None
        for variant, by_kind in results.rows.items():
            rounds = by_kind.get(kind, [])
            if not rounds:
                continue
            rps = statistics.mean(r for r, _ in rounds)
            cpu = statistics.mean(c for _, c in rounds)
            d_rps = f"{100 * (rps / base_rps - 1):+.1f}%" if base_rps else "-"
            d_cpu = f"{100 * (cpu / base_cpu - 1):+.1f}%" if base_cpu else "-"
            per = " / ".join(f"{r:.1f}" for r, _ in rounds)
            lines.append(
                f"| {variant} | {kind} | {per} | {rps:.1f} | {d_rps} | {cpu:.2f} | {d_cpu} |"
            )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--kinds", default="wait,stream")
    parser.add_argument("--variants", default="off,on,on+otlp")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    kinds = args.kinds.split(",")
    receiver, otlp_url = start_receiver()
    chosen = {k: v for k, v in variants(otlp_url).items() if k in args.variants.split(",")}
    results = Results()
    with tempfile.TemporaryDirectory(prefix="obs-bench-") as tmp:
        workdir = Path(tmp)
        servers = [start_server(name, extra, workdir) for name, extra in chosen.items()]
        try:
            for server in servers:
                wait_ready(server)
            for rnd in range(args.rounds):
                # Alternate the order too: the first server of a round is not always one.
                order = servers if rnd % 2 == 0 else list(reversed(servers))
                for kind in kinds:
                    for server in order:
                        rps, cpu = measure(server, kind, args, workdir / "run.json")
                        results.add(server.name, kind, rps, cpu)
                        print(
                            f"round {rnd + 1} {server.name:8} {kind:6} {rps:7.1f} runs/s "
                            f"{cpu:6.2f} ms CPU/run",
                            file=sys.stderr,
                        )
        finally:
            for server in servers:
                server.popen.terminate()
            for server in servers:
                try:
                    server.popen.wait(15)
                except subprocess.TimeoutExpired:
                    server.popen.kill()
            receiver.shutdown()
    print(report(results, kinds, args))
    print(f"\nOTLP exports received: {_Receiver.exports} ({_Receiver.bytes} bytes)")
    if args.json is not None:
        args.json.write_text(json.dumps(results.rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
