"""Engine creation and schema migration for the store (SQLite default, PostgreSQL by URL)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Select, create_engine, event, inspect
from sqlalchemy.exc import OperationalError

from profiles.errors import StoreError


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets readers work during an ingest; NORMAL sync is crash-safe in WAL mode (a
    # committed transaction survives a process kill; only an OS crash may lose the last one).
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def create_store_engine(url: str) -> Engine:
    """An engine for `url`; for SQLite the folder is created and WAL mode switched on."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


def _alembic_config(engine: Engine) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("profiles") / "migrations"))
    cfg.attributes["engine"] = engine
    return cfg


def migrate(engine: Engine) -> None:
    """Bring the database schema to the newest Alembic revision (a no-op when it is there)."""
    from alembic import command

    try:
        command.upgrade(_alembic_config(engine), "head")
    except OperationalError as exc:
        raise StoreError(
            f"cannot reach or migrate the store at {engine.url.render_as_string(hide_password=True)}: "
            f"{exc.orig}; check UPT_DATABASE_URL or UPT_HOME"
        ) from exc


def needs_migration(engine: Engine) -> bool:
    """True when the store lacks tables or runs behind the newest revision."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config(engine)).get_current_head()
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return True
        return MigrationContext.configure(conn).get_current_revision() != head


def new_revision(message: str) -> None:
    """Write a new Alembic revision for what changed in `schema.py` (developer tool, `make migration`)."""
    import tempfile

    from alembic import command

    with tempfile.TemporaryDirectory() as tmp:
        engine = create_store_engine(f"sqlite:///{tmp}/autogen.db")
        migrate(engine)
        command.revision(_alembic_config(engine), message=message, autogenerate=True)


def plain_rows(conn: Connection, query: Select[Any]) -> list[tuple[Any, ...]]:
    """The rows of `query` as the driver's own tuples, skipping SQLAlchemy's per-row processing:
    for million-row reads of plain numbers (candidate pairs), where that processing costs more than
    the database. Columns needing type conversion (JSON, timestamps) must not be read this way."""
    return list(conn.execute(query).cursor.fetchall())
