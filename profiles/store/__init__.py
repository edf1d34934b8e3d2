"""The UPT store: SQLAlchemy over SQLite (embedded default) or PostgreSQL, migrated by Alembic."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Connection, Engine

from profiles.settings import Settings
from profiles.store.db import create_store_engine, migrate, needs_migration
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
        """One database transaction: committed when the block ends, rolled back on error."""
        with self.engine.begin() as conn:
            yield conn

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            yield conn

    def with_domain(self, domain: str) -> Store:
        return Store(self.engine, domain)


def open_store(settings: Settings, *, upgrade: bool = True) -> Store:
    """Connect to the configured store and bring its schema up to date."""
    engine = create_store_engine(settings.store_url)
    if upgrade and needs_migration(engine):
        migrate(engine)
    return Store(engine, settings.domain)
