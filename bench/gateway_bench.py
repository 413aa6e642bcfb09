"""Gateway overhead: dockyard's /v1/chat/completions against LiteLLM's proxy (issue 15).

Starts, on 127.0.0.1 only, a mock OpenAI server (its own process, a fixed latency per
answer), ``dockyard serve`` (one process, the mock as ``models.default`` with every
policy dockyard has on) and, given a venv holding ``litellm[proxy]``, LiteLLM's proxy
(one worker, no database, the same mock). Then, with the official ``openai`` client
(``AsyncOpenAI``, ``chat.completions.create``), it measures each target in turn in
closed-loop phases: direct to the mock, through dockyard, through LiteLLM. Every request
is distinct (dockyard's cache misses). It reports latency percentiles, what each gateway
adds over the direct call at the same concurrency, requests/s, the CPU each process used,
and issue 15's targets: dockyard's added latency at most 1/5 of LiteLLM's (p50 and p95, low
concurrency) and at least 5x its requests/s at saturation. Every process it started is
stopped by PID when it ends, also on Ctrl-C or SIGTERM.

    .venv/bin/python bench/gateway_bench.py --litellm-venv /work/wt/litellm-venv --markdown
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import yaml
from chart import ChartRow, write_svg
from deploy import _die_with_parent, free_port, fresh_redis_prefix
from machine import machine_summary, proc_tree_cpu_seconds
from stats import Sample, Summary, fmt_ms, percentile, summarize

REPO = Path(__file__).resolve().parents[1]
MOCK_MODEL = "gpt-4o-mini"
GATEWAY_MODEL = "default"  # the name under dockyard's models: and LiteLLM's model_list
MOCK_KEY = "sk-mock"
EMAIL = "hong@example.co.kr"
SYSTEM = "You are a support agent. Answer in one short sentence."
# dockyard-bare: dockyard with no policy at all, to tell the policies' cost from the path's.
# floor: bench/gateway_floor.py, a forwarder doing nothing else on the same stack (uvicorn,
# Starlette, httpx): what no Python gateway on this machine can go below.
TARGETS = ("direct", "dockyard", "dockyard-bare", "litellm", "floor")
DEFAULT_TARGETS = ("direct", "dockyard", "litellm")
STARTUP_TIMEOUT = 120.0  # LiteLLM's proxy takes 20-40 s to start on a busy 2-core machine


def dockyard_config(mock_url: str, key_file: Path, policies: bool = True) -> dict[str, Any]:
    """dockyard with every policy the gateway path has: an API key checked on every
    request (``start_dockyard`` creates it), rate limits of requests and model tokens per
    key and tenant (too high to refuse), input guard with the injection rules blocking,
    routing (one rule, always true, to the model asked for), the response cache (each
    request distinct: every call a miss, stored), PII masking both ways, retries, breaker
    and a fallback model, and budgets per key and tenant (too high to refuse: each call
    holds its estimate and settles its cost, its usage written to the ledger).
    ``policies=False``: the same model with none of them, served open (no key)."""
    model = {
        "model": f"openai:{MOCK_MODEL}",
        "base_url": mock_url,
        "api_key_file": str(key_file),
        "timeout": 30,
    }
    if not policies:
        return {"models": {GATEWAY_MODEL: model}, "auth": {"required": False}}
    never = 10**9  # a limit no benchmark reaches: checked and counted, never refused
    return {
        "models": {
            GATEWAY_MODEL: {
                **model,
                "fallbacks": ["backup"],
                "retry": {"max_attempts": 3, "timeout_seconds": 30, "deadline_seconds": 60},
                "breaker": {"failures": 5, "cooldown_seconds": 60, "failure_rate": 0.5},
            },
            "backup": model,
        },
        "policies": {
            "rate_limit": {
                "requests_per_minute": never,
                "tokens_per_minute": never,
                "tenant": {"requests_per_minute": never, "tokens_per_minute": never},
            },
            "input": {"max_chars": 20000, "max_tokens": 4000, "injection": "block"},
            "routing": {
                "tiers": {"quality": GATEWAY_MODEL},
                "rules": [{"tier": "quality", "max_chars": never}],
                "default": "quality",
            },
            "pii": {"action": "mask"},
            "cache": {"ttl_seconds": 3600},
            "budget": {
                "daily_usd": never,
                "monthly_usd": never,
                "tenant": {"daily_usd": never, "monthly_usd": never},
            },
        },
    }


def litellm_config(mock_url: str) -> dict[str, Any]:
    """LiteLLM as its docs start it: one model, no database, nothing else on."""
    return {
        "model_list": [
            {
                "model_name": GATEWAY_MODEL,
                "litellm_params": {
                    "model": f"openai/{MOCK_MODEL}",
                    "api_base": mock_url,
                    "api_key": MOCK_KEY,
                },
            }
        ],
    }


# -- processes -------------------------------------------------------------------------


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log_tail(self, chars: int = 2000) -> str:
        with contextlib.suppress(OSError):
            return self.log.read_text(errors="replace")[-chars:]
        return ""


@dataclass
class Procs:
    """The processes this benchmark started: stopped by PID, last started first."""

    workdir: Path
    items: list[Proc] = field(default_factory=list)

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> Proc:
        log = self.workdir / f"{name}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(
                argv,
                env=env,
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                # Its own session (a Ctrl-C reaches only the benchmark, which stops it), and
                # SIGTERM when the benchmark dies, even by SIGKILL.
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        proc = Proc(name, popen, log)
        self.items.append(proc)
        return proc

    def stop(self, grace: float = 10.0) -> None:
        for proc in reversed(self.items):
            if proc.popen.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.popen.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in reversed(self.items):
            try:
                proc.popen.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.popen.kill()
                proc.popen.wait(5.0)


def wait_http(proc: Proc, url: str, headers: dict[str, str] | None = None) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"{proc.name} exited at start-up:\n{proc.log_tail()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, headers=headers, timeout=2.0).status_code == 200:
                return
        time.sleep(0.25)
    raise RuntimeError(f"{proc.name} not ready after {STARTUP_TIMEOUT:g} s:\n{proc.log_tail()}")


@dataclass(frozen=True)
class Target:
    name: str
    base_url: str
    api_key: str
    model: str
    pid: int | None  # the server's process (None: direct, no server of its own)
    masks_pii: bool = False  # its answers must not hold the e-mail address sent


def litellm_binary(venv: Path | None) -> tuple[Path | None, str | None]:
    """The proxy's executable in ``venv``, or why the LiteLLM target is skipped."""
    if venv is None:
        return None, (
            "LiteLLM target skipped: no --litellm-venv given (a venv with litellm[proxy], "
            "e.g. python -m venv /tmp/litellm-venv && /tmp/litellm-venv/bin/pip install "
            "'litellm[proxy]')"
        )
    binary = venv / "bin" / "litellm"
    if not binary.exists():
        return None, (
            f"LiteLLM target skipped: {binary} does not exist (pip install 'litellm[proxy]' "
            f"into {venv})"
        )
    return binary, None


def package_version(python: Path, package: str) -> str:
    out = subprocess.run(
        [str(python), "-c", f"import importlib.metadata as m; print(m.version({package!r}))"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return out.stdout.strip() or "?"


def start_mock(procs: Procs, latency_ms: float) -> tuple[Proc, str]:
    port = free_port()
    argv = [sys.executable, "-m", "dockyard.testing.mock_providers", "--provider", "openai"]
    argv += ["--port", str(port), "--latency-ms", str(latency_ms), "--no-record"]
    proc = procs.start("mock", argv, dict(os.environ))
    url = f"http://127.0.0.1:{port}/v1"
    wait_http(proc, f"{url}/models")
    return proc, url


def start_dockyard(
    procs: Procs, mock_url: str, redis: tuple[str, str] | None, policies: bool = True
) -> Target:
    """``redis``: (URL, key prefix) for the rate limits, the cache and the breakers."""
    name = "dockyard" if policies else "dockyard-bare"
    workdir = procs.workdir
    key = workdir / "mock-key"
    key.write_text(MOCK_KEY)
    config = workdir / f"{name}.yaml"
    config.write_text(yaml.safe_dump(dockyard_config(mock_url, key, policies), sort_keys=False))
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}
    env["DOCKYARD_DATA_DIR"] = str(workdir / f"{name}-data")
    if redis is not None:
        env["DOCKYARD_REDIS_URL"], env["DOCKYARD_REDIS_PREFIX"] = redis
    api_key = "sk-unchecked"  # dockyard-bare runs open
    if policies:  # a real key, checked on every request, with a tenant
        api_key = create_key(config, env)
    port = free_port()
    argv = [sys.executable, "-m", "dockyard", "serve", "-c", str(config), "--port", str(port)]
    proc = procs.start(name, [*argv, "--host", "127.0.0.1", "--workers", "1"], env)
    url = f"http://127.0.0.1:{port}"
    wait_http(proc, f"{url}/ready")
    return Target(name, f"{url}/v1", api_key, GATEWAY_MODEL, proc.pid, masks_pii=policies)


def create_key(config: Path, env: dict[str, str]) -> str:
    """``dockyard keys create`` in the server's database (which it creates)."""
    argv = [sys.executable, "-m", "dockyard", "keys", "create", "-c", str(config)]
    out = subprocess.run(
        [*argv, "--tenant", "bench", "--name", "gateway-bench", "--json"],
        env=env,
        cwd=config.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if out.returncode != 0:
        raise RuntimeError(f"dockyard keys create failed:\n{out.stdout}{out.stderr}")
    key: str = json.loads(out.stdout)["key"]
    return key


def start_floor(procs: Procs, mock_url: str) -> Target:
    port = free_port()
    argv = [sys.executable, str(REPO / "bench" / "gateway_floor.py"), "--upstream", mock_url]
    proc = procs.start("floor", [*argv, "--port", str(port), "--key", MOCK_KEY], dict(os.environ))
    url = f"http://127.0.0.1:{port}"
    wait_http(proc, f"{url}/v1/models")
    return Target("floor", f"{url}/v1", MOCK_KEY, GATEWAY_MODEL, proc.pid)


def start_litellm(procs: Procs, binary: Path, mock_url: str) -> Target:
    workdir = procs.workdir
    config = workdir / "litellm.yaml"
    config.write_text(yaml.safe_dump(litellm_config(mock_url), sort_keys=False))
    master = f"sk-{secrets.token_hex(32)}"  # the proxy refuses to start without one
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LITELLM", "DATABASE_URL"))}
    env |= {
        "LITELLM_MASTER_KEY": master,
        # The price map ships in the package; by default it is fetched from GitHub first.
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_LOG": "ERROR",  # its production advice
        "PATH": f"{binary.parent}:{env.get('PATH', '')}",
    }
    port = free_port()
    argv = [str(binary), "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
    proc = procs.start("litellm", [*argv, "--num_workers", "1"], env)
    url = f"http://127.0.0.1:{port}"
    wait_http(proc, f"{url}/health/liveliness")
    return Target("litellm", f"{url}/v1", master, GATEWAY_MODEL, proc.pid)


# -- load ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Phase:
    target: str
    clients: int
    stream: bool
    round: int

    @property
    def mode(self) -> str:
        return "stream" if self.stream else "non-stream"


@dataclass
class PhaseResult:
    phase: Phase
    summary: Summary
    cpu: dict[str, float]  # process name -> % of one core over the measured phase
    latencies: list[float] = field(default_factory=list)  # successful requests, seconds
    ttfts: list[float] = field(default_factory=list)  # first content chunk (stream only)


class Requests:
    """Distinct requests: a counter and a per-run tag in the user message, so no gateway
    answers one from a cache. The message holds an e-mail address and a phone number
    for PII masking to find (the mock echoes it, so the answer holds them too)."""

    def __init__(self) -> None:
        self.tag = secrets.token_hex(4)
        self.n = 0

    def next(self) -> list[dict[str, str]]:
        self.n += 1
        text = (
            f"Order {self.tag}-{self.n} has not arrived. Mail me at {EMAIL} "
            "or call 010-1234-5678 after 6 pm."
        )
        return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": text}]


async def one_request(
    client: Any, target: Target, messages: list[dict[str, str]], stream: bool
) -> Sample:
    start_wall = time.time()
    t0 = time.perf_counter()
    first: float | None = None
    try:
        if stream:
            chunks = await client.chat.completions.create(
                model=target.model, messages=messages, temperature=0, max_tokens=64, stream=True
            )
            text = []
            async for chunk in chunks:
                delta = chunk.choices[0].delta.content if chunk.choices else None
                if delta:
                    if first is None:
                        first = time.perf_counter() - t0
                    text.append(delta)
            answer = "".join(text)
        else:
            reply = await client.chat.completions.create(
                model=target.model, messages=messages, temperature=0, max_tokens=64
            )
            answer = reply.choices[0].message.content or ""
        if not answer:
            raise RuntimeError("empty answer")
        if target.masks_pii and EMAIL in answer:
            raise RuntimeError("PII not masked: the policies are not on")
        error = None
    except Exception as exc:  # an error is a result: counted, never raised
        error = f"{type(exc).__name__}: {exc}"
    latency = time.perf_counter() - t0
    return Sample(start_wall, time.time(), latency, first, first, error)


def cpu_snapshot(pids: dict[str, int]) -> dict[str, float | None]:
    """CPU seconds of each server's process tree, and of this process alone (the client:
    the servers are its children, so its own tree would count them)."""
    out = {name: proc_tree_cpu_seconds(pid) for name, pid in pids.items()}
    return out | {"client": time.process_time()}


async def run_phase(
    phase: Phase,
    target: Target,
    requests: Requests,
    seconds: float,
    warmup: float,
    pids: dict[str, int],
) -> PhaseResult:
    import openai

    client = openai.AsyncOpenAI(
        base_url=target.base_url, api_key=target.api_key, max_retries=0, timeout=30.0
    )
    samples: list[Sample] = []
    begin = time.time()
    measure_start = begin + warmup
    deadline = measure_start + seconds
    snapshots: list[tuple[float, dict[str, float | None]]] = []

    async def snapshot_at_start() -> None:
        await asyncio.sleep(warmup)
        snapshots.append((time.time(), cpu_snapshot(pids)))

    async def loop() -> None:
        while time.time() < deadline:
            sample = await one_request(client, target, requests.next(), phase.stream)
            if sample.start >= measure_start:
                samples.append(sample)

    async with client:
        # Each request times out after 30 s, so a phase ends by itself even if a server hangs.
        await asyncio.gather(snapshot_at_start(), *(loop() for _ in range(phase.clients)))
    end = time.time()
    first_at, first = snapshots[0]
    last = cpu_snapshot(pids)
    cpu: dict[str, float] = {}
    for name, value in last.items():
        before = first.get(name)
        if value is not None and before is not None and end > first_at:
            cpu[name] = 100.0 * (value - before) / (end - first_at)
    good = [s for s in samples if s.ok]
    return PhaseResult(
        phase,
        summarize(samples, measure_start, seconds),
        cpu,
        [s.latency for s in good],
        [s.first_event for s in good if s.first_event is not None],
    )


def phases(
    targets: Sequence[str], clients: Sequence[int], modes: Sequence[bool], rounds: int
) -> list[Phase]:
    """Every target at each concurrency in turn (direct, dockyard, LiteLLM, then the next
    concurrency), so a change of the machine's load over time touches all three alike."""
    return [
        Phase(t, c, s, r)
        for r in range(1, rounds + 1)
        for s in modes
        for c in clients
        for t in targets
    ]


# -- report ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    target: str
    clients: int
    mode: str
    requests: int
    errors: int
    rps: float
    p50: float | None
    p95: float | None
    p99: float | None
    ttft_p50: float | None
    added_p50: float | None
    added_p95: float | None
    cpu: dict[str, float]
    first_error: str | None


def added(latencies: Sequence[float], direct: Sequence[float], q: float) -> float | None:
    """What a gateway adds at percentile ``q``: its percentile minus the direct call's."""
    mine, base = percentile(latencies, q), percentile(direct, q)
    return None if mine is None or base is None else mine - base


def rows_of(results: Sequence[PhaseResult]) -> list[Row]:
    """One row per (target, clients, mode), over every round: latencies pooled, req/s the
    mean of the rounds, added latency against the direct row of the same clients and mode."""
    groups: dict[tuple[str, int, str], list[PhaseResult]] = {}
    for res in results:
        p = res.phase
        groups.setdefault((p.target, p.clients, p.mode), []).append(res)
    latencies = {key: [x for r in group for x in r.latencies] for key, group in groups.items()}
    rows: list[Row] = []
    for (target, clients, mode), group in groups.items():
        lat = latencies[(target, clients, mode)]
        direct = latencies.get(("direct", clients, mode)) if target != "direct" else None
        ttft = [x for r in group for x in r.ttfts]
        cpu: dict[str, float] = {}
        for name in {n for r in group for n in r.cpu}:
            values = [r.cpu[name] for r in group if name in r.cpu]
            cpu[name] = sum(values) / len(values)
        rows.append(
            Row(
                target=target,
                clients=clients,
                mode=mode,
                requests=sum(r.summary.ok for r in group),
                errors=sum(r.summary.errors for r in group),
                rps=sum(r.summary.runs_per_s for r in group) / len(group),
                p50=percentile(lat, 50),
                p95=percentile(lat, 95),
                p99=percentile(lat, 99),
                ttft_p50=percentile(ttft, 50),
                added_p50=None if direct is None else added(lat, direct, 50),
                added_p95=None if direct is None else added(lat, direct, 95),
                cpu=cpu,
                first_error=next((r.summary.first_error for r in group if r.summary.errors), None),
            )
        )
    return rows


@dataclass(frozen=True)
class Verdict:
    what: str
    dockyard: float
    litellm: float
    target: str
    met: bool


def verdicts(rows: Sequence[Row], low: Sequence[int], saturation: int) -> list[Verdict]:
    """Issue 15's targets, where both gateways were measured."""
    by = {(r.target, r.clients, r.mode): r for r in rows}
    out: list[Verdict] = []
    for mode in sorted({r.mode for r in rows}):
        for c in low:
            dy, ll = by.get(("dockyard", c, mode)), by.get(("litellm", c, mode))
            if dy is None or ll is None:
                continue
            for q, a, b in (
                ("p50", dy.added_p50, ll.added_p50),
                ("p95", dy.added_p95, ll.added_p95),
            ):
                if a is None or b is None:
                    continue
                out.append(
                    Verdict(
                        f"added latency {q}, {c} client{'s' * (c > 1)}, {mode} (ms)",
                        a * 1000,
                        b * 1000,
                        "dockyard <= 1/5 LiteLLM",
                        a <= b / 5,
                    )
                )
        dy, ll = by.get(("dockyard", saturation, mode)), by.get(("litellm", saturation, mode))
        if dy is not None and ll is not None:
            out.append(
                Verdict(
                    f"requests/s at {saturation} clients, {mode}",
                    dy.rps,
                    ll.rps,
                    "dockyard >= 5x LiteLLM",
                    dy.rps >= 5 * ll.rps,
                )
            )
    return out


def fmt_added(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds * 1000:+.1f}"


def table(rows: Sequence[Row]) -> str:
    head = (
        "| target | clients | mode | requests | req/s | latency p50 / p95 / p99 (ms) "
        "| added p50 / p95 (ms) | first token p50 (ms) | errors | server CPU % | server CPU "
        "ms / request | mock, client CPU % |"
    )
    lines = [head, "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    order = {t: i for i, t in enumerate(TARGETS)}
    for r in sorted(rows, key=lambda r: (r.mode, r.clients, order.get(r.target, 9))):
        lat = f"{fmt_ms(r.p50)} / {fmt_ms(r.p95)} / {fmt_ms(r.p99)}"
        added = (
            "-" if r.target == "direct" else f"{fmt_added(r.added_p50)} / {fmt_added(r.added_p95)}"
        )
        server, per_request = "-", "-"
        if r.target in r.cpu:
            server = f"{r.cpu[r.target]:.0f}"
            if r.rps > 0:  # % of a core / (requests / s) = core-seconds per request
                per_request = f"{r.cpu[r.target] * 10 / r.rps:.1f}"
        others = f"{r.cpu.get('mock', 0):.0f}, {r.cpu.get('client', 0):.0f}"
        lines.append(
            f"| {r.target} | {r.clients} | {r.mode} | {r.requests} | {r.rps:.1f} | {lat} "
            f"| {added} | {fmt_ms(r.ttft_p50)} | {r.errors} | {server} | {per_request} "
            f"| {others} |"
        )
    return "\n".join(lines)


def verdict_table(items: Sequence[Verdict]) -> str:
    lines = ["| measure | dockyard | LiteLLM | target | met |", "|---|---:|---:|---|---|"]
    for v in items:
        lines.append(
            f"| {v.what} | {v.dockyard:.1f} | {v.litellm:.1f} | {v.target} "
            f"| {'yes' if v.met else '**no**'} |"
        )
    return "\n".join(lines)


def chart_rows(rows: Sequence[Row], clients: Sequence[int]) -> list[ChartRow]:
    """Latency of the rows at ``clients`` (the low concurrency levels: the seconds of a
    saturated LiteLLM would squash every other bar)."""
    order = {t: i for i, t in enumerate(TARGETS)}
    return [
        ChartRow(
            f"{r.target} · {r.clients} client{'s' * (r.clients > 1)} · {r.mode}",
            None if r.p50 is None else r.p50 * 1000,
            None if r.p95 is None else r.p95 * 1000,
            None if r.p99 is None else r.p99 * 1000,
        )
        for r in sorted(rows, key=lambda r: (r.mode, r.clients, order.get(r.target, 9)))
        if r.clients in clients
    ]


# -- main ------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="gateway_bench.py",
        description=(
            "Latency and requests/s of an OpenAI chat completion direct to a mock provider, "
            "through dockyard's gateway (every policy on) and through LiteLLM's proxy."
        ),
    )
    p.add_argument(
        "--litellm-venv",
        type=Path,
        default=None,
        help="a venv holding litellm[proxy] (never dockyard's own); without it the LiteLLM "
        "target is skipped",
    )
    p.add_argument(
        "--targets",
        default=",".join(DEFAULT_TARGETS),
        help=f"comma-separated, of {', '.join(TARGETS)} (default: {','.join(DEFAULT_TARGETS)})",
    )
    p.add_argument("--latency-ms", type=float, default=20.0, help="the mock's latency (20)")
    p.add_argument("--low-clients", default="1,4", help="low concurrency levels (1,4)")
    p.add_argument("--saturation-clients", type=int, default=64, help="saturation level (64)")
    p.add_argument("--seconds", type=float, default=10.0, help="measured seconds per phase (10)")
    p.add_argument("--warmup", type=float, default=2.0, help="discarded seconds per phase (2)")
    p.add_argument("--rounds", type=int, default=1, help="repeat every phase, alternating (1)")
    p.add_argument("--stream", action="store_true", help="also measure streamed completions")
    p.add_argument(
        "--dockyard-redis-url",
        default=None,
        help="run dockyard's rate limits, cache and breaker in this Redis (fresh key prefix)",
    )
    p.add_argument("--json", type=Path, default=None, help="write the rows as JSON here")
    p.add_argument("--chart", type=Path, default=None, help="SVG chart of latency per row")
    p.add_argument("--markdown", action="store_true", help="print command, machine and date")
    p.add_argument("--keep", type=Path, default=None, help="keep configs and logs in this folder")
    args = p.parse_args(argv)
    args.targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    unknown = sorted(set(args.targets) - set(TARGETS))
    if unknown:
        p.error(f"unknown target(s) {', '.join(unknown)}: choose from {', '.join(TARGETS)}")
    try:
        args.low = [int(c) for c in args.low_clients.split(",") if c.strip()]
    except ValueError:
        p.error(f"--low-clients {args.low_clients!r}: comma-separated whole numbers")
    if any(c < 1 for c in [*args.low, args.saturation_clients]) or args.rounds < 1:
        p.error("clients and rounds must be >= 1")
    if args.seconds <= 0 or args.warmup < 0 or args.latency_ms < 0:
        p.error("--seconds must be > 0, --warmup and --latency-ms >= 0")
    return args


@contextlib.contextmanager
def workdir(keep: Path | None) -> Iterator[Path]:
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep
        return
    with tempfile.TemporaryDirectory(prefix="gateway-bench-") as tmp:
        yield Path(tmp)


def _stop_on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # unwinds through the finally that stops every process


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    targets: list[str] = list(args.targets)
    binary = None
    if "litellm" in targets:
        binary, why = litellm_binary(args.litellm_venv)
        if why is not None:
            print(why, file=sys.stderr)
            targets.remove("litellm")
    with contextlib.ExitStack() as stack:
        wd = stack.enter_context(workdir(args.keep))
        redis = None
        if args.dockyard_redis_url is not None:  # its keys are deleted afterwards
            prefix = stack.enter_context(fresh_redis_prefix(args.dockyard_redis_url))
            redis = (args.dockyard_redis_url, prefix)
        procs = Procs(wd)
        try:
            mock, mock_url = start_mock(procs, args.latency_ms)
            started: dict[str, Target] = {
                "direct": Target("direct", mock_url, MOCK_KEY, MOCK_MODEL, None)
            }
            if "dockyard" in targets:
                started["dockyard"] = start_dockyard(procs, mock_url, redis)
            if "dockyard-bare" in targets:
                started["dockyard-bare"] = start_dockyard(procs, mock_url, None, policies=False)
            if "floor" in targets:
                started["floor"] = start_floor(procs, mock_url)
            if binary is not None:
                started["litellm"] = start_litellm(procs, binary, mock_url)
            pids = {"mock": mock.pid}
            pids |= {t.name: t.pid for t in started.values() if t.pid is not None}
            results = asyncio.run(measure(args, targets, started, pids))
        finally:
            procs.stop()
    rows = rows_of(results)
    report(args, rows, binary, argv)
    return 0 if all(r.requests > 0 for r in rows) else 1


async def measure(
    args: argparse.Namespace, targets: list[str], started: dict[str, Target], pids: dict[str, int]
) -> list[PhaseResult]:
    requests = Requests()
    clients = [*args.low, args.saturation_clients]
    modes = [False, True] if args.stream else [False]
    plan = phases(targets, clients, modes, args.rounds)
    await prime(started, targets, requests, modes)
    results = []
    for i, phase in enumerate(plan, 1):
        print(
            f"[{i}/{len(plan)}] {phase.target}, {phase.clients} clients, {phase.mode}, "
            f"round {phase.round} ...",
            file=sys.stderr,
            flush=True,
        )
        result = await run_phase(
            phase, started[phase.target], requests, args.seconds, args.warmup, pids
        )
        print(
            f"    {result.summary.ok} ok, {result.summary.errors} errors, "
            f"{result.summary.runs_per_s:.1f} req/s, p50 {fmt_ms(result.summary.latency.p50)} ms",
            file=sys.stderr,
            flush=True,
        )
        results.append(result)
    return results


async def prime(
    started: dict[str, Target], targets: list[str], requests: Requests, modes: list[bool]
) -> None:
    """One untimed request per target and mode before any phase: a server's first call
    loads its provider SDK and opens its connections, which is start-up, not the steady
    state a phase measures (a short warm-up could otherwise end before it does)."""
    import openai

    for name in targets:
        target = started[name]
        client = openai.AsyncOpenAI(
            base_url=target.base_url, api_key=target.api_key, max_retries=0, timeout=30.0
        )
        async with client:
            for stream in modes:
                await one_request(client, target, requests.next(), stream)


def report(
    args: argparse.Namespace, rows: list[Row], binary: Path | None, argv: list[str] | None
) -> None:
    found = verdicts(rows, args.low, args.saturation_clients)
    if args.markdown:
        command = " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
        versions = f"openai {package_version(Path(sys.executable), 'openai')}"
        if binary is not None:
            litellm = package_version(binary.parent / "python", "litellm")
            versions += f", litellm {litellm}"
        print(f"- **Command:** `python bench/gateway_bench.py {command}`")
        print(
            f"- **Machine:** {machine_summary()}; load average {os.getloadavg()[0]:.1f} at the end"
        )
        when = f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
        print(f"- **Date:** {when}; dockyard at {git_rev()}; {versions}")
        print(
            f"- **Mock:** OpenAI chat completions, {args.latency_ms:g} ms per answer, own process; "
            f"phases of {args.warmup:g} s warm-up + {args.seconds:g} s, closed loop, "
            f"{args.rounds} round(s)\n"
        )
    print(table(rows))
    if found:
        print()
        print(verdict_table(found))
    for r in rows:
        if r.first_error:
            print(f"\nfirst error of {r.target} ({r.clients} clients, {r.mode}): {r.first_error}")
    if args.json is not None:
        payload = {
            "meta": {
                "argv": argv if argv is not None else sys.argv[1:],
                "machine": machine_summary(),
            },
            "rows": [r.__dict__ for r in rows],
            "verdicts": [v.__dict__ for v in found],
        }
        args.json.write_text(json.dumps(payload, indent=1))
    if args.chart is not None:
        title = f"Chat completion latency, {args.latency_ms:g} ms mock (ms)"
        write_svg(args.chart, chart_rows(rows, args.low), title)


def git_rev() -> str:
    out = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    return out.stdout.strip() or "?"


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted: every process it started is stopped", file=sys.stderr)
        sys.exit(130)
