"""What machine the benchmark ran on, and CPU accounting of a server's process tree (Linux)."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def ram_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / (1024 * 1024)
    except (OSError, ValueError, IndexError):
        pass
    return None


def nproc() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def machine_summary() -> str:
    ram = ram_gib()
    ram_text = f"{ram:.0f} GiB RAM" if ram is not None else "RAM unknown"
    return (
        f"{nproc()} CPU ({cpu_model()}), {ram_text}, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}"
    )


def _children(pid: int) -> list[int]:
    """Direct children of ``pid``, from /proc/<pid>/task/*/children."""
    kids: list[int] = []
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            kids.extend(int(x) for x in children.read_text().split())
        except (OSError, ValueError):
            continue
    return kids


def _cpu_of(pid: int) -> float | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state); utime, stime are fields 14, 15
    ticks = int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def proc_tree_cpu_seconds(pid: int) -> float | None:
    """User+system CPU seconds of ``pid`` and its live descendants (None if ``pid`` is gone)."""
    root = _cpu_of(pid)
    if root is None:
        return None
    total, stack, seen = root, _children(pid), {pid}
    while stack:
        child = stack.pop()
        if child in seen:
            continue
        seen.add(child)
        cpu = _cpu_of(child)
        if cpu is not None:
            total += cpu
            stack.extend(_children(child))
    return total


def procs_cpu_seconds(pids: tuple[int, ...]) -> float | None:
    """Summed CPU seconds of several process trees (None once any root is gone).

    A deployment of several servers is accounted as one "server": its CPU column can then
    exceed 100% of one core.
    """
    total = 0.0
    for pid in pids:
        cpu = proc_tree_cpu_seconds(pid)
        if cpu is None:
            return None
        total += cpu
    return total


def system_cpu_ticks() -> tuple[int, int] | None:
    """(busy, total) clock ticks of all CPUs since boot, from /proc/stat (None off Linux)."""
    try:
        first = Path("/proc/stat").read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return None
    ticks = [int(v) for v in first[1:]]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
    # guest time is already included in user/nice: leave it out of the total
    total = sum(ticks[:8])
    return total - idle, total


def cpu_by_command(name: str, cmdline_contains: str | None = None) -> dict[int, float]:
    """PID -> CPU seconds of every live process whose command is ``name`` (and whose command
    line contains ``cmdline_contains``, e.g. a PostgreSQL backend's database name).

    For services the benchmark does not start (PostgreSQL backends, redis-server): compare
    two snapshots over the PIDs present in both.
    """
    out: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != name:
                continue
            if cmdline_contains is not None:
                cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
                if cmdline_contains not in cmdline:
                    continue
        except OSError:
            continue
        cpu = _cpu_of(int(entry.name))
        if cpu is not None:
            out[int(entry.name)] = cpu
    return out
