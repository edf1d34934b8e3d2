"""The UPT store: SQLAlchemy over SQLite (embedded default) or PostgreSQL, migrated by Alembic."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Connection, Engine
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
        """After a big write: let SQLite's planner see the tables as they are now (`PRAGMA
        optimize`, sampling a few hundred rows per index), so that it picks the selective index.
        PostgreSQL keeps its own statistics (autovacuum)."""
        if self.engine.dialect.name != "sqlite":
            return
        raw = self.engine.raw_connection()
        try:
            raw.cursor().execute("PRAGMA analysis_limit=400")
            raw.cursor().execute("PRAGMA optimize")
        finally:
            raw.close()

    def with_domain(self, domain: str) -> Store:
        return Store(self.engine, domain)


def open_store(settings: Settings, *, upgrade: bool = True) -> Store:
    """Connect to the configured store and bring its schema up to date."""
    engine = create_store_engine(settings.store_url, settings.write_wait_seconds)
    if upgrade and needs_migration(engine):
        migrate(engine)
    return Store(engine, settings.domain)
