"""prometheus-client's multiprocess mode: one directory of mmap files per host.

Every process (each ``serve --workers N`` child, each ``dockyard worker``) writes its own
``<kind>_<pid>.db`` files; ``/metrics`` in any of them sums the directory, so a run counted
by the worker that ran it is seen once, whichever process is scraped.

Files of processes that are gone: their counters and histograms stay in the sums (a run
counted by a worker that died afterwards still happened) as long as any process of the
host lives (``clean``); their live gauges (open streams, breaker state, budgets) leave at
once: ``sweep`` runs at each scrape.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

from prometheus_client import multiprocess, values

_FILE = re.compile(r"^(?P<kind>[a-z_]+)_(?P<pid>\d+)\.db$")


def use(directory: Path) -> None:
    """Switch this process to the multiprocess mode in ``directory``, before any metric
    is made. prometheus-client reads the directory from ``PROMETHEUS_MULTIPROC_DIR`` when
    a value opens its file and when a gauge is made, so it is set here, from the settings
    (child processes inherit it)."""
    directory.mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def _files(directory: Path) -> list[tuple[Path, str, int]]:
    out = []
    for path in directory.glob("*.db"):
        m = _FILE.match(path.name)
        if m is not None:
            out.append((path, m["kind"], int(m["pid"])))
    return out


def clean(directory: Path) -> None:
    """At the start of ``dockyard serve`` or ``dockyard worker``, before it makes metrics.

    When no other live process has files here, the deployment restarted on this host: every
    file goes (Prometheus sees the reset it expects). Otherwise the others' sums must not
    drop (Prometheus would take a drop for a reset and count the rest again): counters and
    histograms stay, also those under this process's pid (an earlier process that had it:
    they continue), and only gauges of gone processes and of this pid go.
    """
    directory.mkdir(parents=True, exist_ok=True)
    me = os.getpid()
    files = _files(directory)
    if not any(pid != me and _alive(pid) for _, _, pid in files):
        doomed = [path for path, _, _ in files]
    else:
        doomed = [
            path
            for path, kind, pid in files
            if kind.startswith("gauge") and (pid == me or not _alive(pid))
        ]
    for path in doomed:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def sweep(directory: Path) -> None:
    """Drop the live gauges of processes that are gone (``mark_process_dead``)."""
    dead = {pid for _, kind, pid in _files(directory) if kind.startswith("gauge_live")}
    for pid in dead:
        if not _alive(pid):
            multiprocess.mark_process_dead(pid, str(directory))  # type: ignore[no-untyped-call]
