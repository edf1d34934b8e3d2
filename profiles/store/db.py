"""Engine creation and schema migration for the store (SQLite default, PostgreSQL by URL)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from importlib import resources
from itertools import chain
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Connection,
    DateTime,
    Engine,
    Select,
    Table,
    create_engine,
    event,
    func,
    inspect,
    select,
)
from sqlalchemy.exc import OperationalError

from profiles.errors import StoreError


def _sqlite_pragmas(dbapi_conn: Any, _record: Any, wait_ms: int = 30_000) -> None:
    # Transactions are begun by SQLAlchemy's "begin" event below, not by the driver: a writing
    # transaction must take the write lock at its start (BEGIN IMMEDIATE), so that two writers
    # queue for `busy_timeout` instead of one failing when it first writes.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    # WAL lets readers work during an ingest; NORMAL sync is crash-safe in WAL mode (a
    # committed transaction survives a process kill; only an OS crash may lose the last one).
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    # Deleted and overwritten content is zeroed on its page, so an erased person (or an old
    # version of a record) never lingers in the file's free space.
    cur.execute("PRAGMA secure_delete=ON")
    cur.execute(f"PRAGMA busy_timeout={int(wait_ms)}")
    cur.close()


WRITING = "upt_writing"  # execution option of a connection whose transaction writes


def _sqlite_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(WRITING) else "BEGIN")


def create_store_engine(url: str, wait_seconds: float = 30.0) -> Engine:
    """An engine for `url`; for SQLite the folder is created, WAL mode switched on, and writers
    queue for the write lock up to `wait_seconds`."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url)
        wait_ms = int(wait_seconds * 1000)
        event.listen(engine, "connect", lambda c, r: _sqlite_pragmas(c, r, wait_ms))
        event.listen(engine, "begin", _sqlite_begin)
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


def rows_in(
    conn: Connection, template: str, values: Sequence[Any], before: tuple[Any, ...] = ()
) -> list[tuple[Any, ...]]:
    """The driver's rows of `template` (raw SQL; `{q}` a parameter mark, `{marks}` the marks of
    a list) for `values` (on SQLite 500 at a time), each statement after the `before`
    parameters. For the small reads of one online request: building a SQLAlchemy query per call
    costs a few hundred microseconds, more than SQLite takes to answer it.

    On PostgreSQL the list goes as one array (`= ANY(...)`): one statement text whatever the
    number of values, which the driver parses once and the server plans once (prepared after a
    few calls); a list of marks was a new text, parsed and planned anew, for every length."""
    if conn.dialect.name == "postgresql":
        if not values:
            return []
        sql = _rendered_any(template)
        return list(conn.exec_driver_sql(sql, (*before, list(values))).cursor.fetchall())
    out: list[tuple[Any, ...]] = []
    for start in range(0, len(values), 500):
        part = values[start : start + 500]
        sql = _rendered(template, conn.dialect.paramstyle, len(part))
        out += conn.exec_driver_sql(sql, (*before, *part)).cursor.fetchall()
    return out


@lru_cache(maxsize=256)
def _rendered_any(template: str) -> str:
    return template.replace("IN ({marks})", "= ANY({q})").format(q="%s")


@lru_cache(maxsize=4096)
def _rendered(template: str, paramstyle: str, n: int) -> str:
    q = mark_of(paramstyle)
    return template.format(q=q, marks=", ".join([q] * n))


def mark_of(paramstyle: str) -> str:
    """The positional parameter mark of raw SQL for a driver: SQLite's `?`, psycopg's `%s`."""
    return "?" if paramstyle == "qmark" else "%s"


def stored_time(value: dt.datetime) -> str:
    """A timestamp as SQLAlchemy stores it on SQLite (UTC, ISO text)."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _driver_converters(
    conn: Connection, table: Table, columns: tuple[str, ...], first: tuple[Any, ...]
) -> dict[int, Callable[[Any], Any]]:
    """Per column position, how a Python value becomes what SQLAlchemy itself would hand the driver:
    JSON as text (both dialects accept it), timestamps as ISO text on SQLite (unless the first row
    shows them rendered already, by `driver_time`)."""
    sqlite = conn.dialect.name == "sqlite"
    out: dict[int, Callable[[Any], Any]] = {}
    for i, name in enumerate(columns):
        kind = table.c[name].type
        if isinstance(kind, JSON):
            out[i] = json.dumps
        elif sqlite and isinstance(kind, DateTime) and isinstance(first[i], dt.datetime):
            out[i] = stored_time
    return out


# Rows per INSERT statement in `bulk_insert` (within SQLite's oldest limit of 999 parameters).
# A million single-row statements cost 3.5 s on SQLite, multi-row ones 2.6 s, and the driver
# releases the GIL once per statement instead of once per row, which a write running beside
# other work (`upt resolve` stores blocking's pairs while it compares) needs.
MAX_PARAMETERS = 999


def bulk_insert(
    conn: Connection,
    table: Table,
    columns: tuple[str, ...],
    rows: Iterable[tuple[Any, ...]],
    chunk: int = 50_000,
) -> int:
    """Insert plain tuples through the driver's executemany, in chunks, many rows per statement.

    For the big writes of a batch run (a million candidate pairs, hundreds of thousands of
    decisions and memberships), where SQLAlchemy's per-row parameter processing costs more than
    the database itself. Values are converted as SQLAlchemy would (JSON columns to text, timestamps
    to ISO text on SQLite); pass a timestamp already rendered with `driver_time` to skip even that.
    """
    rows = iter(rows)
    first = next(rows, None)
    if first is None:
        return 0
    style = conn.dialect.paramstyle
    positional = style in ("qmark", "format", "pyformat")
    mark = mark_of(style)
    one = "(" + ", ".join(mark if positional else f":{c}" for c in columns) + ")"
    head = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES "
    per = max(1, MAX_PARAMETERS // len(columns)) if positional else 1
    many = head + ", ".join([one] * per)
    convert = _driver_converters(conn, table, columns, first)
    total = 0
    batch: list[tuple[Any, ...]] = []

    def flush() -> None:
        nonlocal total
        if not batch:
            return
        if not positional:
            conn.exec_driver_sql(head + one, [dict(zip(columns, r, strict=True)) for r in batch])
        else:
            whole = len(batch) // per * per
            if whole:
                groups = [tuple([v for r in batch[i : i + per] for v in r]) for i in range(0, whole, per)]
                conn.exec_driver_sql(many, groups)
            if whole < len(batch):
                conn.exec_driver_sql(head + one, batch[whole:])
        total += len(batch)
        batch.clear()

    for row in chain([first], rows):
        if convert:
            values = list(row)
            for i, f in convert.items():
                if values[i] is not None:
                    values[i] = f(values[i])
            row = tuple(values)
        batch.append(row)
        if len(batch) >= chunk:
            flush()
    flush()
    return total


# A fresh insert at least this large, and larger than what the table holds, goes in with the
# table's secondary indexes dropped and rebuilt after (in the same transaction): one sorted build
# is cheaper than a million B-tree insertions (1.1M candidate pairs on SQLite: 11.8 s -> 8.7 s).
REBUILD_INDEXES_FROM = 200_000


@contextmanager
def indexes_deferred(conn: Connection, table: Table, fresh_rows: int) -> Iterator[None]:
    """Around a bulk insert of `fresh_rows` rows: drop the table's secondary indexes first and
    build them after, when the insert is big and outgrows what the table holds."""
    rebuild = fresh_rows >= REBUILD_INDEXES_FROM and fresh_rows > row_count(conn, table)
    if rebuild:
        for index in table.indexes:
            index.drop(conn)
    yield
    if rebuild:
        for index in table.indexes:
            index.create(conn)


def row_count(conn: Connection, table: Table) -> int:
    return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def driver_time(conn: Connection, value: dt.datetime) -> dt.datetime | str:
    """A timestamp as this connection's driver takes it (rendered once for a whole bulk insert)."""
    return stored_time(value) if conn.dialect.name == "sqlite" else value
