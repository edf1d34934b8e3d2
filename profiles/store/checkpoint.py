"""SQLite's write-ahead log folded back into the database off the request path.

By default SQLite checkpoints inside the commit that grows the log past a thousand pages: that
commit copies them into the database file and syncs it. On a store of a million mentions (an
11 GB file) that took 300 to 600 ms, and one online resolve in a few dozen paid it (the slowest
object of a profiled run spent 576 of its 651 ms in that commit). A long-running process (the
online core, behind the API and the stream consumer) puts the automatic checkpoint off to a much
longer log on its own connections and checkpoints from a thread of its own meanwhile: PASSIVE,
so it never waits for or blocks a reader or a writer, every `interval` seconds. Other processes keep SQLite's default, and the last
connection to close checkpoints what is left. Nothing to do on PostgreSQL.

The commits keep a checkpoint of their own, once the log holds `late_pages` pages: only a
writer that begins after a checkpoint copied the whole log starts the log again from its
beginning, and a thread's checkpoint lands, most of the time, inside a busy writer's
transaction, after which more pages are written. With no checkpoint in the commits the log was
never started again (1.7 GB of log for a 63 MB database after the demo set went through the
online core one object at a time). The commit that passes `late_pages` copies only what was
written since the thread's last checkpoint (a second's pages at most), and the next
transaction starts the log again: the log stays near `late_pages`.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, event

from profiles.store import Store

LATE_PAGES = 16_384  # 64 MB of 4 KB pages: a commit checkpoints a log this long


def _late_autocheckpoint(pages: int) -> Callable[[Any, Any], None]:
    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA wal_autocheckpoint={int(pages)}")
        cur.close()

    return on_connect


_RUNNING: weakref.WeakKeyDictionary[Engine, WalCheckpointer] = weakref.WeakKeyDictionary()
_GUARD = threading.Lock()


class WalCheckpointer:
    """A daemon thread that checkpoints a SQLite store's log while the process runs; the store's
    own connections checkpoint in their commits only past `late_pages`. One per engine (`for_store`); the thread
    holds the engine weakly and ends with it, or at `stop`."""

    def __init__(self, engine: Engine, interval: float, late_pages: int = LATE_PAGES) -> None:
        self._engine = weakref.ref(engine)
        self.interval = interval
        self._stop = threading.Event()
        self.checkpoints = 0
        self._on_connect = _late_autocheckpoint(late_pages)
        event.listen(engine, "connect", self._on_connect)
        engine.dispose()  # pooled connections were opened with the default: open them again
        self._thread = threading.Thread(target=self._run, name="upt-wal-checkpoint", daemon=True)
        self._thread.start()

    @classmethod
    def for_store(
        cls, store: Store, interval: float = 1.0, late_pages: int = LATE_PAGES
    ) -> WalCheckpointer | None:
        """The store's checkpointer, started on first use; None on PostgreSQL."""
        engine = store.engine
        if engine.dialect.name != "sqlite":
            return None
        with _GUARD:
            running = _RUNNING.get(engine)
            if running is None:
                running = _RUNNING[engine] = cls(engine, interval, late_pages)
            return running

    def checkpoint(self) -> tuple[int, int, int] | None:
        """One PASSIVE checkpoint now: (busy, pages in the log, pages copied to the database);
        None once the engine is gone."""
        engine = self._engine()
        if engine is None:
            return None
        raw = engine.raw_connection()
        try:
            row = raw.cursor().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        finally:
            raw.close()
        self.checkpoints += 1
        return int(row[0]), int(row[1]), int(row[2])

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                if self.checkpoint() is None:
                    return
            except Exception:  # a failed try is retried next interval; never kill the process
                continue

    def stop(self) -> None:
        """Stop the thread, give the connections SQLite's default back and checkpoint once more."""
        self._stop.set()
        self._thread.join()
        engine = self._engine()
        if engine is None:
            return
        with _GUARD:
            _RUNNING.pop(engine, None)
        event.remove(engine, "connect", self._on_connect)
        engine.dispose()
        self.checkpoint()
