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
