"""The UPT store: SQLAlchemy over SQLite (embedded default) or PostgreSQL, migrated by Alembic."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import OperationalError

from profiles.errors import Conflict, StoreBusy
from profiles.settings import Settings
from profiles.store.db import WRITING, create_store_engine, migrate, needs_migration
from profiles.store.records import MentionRecord, ObjectRecord, Rejection, WriteResult

__all__ = [
    "MentionRecord",
    "ObjectRecord",
    "Rejection",
    "Store",
    "WriteResult",
    "open_store",
]


@dataclass(frozen=True)
class Store:
    """An engine plus the profile domain every read and write of this handle belongs to."""

    engine: Engine
    domain: str

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One writing transaction: committed when the block ends, rolled back on error. On SQLite
        it holds the single write lock from its start (waiting for it up to the configured time,
        then StoreBusy)."""
        try:
            with self.engine.connect() as conn:
                conn.execution_options(**{WRITING: True})
                with conn.begin():
                    yield conn
        except OperationalError as exc:
            if "deadlock" in str(exc.orig) or "could not serialize" in str(exc.orig):
                # PostgreSQL rolled this writer back to let another through: worth another try
                raise Conflict("another writer changed the same rows at the same time; try again") from exc
            if "locked" in str(exc.orig) or "busy" in str(exc.orig):
                raise StoreBusy(
                    "another writer held the store longer than the configured wait "
                    "(UPT_WRITE_WAIT_SECONDS); try again"
                ) from exc
            raise

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            yield conn

    def refresh_statistics(self) -> None:
        """After a big write: let the planner see the tables as they are now, so that it picks
        the selective index. SQLite: `PRAGMA optimize` (sampling a few hundred rows per index).
        PostgreSQL: `keep_statistics_current`, vacuuming too."""
        if self.engine.dialect.name != "sqlite":
            self.keep_statistics_current(vacuum=True)
            return
        raw = self.engine.raw_connection()
        try:
            raw.cursor().execute("PRAGMA analysis_limit=400")
            raw.cursor().execute("PRAGMA optimize")
        finally:
            raw.close()

    def keep_statistics_current(self, vacuum: bool = False) -> None:
        """On PostgreSQL, ANALYZE each table changed by more than a tenth since its last analysis
        (autovacuum's own rule), now. Servers run with autovacuum off or behind (the one this was
        measured on does): a planner that still thinks a table of millions of rows is empty scans
        it whole for every probe of a batch: the last objects of a million-mention ingest went
        in at 27 a second, fifty times slower than the first hundred thousand.
        With `vacuum` (at the end of a command), VACUUM (ANALYZE) instead each table of which more
        than a fifth of the pages are not marked visible to every transaction, or whose dead rows
        are more than a fifth of the live ones (autovacuum's rule): a vacuum marks the pages, and
        only then does an index-only scan skip the table. The online core's string windows are
        such scans: 2,000 rows of a million-mention store's keys took 10 ms, 1.2 ms once vacuumed.
        Cheap to call after every batch: one look at the statistics view. Nothing on SQLite."""
        if self.engine.dialect.name != "postgresql":
            return
        with self.engine.connect() as conn:
            # behind on vacuum: more than a fifth of its pages (as the file is now: the counters
            # of the view lag the writers by up to seconds) not marked visible to all, or dead rows
            # more than a fifth of the live ones
            stale = conn.execute(
                text(
                    "select s.relname, s.n_mod_since_analyze > 50 + 0.1 * greatest(s.n_live_tup, 0), "
                    "pg_relation_size(c.oid) / current_setting('block_size')::int - c.relallvisible "
                    "> 8 + 0.2 * pg_relation_size(c.oid) / current_setting('block_size')::int "
                    "or s.n_dead_tup > 50 + 0.2 * greatest(s.n_live_tup, 0) "
                    "from pg_stat_user_tables s join pg_class c on c.oid = s.relid "
                    "where s.schemaname = current_schema()"
                )
            ).all()
        vacuums = [table for table, _, behind in stale if vacuum and behind]
        analyses = [table for table, changed, _ in stale if changed and table not in vacuums]
        if not vacuums and not analyses:
            return
        # VACUUM runs outside a transaction
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for table in vacuums:
                conn.execute(text(f'VACUUM (ANALYZE) "{table}"'))
            for table in analyses:
                conn.execute(text(f'ANALYZE "{table}"'))

    def with_domain(self, domain: str) -> Store:
        return Store(self.engine, domain)


def open_store(settings: Settings, *, upgrade: bool = True) -> Store:
    """Connect to the configured store and bring its schema up to date."""
    engine = create_store_engine(settings.store_url, settings.write_wait_seconds)
    if upgrade and needs_migration(engine):
        migrate(engine)
    return Store(engine, settings.domain)
