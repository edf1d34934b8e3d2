"""Transactional, idempotent writes of object batches and rejected input."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, delete, insert, select, update

from profiles.store.records import MentionRecord, ObjectRecord, Rejection, WriteResult, as_utc
from profiles.store.schema import identifiers, interactions, mentions, objects, rejected

_MENTION_COLUMNS = ("first_name", "last_name", "full_name", "date_of_birth", "postal_code", "country")


def _mention_row(
    domain: str, object_pk: int, obj: ObjectRecord, m: MentionRecord, now: dt.datetime
) -> dict[str, Any]:
    norm = m.normalized
    row = {
        "domain": domain,
        "mention_key": m.key,
        "object_pk": object_pk,
        "source": obj.source,
        "object_type": obj.object_type,
        "path": m.path,
        "matchable": m.matchable,
        "raw": m.raw,
        "normalized": norm,
        "flags": norm.get("flags", {}),
        "content_hash": m.content_hash,
        "updated_at": now,
        "email": (norm.get("emails") or [None])[0],
        "phone": (norm.get("phones") or [None])[0],
    }
    row.update({c: norm.get(c) for c in _MENTION_COLUMNS})
    return row


def _children(
    domain: str, object_pk: int, m: MentionRecord, mention_pk: int
) -> tuple[list[dict], list[dict]]:
    ids = [{"domain": domain, "mention_pk": mention_pk, "kind": k, "value": v} for k, v in m.identifiers]
    inter = []
    if m.interaction:
        inter.append({"domain": domain, "object_pk": object_pk, "mention_pk": mention_pk, **m.interaction})
    return ids, inter


def _key_filter(keys: Sequence[tuple[str, str, str]]) -> list[ColumnElement[bool]]:
    """Three IN lists instead of one row-value IN: SQLite probes the unique index with the
    former and scans the whole domain with the latter. The result is a superset of `keys`;
    callers look rows up by exact key."""
    return [
        objects.c.source.in_(sorted({k[0] for k in keys})),
        objects.c.object_type.in_(sorted({k[1] for k in keys})),
        objects.c.object_id.in_(sorted({k[2] for k in keys})),
    ]


def _newest_per_key(batch: Sequence[ObjectRecord]) -> list[ObjectRecord]:
    chosen: dict[tuple[str, str, str], ObjectRecord] = {}
    for obj in batch:
        old = chosen.get(obj.key)
        if old is None or not obj.versioned or as_utc(obj.modified_at) > as_utc(old.modified_at):
            chosen[obj.key] = obj
    return list(chosen.values())


def stored_versions(
    conn: Connection, domain: str, keys: Sequence[tuple[str, str, str]]
) -> dict[tuple[str, str, str], dt.datetime]:
    """The stored `modified_at` of each key that is stored, to skip unchanged objects early."""
    if not keys:
        return {}
    rows = conn.execute(
        select(objects.c.source, objects.c.object_type, objects.c.object_id, objects.c.modified_at)
        .where(objects.c.domain == domain)
        .where(*_key_filter(keys))
    )
    wanted = set(keys)
    return {(r[0], r[1], r[2]): as_utc(r[3]) for r in rows if (r[0], r[1], r[2]) in wanted}


def write_objects(conn: Connection, domain: str, batch: Sequence[ObjectRecord]) -> WriteResult:
    """Insert new objects, replace older versions, skip the rest; in the caller's transaction.

    An object whose stored version is equal or newer (or, for unversioned rows, whose content is
    the same) changes nothing, so re-ingesting a file is a no-op.
    """
    result = WriteResult()
    todo = _newest_per_key(batch)
    result.unchanged += len(batch) - len(todo)
    if not todo:
        return result
    keys = [o.key for o in todo]
    existing = {
        (r.source, r.object_type, r.object_id): r
        for r in conn.execute(
            select(
                objects.c.id,
                objects.c.source,
                objects.c.object_type,
                objects.c.object_id,
                objects.c.modified_at,
                objects.c.content_hash,
            )
            .where(objects.c.domain == domain)
            .where(*_key_filter(keys))
        )
    }
    now = dt.datetime.now(dt.UTC)
    fresh: list[ObjectRecord] = []
    for obj in todo:
        old = existing.get(obj.key)
        if old is None:
            fresh.append(obj)
        elif (
            (as_utc(obj.modified_at) > as_utc(old.modified_at))
            if obj.versioned
            else (obj.content_hash != old.content_hash)
        ):
            _replace(conn, domain, old.id, obj, now)
            result.replaced += 1
        else:
            result.unchanged += 1
    if fresh:
        _insert(conn, domain, fresh, now)
        result.inserted += len(fresh)
    return result


def _insert(conn: Connection, domain: str, fresh: list[ObjectRecord], now: dt.datetime) -> None:
    rows = [
        {
            "domain": domain,
            "source": o.source,
            "object_type": o.object_type,
            "object_id": o.object_id,
            "modified_at": as_utc(o.modified_at),
            "content_hash": o.content_hash,
            "payload": o.payload,
            "ingested_at": now,
        }
        for o in fresh
    ]
    # Plain executemany plus one keyed select: RETURNING in parameter order makes SQLite run
    # one statement per row, several times slower.
    conn.execute(insert(objects), rows)
    pks = {
        (r.source, r.object_type, r.object_id): r.id
        for r in conn.execute(
            select(objects.c.id, objects.c.source, objects.c.object_type, objects.c.object_id)
            .where(objects.c.domain == domain)
            .where(*_key_filter([o.key for o in fresh]))
        )
    }
    _insert_mentions(conn, domain, [(pks[o.key], o, m) for o in fresh for m in o.mentions], now)


def _insert_mentions(
    conn: Connection, domain: str, items: list[tuple[int, ObjectRecord, MentionRecord]], now: dt.datetime
) -> None:
    if not items:
        return
    rows = [_mention_row(domain, pk, o, m, now) for pk, o, m in items]
    conn.execute(insert(mentions), rows)
    mention_pks = dict(
        conn.execute(
            select(mentions.c.mention_key, mentions.c.id).where(
                mentions.c.domain == domain, mentions.c.mention_key.in_([m.key for _, _, m in items])
            )
        ).all()
    )
    id_rows: list[dict] = []
    inter_rows: list[dict] = []
    for object_pk, _, m in items:
        ids, inter = _children(domain, object_pk, m, mention_pks[m.key])
        id_rows += ids
        inter_rows += inter
    if id_rows:
        conn.execute(insert(identifiers), id_rows)
    if inter_rows:
        conn.execute(insert(interactions), inter_rows)


def _replace(conn: Connection, domain: str, object_pk: int, obj: ObjectRecord, now: dt.datetime) -> None:
    """Swap in a newer version; mentions keep their row (and so their profile) when their key stays."""
    conn.execute(
        update(objects)
        .where(objects.c.id == object_pk)
        .values(
            modified_at=as_utc(obj.modified_at),
            content_hash=obj.content_hash,
            payload=obj.payload,
            ingested_at=now,
        )
    )
    conn.execute(delete(interactions).where(interactions.c.object_pk == object_pk))
    old = {
        r.mention_key: (r.id, r.content_hash)
        for r in conn.execute(
            select(mentions.c.id, mentions.c.mention_key, mentions.c.content_hash).where(
                mentions.c.object_pk == object_pk
            )
        )
    }
    new_keys = {m.key for m in obj.mentions}
    gone = [pk for key, (pk, _) in old.items() if key not in new_keys]
    if gone:
        conn.execute(delete(mentions).where(mentions.c.id.in_(gone)))
    added: list[tuple[int, ObjectRecord, MentionRecord]] = []
    inter_rows: list[dict] = []
    for m in obj.mentions:
        if m.key not in old:
            added.append((object_pk, obj, m))
            continue
        mention_pk, old_hash = old[m.key]
        if old_hash != m.content_hash:
            row = _mention_row(domain, object_pk, obj, m, now)
            conn.execute(update(mentions).where(mentions.c.id == mention_pk).values(**row))
            conn.execute(delete(identifiers).where(identifiers.c.mention_pk == mention_pk))
            ids, _ = _children(domain, object_pk, m, mention_pk)
            if ids:
                conn.execute(insert(identifiers), ids)
        inter_rows += _children(domain, object_pk, m, mention_pk)[1]
    if inter_rows:
        conn.execute(insert(interactions), inter_rows)
    _insert_mentions(conn, domain, added, now)


def write_rejections(conn: Connection, domain: str, items: Sequence[Rejection]) -> int:
    """Keep each rejected input once (by its exact bytes), counting how often it was seen."""
    if not items:
        return 0
    now = dt.datetime.now(dt.UTC)
    unique = {r.raw_hash: r for r in items}
    seen_now = Counter(r.raw_hash for r in items)
    seen = {
        row.raw_hash: row.id
        for row in conn.execute(
            select(rejected.c.id, rejected.c.raw_hash).where(
                rejected.c.domain == domain, rejected.c.raw_hash.in_(list(unique))
            )
        )
    }
    new_rows = []
    for h, r in unique.items():
        if h in seen:
            conn.execute(
                update(rejected)
                .where(rejected.c.id == seen[h])
                .values(
                    origin=r.origin,
                    location=r.location,
                    field=r.field,
                    reason=r.reason,
                    status="open",
                    times_seen=rejected.c.times_seen + seen_now[h],
                    last_seen_at=now,
                )
            )
        else:
            new_rows.append(
                {
                    "domain": domain,
                    "raw_hash": h,
                    "raw": r.raw,
                    "origin": r.origin,
                    "location": r.location,
                    "field": r.field,
                    "reason": r.reason,
                    "status": "open",
                    "times_seen": seen_now[h],
                    "first_seen_at": now,
                    "last_seen_at": now,
                }
            )
    if new_rows:
        conn.execute(insert(rejected), new_rows)
    return len(items)


def write_batch(
    conn: Connection, domain: str, records: Sequence[ObjectRecord], rejections: Sequence[Rejection]
) -> WriteResult:
    """Objects and rejected input of one batch, in the caller's transaction: all or nothing."""
    result = write_objects(conn, domain, records)
    result.rejected += write_rejections(conn, domain, rejections)
    return result


def write_audit(conn: Connection, domain: str, actor: str, action: str, details: dict[str, Any]) -> None:
    """One audit-log entry (never personal data: ids, versions, counts)."""
    from profiles.store.schema import audit_log

    conn.execute(
        insert(audit_log).values(
            domain=domain, at=dt.datetime.now(dt.UTC), actor=actor, action=action, details=details
        )
    )
