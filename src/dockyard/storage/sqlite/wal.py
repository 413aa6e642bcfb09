"""WAL checkpoints for the inline SQLite databases, mostly in a thread of their own.

SQLite checkpoints a WAL database inside whichever commit pushes the log past
1000 pages: that commit syncs the log, copies it into the database file and syncs
that too. Measured here: 10-20 ms instead of 0.1 ms, about every 170 commits,
and dockyard commits inline in the event loop (storage.inline), so every request
and run waited behind it. This thread runs a PASSIVE checkpoint (it never blocks
a writer) every 50 ms on its own connection (once a second while nothing is
written); sqlite3 releases the GIL while SQLite works. When a commit then reaches
the threshold, little is left to sync and copy (commit p99 10.6 ms -> 0.9 ms under
bench/'s load). The commit's own checkpoint stays on: only a writer restarts the
log from its beginning after a complete checkpoint, and with the thread alone the
log grew without bound (295 MB in 40 s).
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger(__name__)

INTERVAL_SECONDS = 0.05
IDLE_INTERVAL_SECONDS = 1.0


class WalCheckpointer:
    def __init__(self, paths: Sequence[Path], interval: float = INTERVAL_SECONDS) -> None:
        self.paths = list(paths)
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="sqlite-wal", daemon=True)
        self.checkpoints = 0  # completed passes, for tests

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _loop(self) -> None:
        conns = [sqlite3.connect(p) for p in self.paths]  # made and used in this thread
        try:
            for conn in conns:
                conn.execute("PRAGMA busy_timeout=5000")
            last: list[object] = [None] * len(conns)
            interval = self.interval
            while not self._stop.wait(interval):
                busy = False
                for i, conn in enumerate(conns):
                    try:
                        # (blocked, frames in the log, frames checkpointed)
                        state = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    except sqlite3.Error as e:  # the next pass tries again
                        log.warning("SQLite WAL checkpoint failed: %s", e)
                        state = None
                    busy = busy or state != last[i]
                    last[i] = state
                self.checkpoints += 1
                # An idle process backs off to one pass a second.
                interval = self.interval if busy else min(interval * 2, IDLE_INTERVAL_SECONDS)
        finally:
            for conn in conns:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
