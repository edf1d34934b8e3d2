"""Mentions as a pandas DataFrame: the columnar form every blocking and comparison step uses.

One row per matchable mention, indexed by its store id (`mention_pk`). Scalar fields are plain
columns; multi-valued ones (emails, phones, loyalty, documents) are tuples. The same frame shape
is built for one online record (`frame_from_normalized`) and for a whole domain (`load_mentions`).

Stored normalized mentions are parsed by Arrow's JSON reader, column by column: 100,000 mentions
in 1.4 s, against 3.4 s through `json.loads` and a dict per row (2.4 s with the garbage collector
switched off, which a multi-threaded server cannot afford: the switch is process-wide).
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import os
from collections.abc import Iterable, Sequence
from contextlib import suppress
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Select, Text, cast, select

from profiles.store.db import plain_rows, rows_in
from profiles.store.schema import interactions, mentions

SCALARS = (
    "first_name",
    "middle_name",
    "last_name",
    "full_name",
    "name_original",
    "date_of_birth",
    "gender",
    "street",
    "city",
    "postal_code",
    "country",
    "company",
)
LISTS = ("first_name_canonical", "emails", "phones", "phone_digits", "loyalty", "documents")
# The fields a person recognizes a mention by: the labelling view and golden records show these.
PERSON_FIELDS = (
    "name_original",
    "date_of_birth",
    "gender",
    "emails",
    "phones",
    "street",
    "city",
    "postal_code",
    "country",
    "loyalty",
    "documents",
    "company",
)
COLUMNS = ("mention_key", "source", "object_pk", "content_hash", *SCALARS, *LISTS)


def _empty_frame() -> pd.DataFrame:
    """A frame of no mentions with the columns and types of a full one, so that every step runs
    on it (string columns that pandas would otherwise make float)."""
    return _frame_from_columns((), (), (), (), (), [])


# Arrow's reader pays a fixed cost and starts its threads: up to a thousand rows (the few hundred
# candidates of an online request in a crowd of common names) json.loads takes as long at its
# best and is steadier (200-400 rows: 1.6-2.4 ms at best either way, 4.4-6.4 ms against 2.1-2.4
# on average through Arrow on a busy 2-core machine); past that Arrow is ahead (3,000: 22 ms
# against 49).
ARROW_FROM = 1000


def frame_from_normalized(items: Iterable[tuple[Any, ...]]) -> pd.DataFrame:
    """A frame from (mention_pk, key, source, object_pk, content_hash, normalized) tuples, the
    normalized mention a dict or its JSON text (as the store hands it). One builder for one online
    record and a whole domain; texts go through Arrow's JSON reader column by column."""
    rows = list(items)
    if not rows:
        return _empty_frame()
    pk, key, source, object_pk, content_hash, raw = zip(*rows, strict=True)
    # Arrow's reader has a fixed cost of milliseconds: a few rows (an online request's) go faster
    # through json.loads
    if len(rows) >= ARROW_FROM and all(isinstance(n, str) for n in raw):
        return _frame_from_json(pk, key, source, object_pk, content_hash, raw)
    norms = [n if isinstance(n, dict) else json.loads(n) for n in raw]
    return _frame_from_columns(pk, key, source, object_pk, content_hash, norms)


def _arrow_schema() -> Any:
    import pyarrow as pa

    return pa.schema([(n, pa.string()) for n in SCALARS] + [(n, pa.list_(pa.string())) for n in LISTS])


def _frame_from_json(
    pk: Sequence[int],
    key: Sequence[str],
    source: Sequence[str],
    object_pk: Sequence[int],
    content_hash: Sequence[str],
    texts: Sequence[str],
) -> pd.DataFrame:
    import pyarrow.json as pj

    options = pj.ParseOptions(explicit_schema=_arrow_schema(), unexpected_field_behavior="ignore")
    # one JSON text per line: normalized mentions are written by json.dumps, never across lines
    table = pj.read_json(io.BytesIO("\n".join(texts).encode("utf-8")), parse_options=options)
    ids = {
        "mention_pk": np.asarray(pk, np.int64),
        "mention_key": list(key),
        "source": list(source),
        "object_pk": np.asarray(object_pk, np.int64),
        "content_hash": list(content_hash),
    }
    return _frame_from_arrow(ids, table)


def _frame_from_arrow(ids: dict[str, Any], table: Any) -> pd.DataFrame:
    """The frame of `ids` (mention_pk, mention_key, source, object_pk, content_hash) and an Arrow
    table holding the scalar (string) and list (list<string>) columns, row-aligned."""
    import pyarrow.compute as pc

    if table.num_rows == 0:
        return _empty_frame()
    columns: dict[str, Any] = {
        "mention_pk": np.asarray(ids["mention_pk"], np.int64),
        "mention_key": list(ids["mention_key"]),
        "source": list(ids["source"]),
        "object_pk": np.asarray(ids["object_pk"], np.int64),
        "content_hash": list(ids["content_hash"]),
    }
    for name in SCALARS:
        columns[name] = pc.fill_null(table[name], "").to_numpy(zero_copy_only=False).astype(object)
    for name in LISTS:
        columns[name] = _tuples(table[name])
    frame = pd.DataFrame(columns)
    frame.index = pd.Index(frame["mention_pk"].to_numpy(np.int64))
    return frame


def _tuples(column: Any) -> list[tuple[str, ...]]:
    """A list<string> Arrow column as a list of tuples (null and empty lists as ()), sliced from
    one flat list of its values: three times quicker than converting row by row."""
    array = column.combine_chunks() if hasattr(column, "combine_chunks") else column
    offsets = array.offsets.to_numpy().tolist()
    flat = array.values.to_pylist()
    valid = array.is_valid().to_numpy(zero_copy_only=False).tolist() if array.null_count else None
    empty: tuple[str, ...] = ()
    return [
        tuple(flat[start:end]) if end > start and (valid is None or valid[row]) else empty
        for row, (start, end) in enumerate(itertools.pairwise(offsets))
    ]


def load_mentions(
    conn: Connection, domain: str, keys: Sequence[str] | None = None, cache: Path | None = None
) -> pd.DataFrame:
    """Every matchable mention of a domain (or those with these keys), as a frame.

    With `cache` (a file path; domain-wide loads only) the frame is kept there and reused while the
    domain's matchable mentions are the same (ids and content hashes, checked on every load):
    parsing 100,000 normalized mentions takes about 3 s, checking and reading the kept frame 0.6 s.
    """
    if keys is not None:
        parts = [_by_keys(conn, domain, keys[i : i + 500]) for i in range(0, len(keys), 500)]
        return pd.concat(parts) if parts else _empty_frame()
    if cache is not None:
        return _cached_frame(conn, domain, cache)
    return frame_from_normalized(plain_rows(conn, _domain_wide(select(*_frame_columns()), domain)))


def _domain_wide(query: Select[Any], domain: str) -> Select[Any]:
    """`query` over the rows a domain-wide load reads, in its order: one definition for the load
    and the cache's fingerprint, so the two always cover the same mentions."""
    return query.where(mentions.c.domain == domain, mentions.c.matchable.is_(True)).order_by(mentions.c.id)


# Part of every cache fingerprint: bump it when the frame a load builds changes shape or content,
# so frames kept by an earlier version are never read.
FRAME_CACHE_VERSION = 2  # 2: Parquet instead of a pickle


def _fingerprint(domain: str, pks: Iterable[int], hashes: Iterable[str]) -> str:
    digest = hashlib.blake2b(f"{FRAME_CACHE_VERSION}|{domain}|".encode(), digest_size=20)
    digest.update(",".join(f"{pk}:{h}" for pk, h in zip(pks, hashes, strict=True)).encode())
    return digest.hexdigest()


def frame_fingerprint(frame: pd.DataFrame, domain: str) -> str:
    """What a frame holds, in one string: its mentions' ids and content hashes (and the frame
    builder's version). Two loads with the same fingerprint built the same frame."""
    return _fingerprint(domain, frame["mention_pk"].tolist(), frame["content_hash"].tolist())


def _cached_frame(conn: Connection, domain: str, path: Path) -> pd.DataFrame:
    """`load_mentions` through the cache file at `path` (Parquet). When mentions were added,
    changed or removed since the frame was kept, only those are parsed again (a file of new
    bookings costs its own parsing, not the whole domain's). The kept frame's fingerprint is
    computed from the frame itself, so a frame loaded while another process wrote can never pass
    for another state of the store."""
    kept = _read_kept(path)
    if kept is None:
        frame = load_mentions(conn, domain)
    else:
        stored, frame = kept
        # the stored mentions' ids and hashes are read only when there is a frame to check
        rows = plain_rows(conn, _domain_wide(select(mentions.c.id, mentions.c.content_hash), domain))
        if stored == _fingerprint(domain, (r[0] for r in rows), (r[1] for r in rows)):
            return frame
        frame = _refreshed(conn, domain, frame, rows)
    _keep(frame, frame_fingerprint(frame, domain), path)
    return frame


_ID_COLUMNS = ("mention_pk", "mention_key", "source", "object_pk", "content_hash")


def _read_kept(path: Path) -> tuple[str, pd.DataFrame] | None:
    """(fingerprint, frame) of the kept file; None when there is none, it is damaged, or it was
    written by another version of the frame builder."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
        meta = table.schema.metadata or {}
        if meta.get(b"upt_frame_version") != str(FRAME_CACHE_VERSION).encode():
            return None
        ids = {name: table[name].to_pylist() for name in _ID_COLUMNS}
        return meta[b"fingerprint"].decode(), _frame_from_arrow(ids, table)
    except (OSError, KeyError, ValueError, pa.ArrowException):
        return None  # no cache, or a damaged one: the frame is built afresh


# Above this share of changed mentions, parsing them all is as quick as sorting out which.
REPARSE_ALL_FROM = 0.5


def _refreshed(
    conn: Connection, domain: str, kept: pd.DataFrame, rows: Sequence[tuple[Any, ...]]
) -> pd.DataFrame:
    """The domain's frame from a kept one: unchanged rows reused, new and changed ones parsed,
    removed ones dropped; row for row what a full load builds."""
    kept_hash = dict(zip(kept["mention_pk"].tolist(), kept["content_hash"].tolist(), strict=True))
    same = [pk for pk, h in rows if kept_hash.get(pk) == h]
    if len(rows) - len(same) > REPARSE_ALL_FROM * len(rows):
        return load_mentions(conn, domain)
    same_set = set(same)
    fresh = [pk for pk, _ in rows if pk not in same_set]
    parts = [kept.loc[same]]
    for start in range(0, len(fresh), 500):
        ids = fresh[start : start + 500]
        query = _domain_wide(select(*_frame_columns()), domain).where(mentions.c.id.in_(ids))
        parts.append(frame_from_normalized(plain_rows(conn, query)))
    return pd.concat(parts).sort_index(kind="stable") if fresh else parts[0]


def _keep(frame: pd.DataFrame, fingerprint: str, path: Path) -> None:
    """Keep the frame at `path` as Parquet, its fingerprint in the file's metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {
            "mention_pk": pa.array(frame["mention_pk"].to_numpy(np.int64)),
            "mention_key": pa.array(frame["mention_key"].tolist(), pa.string()),
            "source": pa.array(frame["source"].tolist(), pa.string()),
            "object_pk": pa.array(frame["object_pk"].to_numpy(np.int64)),
            "content_hash": pa.array(frame["content_hash"].tolist(), pa.string()),
        }
        arrays.update({name: pa.array(frame[name].tolist(), pa.string()) for name in SCALARS})
        lists = pa.list_(pa.string())
        arrays.update({name: pa.array([list(v) for v in frame[name].tolist()], lists) for name in LISTS})
        table = pa.table(arrays).replace_schema_metadata(
            {"upt_frame_version": str(FRAME_CACHE_VERSION), "fingerprint": fingerprint}
        )
        pq.write_table(table, partial)
        os.replace(partial, path)  # readers see the old file or the new one, never half of one
    except OSError:  # a read-only or full home: the cache is an optimization, the load stands
        with suppress(OSError):
            partial.unlink(missing_ok=True)


def _frame_from_columns(
    pk: Sequence[int],
    key: Sequence[str],
    source: Sequence[str],
    object_pk: Sequence[int],
    content_hash: Sequence[str],
    norms: list[dict[str, Any]],
) -> pd.DataFrame:
    # The text and list columns go in as one 2-D object block: pandas builds a frame from a dict
    # of 40 lists column by column, a millisecond even for the one row of an online request.
    texts = ("mention_key", "source", "content_hash", *SCALARS, *LISTS)
    block = np.empty((len(pk), len(texts)), dtype=object)
    block[:, 0], block[:, 1], block[:, 2] = _objects(key), _objects(source), _objects(content_hash)
    for j, name in enumerate(SCALARS, start=3):
        block[:, j] = _objects([n.get(name) or "" for n in norms])
    for j, name in enumerate(LISTS, start=3 + len(SCALARS)):
        block[:, j] = _objects([tuple(n.get(name) or ()) for n in norms])
    frame = pd.DataFrame(block, columns=list(texts), index=pd.Index(np.asarray(pk, np.int64)), copy=False)
    frame.insert(0, "mention_pk", np.asarray(pk, np.int64))
    frame.insert(3, "object_pk", np.asarray(object_pk, np.int64))
    return frame


def _objects(values: Sequence[Any]) -> np.ndarray:
    """A 1-D object array of `values` (tuples kept as elements, never unpacked into a 2nd axis)."""
    return np.fromiter(values, dtype=object, count=len(values))


def _frame_columns() -> tuple[Any, ...]:
    """What a frame row is built from, in `frame_from_normalized`'s tuple order."""
    c = mentions.c
    # as text on every database, so that Arrow parses it (PostgreSQL's driver would decode it)
    return (c.id, c.mention_key, c.source, c.object_pk, c.content_hash, cast(c.normalized, Text))


def load_mentions_by_ids(conn: Connection, domain: str, pks: Sequence[int]) -> pd.DataFrame:
    """The matchable mentions of the domain with these store ids, as a frame (others left out)."""
    return frame_from_normalized(mention_rows_by_ids(conn, domain, pks))


def mention_rows_by_ids(conn: Connection, domain: str, pks: Iterable[int]) -> list[tuple[Any, ...]]:
    """The `frame_from_normalized` rows of the matchable mentions of the domain with these store
    ids, by id (others left out).

    By primary key alone, the domain checked on the rows read: with the domain in the query,
    SQLite walked the domain's (domain, mention_key) index, every mention of it."""
    ids = sorted({int(pk) for pk in pks})
    rows = [r[:-2] for r in rows_in(conn, _MENTIONS_BY_ID_SQL, ids) if r[-2] == domain and r[-1]]
    rows.sort(key=lambda r: r[0])
    return rows


# `_frame_columns`, the domain and `matchable`, as raw SQL (see `profiles.store.db.rows_in`)
_MENTIONS_BY_ID_SQL = (
    "SELECT "
    + ", ".join(str(c.compile()) for c in (*_frame_columns(), mentions.c.domain, mentions.c.matchable))
    + " FROM mentions WHERE id IN ({marks})"
)


def _by_keys(conn: Connection, domain: str, keys: Sequence[str]) -> pd.DataFrame:
    query = select(*_frame_columns()).where(
        mentions.c.domain == domain, mentions.c.mention_key.in_(list(keys))
    )
    return frame_from_normalized(plain_rows(conn, query))


def load_interactions(
    conn: Connection, domain: str, mention_pks: Sequence[int] | None = None
) -> pd.DataFrame:
    """(mention_pk, object_pk, kind, role, ref, contacts) of every interaction in the domain, or
    of these mentions' interactions."""
    return interactions_frame(interaction_rows(conn, domain, mention_pks))


def interaction_rows(
    conn: Connection, domain: str, mention_pks: Iterable[int] | None = None
) -> list[tuple[Any, ...]]:
    """(id, mention_pk, object_pk, kind, role, ref, attributes) of every interaction in the
    domain, or of these mentions' interactions, by id."""
    query = select(
        interactions.c.id,
        interactions.c.mention_pk,
        interactions.c.object_pk,
        interactions.c.kind,
        interactions.c.role,
        interactions.c.ref,
        interactions.c.attributes,
    )
    # In id order: a plan the database picks (PostgreSQL's, once its statistics are current)
    # must not change what is built from the rows, such as the blocking identity's hash.
    query = query.order_by(interactions.c.id)
    if mention_pks is None:
        return plain_rows(conn, query.where(interactions.c.domain == domain))
    # by mention id alone (ids are the store's, each in one domain): with a domain condition
    # SQLite walked the domain's (domain, ref) index instead
    ids = sorted({int(pk) for pk in mention_pks})
    rows = rows_in(conn, _INTERACTIONS_BY_MENTION_SQL, ids)
    if len(ids) > 500:
        rows.sort(key=lambda r: r[0])
    return rows


_INTERACTIONS_BY_MENTION_SQL = (
    "SELECT id, mention_pk, object_pk, kind, role, ref, attributes FROM interactions "
    "WHERE mention_pk IN ({marks}) ORDER BY id"
)


def interactions_frame(rows: Sequence[tuple[Any, ...]]) -> pd.DataFrame:
    """The interactions frame of `interaction_rows` (the driver's own values: SQLite hands JSON
    as text, PostgreSQL as decoded objects); one frame built from columns, as pandas costs per
    call, not per row."""
    _, pk, object_pk, kind, role, ref, attributes = (
        (list(c) for c in zip(*rows, strict=True)) if rows else ([],) * 7
    )
    contacts = [_contacts_of(a) for a in attributes]
    block = np.empty((len(pk), 4), dtype=object)  # one object block (see `_frame_from_columns`)
    for j, values in enumerate((kind, role, ref, contacts)):
        block[:, j] = _objects(values)
    frame = pd.DataFrame(block, columns=["kind", "role", "ref", "contacts"], copy=False)
    frame.insert(0, "mention_pk", np.asarray(pk, np.int64))
    frame.insert(1, "object_pk", np.asarray(object_pk, np.int64))
    return frame


def _contacts_of(attributes: Any) -> tuple[str, ...]:
    """`_contacts` of stored attributes (JSON text or decoded), remembered per distinct text: the
    same booking's contacts are read for each of its travellers."""
    if isinstance(attributes, str):
        return _contacts_of_text(attributes)
    return _contacts(attributes)


@lru_cache(maxsize=65_536)
def _contacts_of_text(text: str) -> tuple[str, ...]:
    return _contacts(json.loads(text))


def _contacts(attributes: dict[str, Any] | None) -> tuple[str, ...]:
    """Normalized booking-contact emails and phone suffixes of an interaction (air bookings)."""
    from features.normalize.emails import normalize_email
    from features.normalize.phones import phone_suffix

    if not attributes:
        return ()
    emails = [normalize_email(e).value for e in attributes.get("contact_emails") or []]
    phones = [phone_suffix(p) for p in attributes.get("contact_phones") or []]
    return tuple(emails + [p for p in phones if p is not None])


# One value per field, for tools that take a flat table (dedupe, the anchor benchmark).
FLAT_COLUMNS = (
    "first_name",
    "last_name",
    "dob",
    "email",
    "phone",
    "street",
    "city",
    "postal_code",
    "country",
    "document",
)


def flat_person_table(frame: pd.DataFrame) -> pd.DataFrame:
    """The mentions as one flat row each (first email, phone and document; `None` when missing),
    indexed like the frame, with `mention_key` kept."""

    def first(values: tuple[str, ...]) -> str:
        return values[0] if values else ""

    table = pd.DataFrame(
        {
            "mention_key": frame["mention_key"],
            "first_name": frame["first_name"],
            "last_name": frame["last_name"],
            "dob": frame["date_of_birth"],
            "email": frame["emails"].map(first),
            "phone": frame["phones"].map(first),
            "street": frame["street"],
            "city": frame["city"],
            "postal_code": frame["postal_code"],
            "country": frame["country"],
            "document": frame["documents"].map(lambda t: first(t).split(":", 1)[-1]),
        },
        index=frame.index,
    )
    return table.replace({"": None})
