"""A long-running process checkpoints SQLite's log from a thread of its own, not inside the commit
of a request (`profiles.store.checkpoint`)."""

from __future__ import annotations

import time

from sqlalchemy import text

from profiles.settings import Settings
from profiles.store import Store, open_store
from profiles.store.checkpoint import LATE_PAGES, WalCheckpointer

PAGE = 4096


def _write_pages(store: Store, commits: int, pages_each: int) -> None:
    with store.transaction() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS scratch (x BLOB)"))
    for _ in range(commits):
        with store.transaction() as conn:
            conn.execute(text("INSERT INTO scratch VALUES (randomblob(:n))"), {"n": pages_each * PAGE})


def _log_frames(store: Store) -> int:
    """Frames in the log now (a PASSIVE checkpoint reports them; it copies them too)."""
    raw = store.engine.raw_connection()
    try:
        return int(raw.cursor().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1])
    finally:
        raw.close()


def _autocheckpoint(store: Store) -> int:
    with store.reading() as conn:
        return int(conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one())


def test_commits_stop_checkpointing_and_the_thread_folds_the_log_back(settings: Settings) -> None:
    plain = open_store(settings)
    assert _autocheckpoint(plain) == 1000
    _write_pages(plain, 30, 100)  # 3,000 pages: commits past 1,000 checkpoint by default
    assert _log_frames(plain) < 3000
    plain.engine.dispose()

    store = open_store(settings.model_copy(update={"home": settings.home / "other"}))
    checkpointer = WalCheckpointer.for_store(store, interval=3600)  # no tick during the test
    assert checkpointer is not None and WalCheckpointer.for_store(store) is checkpointer
    assert _autocheckpoint(store) == LATE_PAGES
    _write_pages(store, 30, 100)
    busy, log, copied = checkpointer.checkpoint() or (1, 0, 0)
    assert busy == 0 and log >= 3000 and copied == log  # all of it was still in the log
    checkpointer.stop()
    assert _autocheckpoint(store) == 1000
    again = WalCheckpointer.for_store(store)
    assert again is not None and again is not checkpointer  # a stopped one is not handed out
    again.stop()


def test_the_thread_checkpoints_on_its_own(settings: Settings) -> None:
    store = open_store(settings)
    checkpointer = WalCheckpointer.for_store(store, interval=0.05)
    assert checkpointer is not None
    _write_pages(store, 3, 10)
    deadline = time.monotonic() + 10
    while checkpointer.checkpoints == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    checkpointer.stop()
    assert checkpointer.checkpoints > 0


def test_nothing_runs_on_postgresql(pg_store: Store) -> None:
    assert WalCheckpointer.for_store(pg_store) is None


def _wal_pages(settings: Settings) -> int:
    wal = settings.home / "upt.db-wal"
    return wal.stat().st_size // PAGE if wal.exists() else 0


def _busy_writer(store: Store, commits: int, pages_each: int, held_seconds: float) -> None:
    """Commits back to back, each transaction open for `held_seconds`: a busy online process,
    whose transactions a checkpoint thread lands inside almost every time."""
    with store.transaction() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS scratch (x BLOB)"))
    for _ in range(commits):
        with store.transaction() as conn:
            conn.execute(text("INSERT INTO scratch VALUES (randomblob(:n))"), {"n": pages_each * PAGE})
            time.sleep(held_seconds)


def test_a_busy_writer_s_log_starts_again_once_it_is_long(settings: Settings) -> None:
    """With no checkpoint in the commits, the log of a writer that is nearly always inside a
    transaction grew by every page written (1,223 pages here): the thread's checkpoints land
    inside its transactions and the log never starts again. A commit past `late_pages`
    checkpoints the little the thread left, and the next transaction starts the log again."""
    store = open_store(settings)
    checkpointer = WalCheckpointer.for_store(store, interval=0.005, late_pages=100)
    assert checkpointer is not None
    _busy_writer(store, commits=100, pages_each=10, held_seconds=0.02)
    pages = _wal_pages(settings)  # before `stop`: the last connection to close removes the file
    checkpointer.stop()
    assert pages < 400
