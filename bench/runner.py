"""Load generation: N concurrent langgraph-sdk clients, in one process or spread over K."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing as mp
import queue
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import httpx
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient
from lean_client import LeanClient
from machine import procs_cpu_seconds
from spread import client_offsets, client_url
from stats import Sample

Kind = Literal["wait", "stream"]
ClientKind = Literal["sdk", "lean"]
Client = LangGraphClient | LeanClient

# How long a worker may take to import, connect and create its threads before the start signal.
SETUP_TIMEOUT = 60.0
# Gap between the start signal and the first request, so every process starts together.
START_DELAY = 0.3


@dataclass(frozen=True, slots=True)
class Scenario:
    graph: str  # assistant id (a graph id works as assistant id)
    kind: Kind
    stateful: bool
    input: dict[str, Any]

    @property
    def name(self) -> str:
        return f"{self.graph} · {self.kind} · {'stateful' if self.stateful else 'stateless'}"


@dataclass(frozen=True, slots=True)
class LoadSpec:
    url: str  # as given on the command line (shown in reports)
    clients: int
    warmup: float
    duration: float | None  # seconds of measured phase, or None with ``runs``
    runs: int | None  # measured runs in total, or None with ``duration``
    timeout: float  # per-run timeout; a run over it is an error
    stream_mode: str
    max_duration: float  # hard cap on the measured phase in --runs mode
    api_key: str | None = None
    # Servers the clients talk to, round-robin over all clients (empty: just ``url``).
    urls: tuple[str, ...] = ()
    # Open loop: runs start at this many per second in total, whatever the latency, on
    # at most ``clients`` clients at a time. None: each client starts its next run when
    # its last one ends (closed loop).
    rate: float | None = None
    # "sdk": langgraph-sdk's client; "lean": lean_client.LeanClient, the same requests at a
    # fraction of the CPU (for a load generator that shares the cores with the servers).
    client: ClientKind = "sdk"

    def url_of(self, client_index: int) -> str:
        return client_url(self.urls or (self.url,), client_index)


@dataclass(slots=True)
class WorkerResult:
    samples: list[Sample] = field(default_factory=list)
    cpu_seconds: float = 0.0  # this process' CPU time during the measured phase
    setup_error: str | None = None


@dataclass(frozen=True, slots=True)
class ScenarioResult:
    scenario: Scenario
    samples: list[Sample]
    measure_start: float  # wall clock
    measure_min_wall: float  # the planned measured duration (0 in --runs mode)
    processes: int
    client_cpu_seconds: float
    server_cpu_seconds: float | None
    setup_errors: list[str]


@dataclass(frozen=True, slots=True)
class Progress:
    phase: Literal["setup", "warmup", "measure", "drain"]
    elapsed: float  # seconds since the start signal
    done: int  # measured runs finished
    errors: int


class IntCell(Protocol):
    value: int


@dataclass(slots=True)
class LocalCell:
    value: int = 0


ProgressFn = Callable[[Progress], None]


def split(total: int, parts: int) -> list[int]:
    """Split ``total`` into ``parts`` near-equal non-negative integers (larger first)."""
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().replace("\n", " ")
    return f"{type(exc).__name__}: {text}"[:300] if text else type(exc).__name__


async def one_run(
    client: Client,
    thread_id: str | None,
    scenario: Scenario,
    spec: LoadSpec,
    late: float = 0.0,
) -> Sample:
    """Start one run, consume it fully, time it. Never raises (except on cancellation).

    ``late``: how long after its scheduled start the run began (open loop); it counts in
    its latencies, so that a client pool that cannot keep up shows as latency."""
    start_wall = time.time() - late
    t0 = time.perf_counter() - late
    first_event: float | None = None
    first_data: float | None = None
    error: str | None = None
    try:
        async with asyncio.timeout(spec.timeout):
            if scenario.kind == "wait":
                result = await client.runs.wait(
                    thread_id, scenario.graph, input=scenario.input, raise_error=True
                )
                if not isinstance(result, dict):
                    error = f"BadOutput: runs.wait returned {type(result).__name__}"
            else:
                async for part in client.runs.stream(
                    thread_id,
                    scenario.graph,
                    input=scenario.input,
                    stream_mode=spec.stream_mode,  # type: ignore[arg-type]
                ):
                    now = time.perf_counter() - t0
                    if first_event is None:
                        first_event = now
                    if part.event == "error":
                        error = f"StreamError: {part.data}"[:300]
                    elif first_data is None and part.event != "metadata":
                        first_data = now
                if error is None and first_data is None:
                    error = "BadOutput: stream had no data event"
    except TimeoutError:
        error = f"Timeout: run exceeded {spec.timeout:g}s"
    except Exception as exc:  # counted, reported, never fatal
        error = _describe(exc)
    latency = time.perf_counter() - t0
    return Sample(
        start=start_wall,
        end=start_wall + latency,
        latency=latency,
        first_event=first_event,
        first_data=first_data,
        error=error,
    )


def _client(spec: LoadSpec, index: int) -> Client:
    """A langgraph-sdk client, or the lean one with the same calls (see lean_client)."""
    url = spec.url_of(index)
    if spec.client == "lean":
        return LeanClient(url, spec.api_key)
    return get_client(url=url, api_key=spec.api_key, timeout=httpx.Timeout(spec.timeout))


async def run_clients(
    scenario: Scenario,
    spec: LoadSpec,
    n_clients: int,
    runs_budget: int | None,
    wait_for_start: Callable[[], Awaitable[float]],
    done: IntCell,
    errors: IntCell,
    first_client: int = 0,
) -> WorkerResult:
    """Run ``n_clients`` client loops in this event loop; returns the measured samples.

    ``wait_for_start`` is awaited once every client is ready; it returns the wall-clock start
    time. Warm-up runs (started before start + warmup) are discarded. ``first_client`` is the
    global index of this process' first client, for the round-robin over ``spec.urls``.
    """
    result = WorkerResult()
    clients = [_client(spec, first_client + i) for i in range(n_clients)]
    thread_ids: list[str | None] = [None] * n_clients
    try:
        if scenario.stateful:
            try:
                async with asyncio.timeout(SETUP_TIMEOUT):
                    threads = await asyncio.gather(*(c.threads.create() for c in clients))
                thread_ids = [t["thread_id"] for t in threads]
            except Exception as exc:
                result.setup_error = f"creating threads: {_describe(exc)}"
        t_start = await wait_for_start()
        if result.setup_error is not None:
            return result
        warmup_end = t_start + spec.warmup
        cap = spec.duration if spec.duration is not None else spec.max_duration
        measure_end = warmup_end + cap
        remaining = [runs_budget]  # shared by this process' clients in --runs mode
        cpu_at_measure: list[float] = []

        def may_start(measured: bool) -> bool:
            """Account for a run about to start; False when --runs' budget is spent."""
            if measured:
                if not cpu_at_measure:
                    cpu_at_measure.append(time.process_time())
                if remaining[0] is not None:
                    if remaining[0] <= 0:
                        return False
                    remaining[0] -= 1
            return True

        def record(sample: Sample) -> None:
            result.samples.append(sample)
            done.value += 1
            if not sample.ok:
                errors.value += 1

        async def loop(i: int) -> None:
            await asyncio.sleep(max(0.0, t_start - time.time()))
            while (now := time.time()) < measure_end:
                measured = now >= warmup_end
                if not may_start(measured):
                    return
                sample = await one_run(clients[i], thread_ids[i], scenario, spec)
                if measured:
                    record(sample)

        async def open_loop() -> None:
            # This process's share of the rate; its schedule interleaves with the others'.
            assert spec.rate is not None
            interval = spec.clients / (spec.rate * n_clients)
            offset = first_client / spec.clients * interval
            idle: asyncio.Queue[int] = asyncio.Queue()
            for i in range(n_clients):
                idle.put_nowait(i)
            running: set[asyncio.Task[None]] = set()

            async def run(i: int, due: float, measured: bool) -> None:
                try:
                    sample = await one_run(
                        clients[i], thread_ids[i], scenario, spec, max(0.0, time.time() - due)
                    )
                    if measured:
                        record(sample)
                finally:
                    idle.put_nowait(i)

            k = 0
            while (due := t_start + offset + k * interval) < measure_end:
                k += 1
                await asyncio.sleep(max(0.0, due - time.time()))
                measured = due >= warmup_end
                if not may_start(measured):
                    break
                i = await idle.get()  # every client busy: this run starts late
                task = asyncio.create_task(run(i, due, measured))
                running.add(task)
                task.add_done_callback(running.discard)
            if running:
                await asyncio.gather(*running)

        hard_stop = measure_end - time.time() + spec.timeout + 5.0
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(hard_stop):
                if spec.rate is not None:
                    await open_loop()
                else:
                    await asyncio.gather(*(loop(i) for i in range(n_clients)))
        if cpu_at_measure:
            result.cpu_seconds = time.process_time() - cpu_at_measure[0]
    finally:
        await _cleanup(clients, thread_ids)
    return result


async def _cleanup(clients: list[Client], thread_ids: list[str | None]) -> None:
    async def close(client: Client, thread_id: str | None) -> None:
        if thread_id is not None:
            with contextlib.suppress(Exception):
                await client.threads.delete(thread_id)
        with contextlib.suppress(Exception):
            await client.aclose()

    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(10.0):
            await asyncio.gather(*(close(c, t) for c, t in zip(clients, thread_ids, strict=True)))


# --------------------------------------------------------------------------- orchestration


def run_scenario(
    scenario: Scenario,
    spec: LoadSpec,
    processes: int = 1,
    on_progress: ProgressFn | None = None,
    server_pids: tuple[int, ...] = (),
) -> ScenarioResult:
    """Run one scenario to completion (bounded in time) and return its merged samples.

    ``server_pids``: process trees whose CPU use over the measured phase is reported (summed).
    """
    processes = max(1, min(processes, spec.clients))
    if processes == 1:
        return asyncio.run(_run_in_process(scenario, spec, on_progress, server_pids))
    return _run_multiprocess(scenario, spec, processes, on_progress, server_pids)


class _Phases:
    """Tracks the phase for progress reports and snapshots server CPU over the measured phase."""

    def __init__(self, spec: LoadSpec, server_pids: tuple[int, ...]) -> None:
        self.spec = spec
        self.server_pids = server_pids
        self.t_start: float | None = None
        self.server_cpu0: float | None = None
        self.server_cpu1: float | None = None

    def tick(self, done: int, errors: int, on_progress: ProgressFn | None) -> None:
        now = time.time()
        if self.t_start is None or now < self.t_start:
            phase: Literal["setup", "warmup", "measure", "drain"] = "setup"
            elapsed = 0.0
        else:
            elapsed = now - self.t_start
            planned = self.spec.warmup + (self.spec.duration or self.spec.max_duration)
            if elapsed < self.spec.warmup:
                phase = "warmup"
            elif elapsed < planned and not (self.spec.runs and done >= self.spec.runs):
                phase = "measure"
            else:
                phase = "drain"
            if phase != "warmup" and self.server_cpu0 is None and self.server_pids:
                self.server_cpu0 = procs_cpu_seconds(self.server_pids)
        if on_progress is not None:
            on_progress(Progress(phase, elapsed, done, errors))

    def finish(self) -> float | None:
        if self.server_pids and self.server_cpu0 is not None:
            end = procs_cpu_seconds(self.server_pids)
            if end is not None:
                return end - self.server_cpu0
        return None


async def _run_in_process(
    scenario: Scenario,
    spec: LoadSpec,
    on_progress: ProgressFn | None,
    server_pids: tuple[int, ...],
) -> ScenarioResult:
    done, errors = LocalCell(), LocalCell()
    phases = _Phases(spec, server_pids)

    async def start() -> float:
        phases.t_start = time.time() + START_DELAY
        return phases.t_start

    async def report() -> None:
        while True:
            phases.tick(done.value, errors.value, on_progress)
            await asyncio.sleep(0.2)

    reporter = asyncio.create_task(report())
    try:
        res = await run_clients(scenario, spec, spec.clients, spec.runs, start, done, errors)
    finally:
        reporter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reporter
    phases.tick(done.value, errors.value, on_progress)
    t_start = phases.t_start or time.time()
    return ScenarioResult(
        scenario=scenario,
        samples=res.samples,
        measure_start=t_start + spec.warmup,
        measure_min_wall=spec.duration or 0.0,
        processes=1,
        client_cpu_seconds=res.cpu_seconds,
        server_cpu_seconds=phases.finish(),
        setup_errors=[res.setup_error] if res.setup_error else [],
    )


def _process_main(
    scenario: Scenario,
    spec: LoadSpec,
    n_clients: int,
    runs_budget: int | None,
    ready_q: Any,
    go: Any,
    start_value: Any,
    result_q: Any,
    done: Any,
    errors: Any,
    first_client: int,
) -> None:
    """Entry point of a worker process (spawned)."""

    async def wait_for_start() -> float:
        ready_q.put(None)
        if not await asyncio.to_thread(go.wait, SETUP_TIMEOUT * 2):
            raise TimeoutError("no start signal from the parent process")
        return float(start_value.value)

    try:
        res = asyncio.run(
            run_clients(
                scenario, spec, n_clients, runs_budget, wait_for_start, done, errors, first_client
            )
        )
    except BaseException as exc:
        res = WorkerResult(setup_error=f"worker crashed: {_describe(exc)}")
    result_q.put((res.setup_error, res.cpu_seconds, [s.to_tuple() for s in res.samples]))


def _run_multiprocess(
    scenario: Scenario,
    spec: LoadSpec,
    processes: int,
    on_progress: ProgressFn | None,
    server_pids: tuple[int, ...],
) -> ScenarioResult:
    ctx = mp.get_context("spawn")
    ready_q, result_q = ctx.Queue(), ctx.Queue()
    go = ctx.Event()
    start_value = ctx.Value("d", 0.0)
    client_split = split(spec.clients, processes)
    runs_split: list[int | None] = (
        list(split(spec.runs, processes)) if spec.runs is not None else [None] * processes
    )
    cells = [(ctx.Value("i", 0), ctx.Value("i", 0)) for _ in range(processes)]
    procs = [
        ctx.Process(
            target=_process_main,
            args=(scenario, spec, n, r, ready_q, go, start_value, result_q, d, e, first),
            daemon=True,
        )
        for n, r, (d, e), first in zip(
            client_split, runs_split, cells, client_offsets(client_split), strict=True
        )
    ]
    phases = _Phases(spec, server_pids)

    def counts() -> tuple[int, int]:
        return sum(d.value for d, _ in cells), sum(e.value for _, e in cells)

    for p in procs:
        p.start()
    setup_deadline = time.time() + SETUP_TIMEOUT * 2
    ready = 0
    while ready < processes and time.time() < setup_deadline:
        with contextlib.suppress(queue.Empty):
            ready_q.get(timeout=0.2)
            ready += 1
        phases.tick(0, 0, on_progress)
    phases.t_start = time.time() + START_DELAY
    start_value.value = phases.t_start
    go.set()

    cap = spec.duration if spec.duration is not None else spec.max_duration
    hard_deadline = phases.t_start + spec.warmup + cap + spec.timeout + 30.0
    outputs: list[tuple[str | None, float, list[tuple[Any, ...]]]] = []
    while len(outputs) < processes and time.time() < hard_deadline:
        with contextlib.suppress(queue.Empty):
            outputs.append(result_q.get(timeout=0.2))
        phases.tick(*counts(), on_progress)
    for p in procs:
        p.join(timeout=5.0)
        if p.is_alive():
            p.terminate()
            p.join(timeout=5.0)
    setup_errors = [err for err, _, _ in outputs if err]
    if len(outputs) < processes:
        setup_errors.append(f"{processes - len(outputs)} worker process(es) gave no result")
    samples = [Sample(*t) for _, _, tuples in outputs for t in tuples]
    return ScenarioResult(
        scenario=scenario,
        samples=samples,
        measure_start=phases.t_start + spec.warmup,
        measure_min_wall=spec.duration or 0.0,
        processes=processes,
        client_cpu_seconds=sum(cpu for _, cpu, _ in outputs),
        server_cpu_seconds=phases.finish(),
        setup_errors=setup_errors,
    )
