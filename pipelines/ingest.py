"""Batch ingestion of JSON Lines files (also gzip) and flat CSV/Parquet person tables.

Files are streamed in batches; each batch is one transaction, so a crash loses at most the
batch in flight, and re-running the same file is a no-op for what already went in. After a file,
the domain's parsed mention frame (`features.frame`) is brought up to date, parsing what the file
added or changed, so that blocking and resolution start from matchable data, as every matcher
does once its data is loaded.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Connection

from features.frame import load_mentions
from features.records import flat_record, object_record
from pipelines.keys import mark_complete_if_empty, mentions_of_objects, refresh_keys
from profiles.contract import SOURCE_PATTERN, ContractObject, parse_line
from profiles.errors import ValidationFailed
from profiles.flat import ColumnMapping, mapped_values, row_to_person
from profiles.settings import Settings
from profiles.store import ObjectRecord, Rejection, Store, WriteResult
from profiles.store.reads import get_rejection, mark_replayed, store_id
from profiles.store.records import as_utc
from profiles.store.writes import stored_versions, write_batch

Progress = Callable[[int], None]  # called with the bytes or rows done since the last call


@dataclass(frozen=True)
class Line:
    number: int
    raw: bytes
    truncated: bool = False  # longer than the keep limit: only its first bytes are here


@contextmanager
def open_binary(path: Path) -> Iterator[IO[bytes]]:
    """The file's bytes, gunzipped when it starts with the gzip magic number."""
    with path.open("rb") as raw:
        if raw.peek(2)[:2] == b"\x1f\x8b":
            with gzip.GzipFile(fileobj=raw) as unzipped:
                yield unzipped  # type: ignore[misc]
        else:
            yield raw


def read_lines(stream: IO[bytes], keep_bytes: int) -> Iterator[Line]:
    """Lines without their line ending. A line longer than `keep_bytes` (a corrupt file with no
    newlines, say) yields only its first `keep_bytes`, so memory stays bounded."""
    number = 0
    while True:
        chunk = stream.readline(keep_bytes + 1)
        if not chunk:
            return
        number += 1
        truncated = len(chunk) > keep_bytes and not chunk.endswith(b"\n")
        if truncated:
            chunk = chunk[:keep_bytes]
            while (more := stream.readline(1 << 20)) and not more.endswith(b"\n"):
                pass
        yield Line(number, chunk.rstrip(b"\r\n"), truncated)


def _compressed_position(stream: IO[bytes]) -> int:
    inner = getattr(stream, "fileobj", None)
    return int(inner.tell() if inner is not None else stream.tell())


def ingest_jsonl(
    store: Store, settings: Settings, path: Path, progress: Progress | None = None
) -> WriteResult:
    """Validate each line alone and store the good ones; rejected lines are kept unaltered."""
    total = WriteResult()
    parsed: list[tuple[Line, ContractObject]] = []
    rejections: list[Rejection] = []
    done = 0

    def flush() -> None:
        nonlocal done
        with store.reading() as conn:
            # Objects whose stored version is as new are skipped before the costly normalization.
            stored = stored_versions(conn, store.domain, [o.key for _, o in parsed])
        fresh = [(ln, o) for ln, o in parsed if o.key not in stored or as_utc(o.modified_at) > stored[o.key]]
        records: list[tuple[Rejection, ObjectRecord]] = []
        for line, obj in fresh:
            where = Rejection(line.raw, str(path), f"line {line.number}", "line", "")
            try:
                records.append((where, object_record(obj, settings.region_for_source(obj.source))))
            except Exception as exc:  # a normalizer's bug must cost one object, never the file
                rejections.append(_failed(where, "could not be normalized", exc))
        result = store_batch(store, records, rejections)
        store.keep_statistics_current()
        result.unchanged += len(parsed) - len(fresh)
        total.add(result)
        parsed.clear()
        rejections.clear()
        if progress:
            position = _compressed_position(stream)
            progress(position - done)
            done = position

    with open_binary(path) as stream:
        for line in read_lines(stream, settings.max_kept_line_bytes):
            if not line.raw.strip():
                continue
            try:
                if line.truncated:
                    raise ValidationFailed(
                        "line",
                        f"longer than {settings.max_kept_line_bytes:,} bytes; only its first bytes are kept",
                    )
                parsed.append((line, parse_line(line.raw, settings.max_line_bytes)))
            except ValidationFailed as exc:
                rejections.append(
                    Rejection(line.raw, str(path), f"line {line.number}", exc.field, exc.reason)
                )
            if len(parsed) + len(rejections) >= settings.ingest_batch_size:
                flush()
        flush()
    return total


def _failed(where: Rejection, what: str, exc: BaseException) -> Rejection:
    """`where` with the reason an object failed (the database's own message, first line)."""
    detail = str(getattr(exc, "orig", None) or exc).strip()
    first = detail.splitlines()[0][:300] if detail else ""
    reason = f"{what}: {type(exc).__name__}: {first}"
    return Rejection(where.raw, where.origin, where.location, where.field, reason)


def _is_data_error(exc: BaseException) -> bool:
    """An error caused by one object's values (too long for a column, a value the database
    cannot hold), as opposed to the store being unreachable or busy."""
    from sqlalchemy.exc import DataError, IntegrityError, StatementError

    return isinstance(exc, DataError | IntegrityError | ValueError) or type(exc) is StatementError


def write_records(
    conn: Connection, domain: str, records: list[ObjectRecord], rejections: list[Rejection]
) -> WriteResult:
    """Objects and rejections of a batch, and the blocking keys of the objects' mentions."""
    result = write_batch(conn, domain, records, rejections)
    if records:
        refresh_keys(conn, domain, mentions_of_objects(conn, domain, [r.key for r in records]))
    return result


def store_batch(
    store: Store, records: list[tuple[Rejection, ObjectRecord]], rejections: list[Rejection]
) -> WriteResult:
    """Write a batch in one transaction; if an object's values break it (a value the database
    refuses), write the objects one by one and keep the ones that fail as rejected input with the
    database's reason, so that nothing is lost and nothing else is held back. `records` pairs each
    object with its input's place (a Rejection with no reason yet)."""
    try:
        with store.transaction() as conn:
            return write_records(conn, store.domain, [r for _, r in records], rejections)
    except Exception as exc:
        if not _is_data_error(exc):
            raise
    result = WriteResult()
    failed = list(rejections)
    for where, record in records:
        try:
            with store.transaction() as conn:
                result.add(write_records(conn, store.domain, [record], []))
        except Exception as exc:
            if not _is_data_error(exc):
                raise
            failed.append(_failed(where, "could not be stored", exc))
    with store.transaction() as conn:
        result.add(write_batch(conn, store.domain, [], failed))
    return result


def _table_batches(path: Path, mapping: ColumnMapping, batch_size: int) -> Iterator[list[dict[str, Any]]]:
    suffix = "".join(path.suffixes).lower()
    if suffix.endswith(".parquet") or suffix.endswith(".pq"):
        import pyarrow.parquet as pq

        parquet = pq.ParquetFile(path)
        mapping.check_columns(parquet.schema_arrow.names)
        for batch in parquet.iter_batches(batch_size=batch_size, columns=sorted(mapping.columns)):
            yield batch.to_pylist()
        return
    import pandas as pd

    reader = pd.read_csv(
        path,
        dtype=str,
        keep_default_na=False,
        chunksize=batch_size,
        encoding="utf-8",
        encoding_errors="surrogateescape",
        compression="infer",
    )
    for i, frame in enumerate(reader):
        if i == 0:
            mapping.check_columns([str(c) for c in frame.columns])
        yield frame.to_dict(orient="records")


def _row_bytes(row: dict[str, Any]) -> bytes:
    text = json.dumps({k: v for k, v in row.items()}, ensure_ascii=False, default=str)
    return text.encode("utf-8", errors="surrogateescape")


def _bad_text(row: dict[str, Any]) -> str | None:
    for column, value in row.items():
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return str(column)
    return None


def ingest_table(
    store: Store,
    settings: Settings,
    path: Path,
    source: str,
    mapping: ColumnMapping,
    progress: Progress | None = None,
) -> WriteResult:
    """Ingest a CSV or Parquet table: each row one mention `{source}/person_record/{id}#record`."""
    if not SOURCE_PATTERN.match(source):
        raise ValidationFailed(
            "source", "has a forbidden character or length (1-64 of letters, digits, '.', '_', '-')"
        )
    total = WriteResult()
    region = settings.region_for_source(source)
    row_number = 0
    for batch in _table_batches(path, mapping, settings.ingest_batch_size):
        records: list[tuple[Rejection, ObjectRecord]] = []
        rejections: list[Rejection] = []
        for row in batch:
            row_number += 1
            where = f"row {row_number}"
            row_id = "" if row.get(mapping.id_column) is None else str(row[mapping.id_column]).strip()
            bad_column = _bad_text(row)
            if bad_column is not None:
                rejections.append(
                    Rejection(_row_bytes(row), str(path), where, bad_column, "is not valid UTF-8")
                )
            elif not row_id or len(row_id) > 128:
                reason = "missing (every row needs an id)" if not row_id else "longer than 128 characters"
                rejections.append(Rejection(_row_bytes(row), str(path), where, mapping.id_column, reason))
            else:
                here = Rejection(_row_bytes(row), str(path), where, mapping.id_column, "")
                try:
                    person, flags = row_to_person(mapped_values(row, mapping), source)
                    clean = {k: v for k, v in row.items() if v not in ("", None)}
                    records.append((here, flat_record(source, row_id, clean, person, flags, region)))
                except Exception as exc:  # one row's bug must not cost the file
                    rejections.append(_failed(here, "could not be normalized", exc))
        total.add(store_batch(store, records, rejections))
        store.keep_statistics_current()
        if progress:
            progress(len(batch))
    return total


def replay_rejection(
    store: Store, settings: Settings, rejection_id: int, fixed: bytes | None = None
) -> str | None:
    """Validate a rejected line again (as stored, or as fixed by the operator) and ingest it.

    Returns None when it went in, else the new reason. Flat-table rows are replayed by
    re-ingesting the fixed file, which is idempotent.
    """
    with store.reading() as conn:
        item = get_rejection(conn, store.domain, rejection_id)
    if not str(item["location"]).startswith("line"):
        return f"{item['location']} of a table: fix the file and ingest it again (already stored rows stay as they are)"
    raw = fixed if fixed is not None else bytes(item["raw"])
    try:
        obj = parse_line(raw.rstrip(b"\r\n"), settings.max_line_bytes)
    except ValidationFailed as exc:
        return str(exc)
    try:
        record = object_record(obj, settings.region_for_source(obj.source))
        with store.transaction() as conn:
            write_records(conn, store.domain, [record], [])
            mark_replayed(conn, store.domain, rejection_id)
    except Exception as exc:
        if not _is_data_error(exc):
            raise
        return _failed(Rejection(raw, "", "", "line", ""), "could not be stored", exc).reason
    return None


def ingest_path(
    store: Store,
    settings: Settings,
    path: Path,
    *,
    source: str | None = None,
    mapping: ColumnMapping | None = None,
    progress: Progress | None = None,
) -> WriteResult:
    """JSON Lines unless a column mapping says the file is a flat person table."""
    mark_complete_if_empty(store)
    if mapping is not None:
        if not source:
            raise ValidationFailed("source", "missing: a flat table needs --source NAME")
        result = ingest_table(store, settings, path, source, mapping, progress)
    else:
        result = ingest_jsonl(store, settings, path, progress)
    prepare_for_matching(store, settings)
    return result


def prepare_for_matching(store: Store, settings: Settings) -> None:
    """Bring the domain's parsed mention frame up to date (only new and changed mentions are
    parsed), and give the store its id if it has none yet: models are registered under that id,
    so a copy of the store taken at any point after its first file carries it."""
    with store.transaction() as conn:
        store_id(conn)
    with store.reading() as conn:
        load_mentions(conn, store.domain, cache=settings.frame_cache_path(store.domain))
    store.refresh_statistics()


def is_table(path: Path) -> bool:
    name = path.name.lower()
    return any(name.endswith(s) for s in (".csv", ".csv.gz", ".tsv", ".parquet", ".pq"))
