"""The WAL checkpoint thread copies the log into the database file while a writer
that never checkpoints itself keeps the log."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from dockyard.storage.sqlite.wal import WalCheckpointer


def _writer(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")  # only the thread checkpoints here
    conn.execute("CREATE TABLE t (b BLOB)")
    conn.commit()
    return conn


def _two_passes(wal: WalCheckpointer) -> None:
    wal.start()
    try:
        deadline = time.monotonic() + 10
        while wal.checkpoints < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        wal.stop()


def test_thread_checkpoints_the_log_into_the_database(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    conn = _writer(path)
    for _ in range(100):
        conn.execute("INSERT INTO t VALUES (?)", (b"x" * 4000,))
        conn.commit()
    before = path.stat().st_size
    assert before < 100 * 4000  # everything is still in the log
    wal = WalCheckpointer([path], interval=0.01)
    _two_passes(wal)
    assert wal.checkpoints >= 2
    assert path.stat().st_size >= 100 * 4000
    assert conn.execute("SELECT count(*) FROM t").fetchone() == (100,)
    conn.close()


def test_stop_ends_the_thread_at_once(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    _writer(path).close()
    wal = WalCheckpointer([path], interval=60)
    wal.start()
    started = time.monotonic()
    wal.stop()
    assert time.monotonic() - started < 5
    assert not wal._thread.is_alive()


def test_a_failing_pass_is_logged_and_the_thread_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "db.sqlite"
    path.write_bytes(b"not a database" * 100)
    wal = WalCheckpointer([path], interval=0.01)
    _two_passes(wal)
    assert wal.checkpoints >= 2
    assert "SQLite WAL checkpoint failed" in caplog.text
