"""Read queries of the store: statistics and rejected input. All filtered by domain."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Collection, Iterable
from typing import Any

from sqlalchemy import Connection, func, select, update

from profiles.errors import NotFound
from profiles.resolution.people import MOST_SPELLINGS, NameEntry, is_shared
from profiles.store.db import mark_of, rows_in
from profiles.store.revisits import waiting_revisits
from profiles.store.schema import mentions, objects, profiles, rejected


def store_stats(conn: Connection, domain: str) -> dict[str, Any]:
    """Totals at the top (`objects`, `mentions`, `profiles`, `rejected`), then breakdowns."""
    by_type = [
        {"source": s, "object_type": t, "count": n}
        for s, t, n in conn.execute(
            select(objects.c.source, objects.c.object_type, func.count())
            .where(objects.c.domain == domain)
            .group_by(objects.c.source, objects.c.object_type)
            .order_by(objects.c.source, objects.c.object_type)
        )
    ]
    mention_status = [
        {"source": s, "status": "matchable" if ok else "unmatchable", "count": n}
        for s, ok, n in conn.execute(
            select(mentions.c.source, mentions.c.matchable, func.count())
            .where(mentions.c.domain == domain)
            .group_by(mentions.c.source, mentions.c.matchable)
            .order_by(mentions.c.source, mentions.c.matchable)
        )
    ]
    flags: Counter[str] = Counter()
    for (row_flags,) in conn.execute(select(mentions.c.flags).where(mentions.c.domain == domain)):
        flags.update((row_flags or {}).keys())
    rejected_status: dict[str, int] = dict(
        conn.execute(
            select(rejected.c.status, func.count())
            .where(rejected.c.domain == domain)
            .group_by(rejected.c.status)
        ).all()
    )
    profile_status: dict[str, int] = dict(
        conn.execute(
            select(profiles.c.status, func.count())
            .where(profiles.c.domain == domain)
            .group_by(profiles.c.status)
        ).all()
    )
    return {
        "domain": domain,
        "objects": sum(r["count"] for r in by_type),
        "mentions": sum(r["count"] for r in mention_status),
        "profiles": profile_status.get("active", 0),
        "rejected": rejected_status.get("open", 0),
        # mentions online arrivals queued to be resolved again (`profiles.store.revisits`)
        "revisits_waiting": waiting_revisits(conn, domain),
        "objects_by_source_and_type": by_type,
        "mentions_by_source_and_status": mention_status,
        "flags_by_field": dict(sorted(flags.items())),
        "rejected_by_status": rejected_status,
        "profiles_by_status": profile_status,
    }


def list_rejections(
    conn: Connection, domain: str, status: str | None = "open", limit: int = 100
) -> list[dict]:
    """Rejected input, newest first, without the raw bytes (see `get_rejection`)."""
    query = select(
        rejected.c.id,
        rejected.c.origin,
        rejected.c.location,
        rejected.c.field,
        rejected.c.reason,
        rejected.c.status,
        rejected.c.times_seen,
        rejected.c.last_seen_at,
        func.length(rejected.c.raw),
    ).where(rejected.c.domain == domain)
    if status:
        query = query.where(rejected.c.status == status)
    rows = conn.execute(query.order_by(rejected.c.id.desc()).limit(limit))
    return [
        {
            "id": r[0],
            "origin": r[1],
            "location": r[2],
            "field": r[3],
            "reason": r[4],
            "status": r[5],
            "times_seen": r[6],
            "last_seen_at": r[7].isoformat() if r[7] else None,
            "bytes": r[8],
        }
        for r in rows
    ]


def get_rejection(conn: Connection, domain: str, rejection_id: int) -> dict[str, Any]:
    row = (
        conn.execute(select(rejected).where(rejected.c.domain == domain, rejected.c.id == rejection_id))
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(
            f"no rejected input with id {rejection_id} in domain {domain!r}; see `upt errors list`"
        )
    return dict(row)


def mark_replayed(conn: Connection, domain: str, rejection_id: int) -> None:
    conn.execute(
        update(rejected)
        .where(rejected.c.domain == domain, rejected.c.id == rejection_id)
        .values(status="replayed")
    )


def store_id(conn: Connection) -> str:
    """The store's own id, made once when first asked for."""
    import uuid

    from sqlalchemy import insert

    from profiles.store.schema import store_info

    value = conn.execute(select(store_info.c.value).where(store_info.c.key == "store_id")).scalar()
    if value is None:
        value = uuid.uuid4().hex
        conn.execute(insert(store_info).values(key="store_id", value=value))
    return str(value)


_IDENTIFIER_KIND = {"emails": "email", "phones": "phone"}


def shared_contact_values(
    conn: Connection,
    domain: str,
    column: str,
    values: set[str],
    max_names: int,
    without: Collection[int] = (),
) -> set[str]:
    """Which of these emails or phones (`column`: emails | phones) the domain's mentions hold for
    more than `max_names` people, or for two people of one name told apart by their birth dates:
    the answer `profiles.resolution.rules.shared_in_frame` gives over the whole domain's frame.
    First an index probe per value that counts its distinct spellings (stopping past
    `MOST_SPELLINGS`: a corporate email on thousands of mentions costs a few dozen rows, not
    thousands) and whether it is written under two birth dates, all values in one statement; then,
    for the values under more spellings than `max_names` or more than one date, their (name,
    date) entries, counted as people (`is_shared`).
    `without`: mentions left out of the count (was the value shared before they arrived?)."""
    if not values:
        return set()
    q = mark_of(conn.dialect.paramstyle)
    first, last = "COALESCE(m.first_name, '')", "COALESCE(m.last_name, '')"
    born = "COALESCE(m.date_of_birth, '')"
    others = f" AND m.id NOT IN ({', '.join(str(int(pk)) for pk in sorted(without))})" if without else ""
    holders = (
        f"FROM identifiers AS i JOIN mentions AS m ON m.id = i.mention_pk WHERE i.domain = {q} "
        f"AND i.kind = {q} AND i.value = {q} AND m.matchable = {q} AND ({first} <> '' OR {last} <> ''){others}"
    )
    names = f"SELECT COUNT(*) FROM (SELECT DISTINCT {first}, {last} {holders} LIMIT {q}) AS names"
    dates = f"SELECT COUNT(*) FROM (SELECT DISTINCT {born} {holders} AND {born} <> '' LIMIT 2) AS dates"
    kind = _IDENTIFIER_KIND[column]
    wanted = sorted(values)
    out: set[str] = set()
    several: list[str] = []
    for start in range(0, len(wanted), 100):
        part = wanted[start : start + 100]
        sql = " UNION ALL ".join(
            f"SELECT {j} AS at, ({names}) AS names, ({dates}) AS dates" for j in range(len(part))
        )
        params = [p for v in part for p in (domain, kind, v, True, MOST_SPELLINGS + 1, domain, kind, v, True)]
        for at, spelled_as, dated in conn.exec_driver_sql(sql, tuple(params)).cursor.fetchall():
            if spelled_as > MOST_SPELLINGS:
                out.add(part[at])
            elif spelled_as > max_names or dated > 1:
                several.append(part[at])
    canonical = _json_field(conn, "m.normalized", "first_name_canonical")
    # the entries of every such value in one statement per hundred values, counted per value
    entries: dict[str, list[NameEntry]] = {}
    for start in range(0, len(several), 100):
        part = several[start : start + 100]
        sql = (
            f"SELECT DISTINCT i.value, {first}, {last}, {canonical}, {born} FROM identifiers AS i "
            f"JOIN mentions AS m ON m.id = i.mention_pk WHERE i.domain = {q} AND i.kind = {q} "
            f"AND i.value IN ({', '.join([q] * len(part))}) AND m.matchable = {q} "
            f"AND ({first} <> '' OR {last} <> ''){others}"
        )
        rows = conn.exec_driver_sql(sql, (domain, kind, *part, True)).cursor.fetchall()
        for value, f, la, c, d in rows:
            entries.setdefault(value, []).append((f, la, frozenset(json.loads(c) if c else ()), d))
    out |= {value for value, held in entries.items() if is_shared(held, max_names)}
    return out


def holders_of(conn: Connection, domain: str, column: str, value: str, limit: int) -> list[int]:
    """The matchable mentions holding an email or phone (`column`: emails | phones), by id, at
    most `limit`."""
    q = mark_of(conn.dialect.paramstyle)
    sql = (
        "SELECT DISTINCT i.mention_pk FROM identifiers AS i JOIN mentions AS m ON m.id = i.mention_pk "
        f"WHERE i.domain = {q} AND i.kind = {q} AND i.value = {q} AND m.matchable = {q} "
        f"ORDER BY i.mention_pk LIMIT {q}"
    )
    rows = conn.exec_driver_sql(sql, (domain, _IDENTIFIER_KIND[column], value, True, int(limit))).fetchall()
    return [int(r[0]) for r in rows]


_IDS_OF_KEYS_SQL = (
    "SELECT mention_key, id, domain FROM mentions WHERE domain = {q} AND mention_key IN ({marks})"
)
# by id: the domain checked on the rows (see `features.frame.mention_rows_by_ids`)
_KEYS_OF_IDS_SQL = "SELECT id, mention_key, domain FROM mentions WHERE id IN ({marks})"


def mention_ids(conn: Connection, domain: str, keys: Iterable[str]) -> dict[str, int]:
    """mention key -> store id, for the keys that are stored."""
    rows = rows_in(conn, _IDS_OF_KEYS_SQL, sorted(set(keys)), (domain,))
    return {key: pk for key, pk, where in rows if where == domain}


def all_mention_keys(conn: Connection, domain: str) -> tuple[list[int], list[str]]:
    """(store ids, mention keys) of every mention of a domain."""
    rows = conn.exec_driver_sql(
        f"SELECT id, mention_key FROM mentions WHERE domain = {mark_of(conn.dialect.paramstyle)}", (domain,)
    ).cursor.fetchall()
    return [r[0] for r in rows], [r[1] for r in rows]


def mention_keys_of(conn: Connection, domain: str, pks: Iterable[int]) -> dict[int, str]:
    """store id -> mention key."""
    rows = rows_in(conn, _KEYS_OF_IDS_SQL, sorted({int(pk) for pk in pks}))
    return {pk: key for pk, key, where in rows if where == domain}


def addresses_of(conn: Connection, domain: str, pks: Iterable[int]) -> dict[int, tuple[Any, Any]]:
    """store id -> (normalized street, normalized postal code) of these matchable mentions: the
    two fields of a home, read out of the normalized record by the database (a booking contact's
    two hundred holders, without parsing or framing their records)."""
    fields = ", ".join(_json_field(conn, "normalized", f) for f in ("street", "postal_code"))
    template = f"SELECT id, {fields}, domain, matchable FROM mentions WHERE id IN ({{marks}})"
    rows = rows_in(conn, template, sorted({int(pk) for pk in pks}))
    return {
        pk: (street, postal) for pk, street, postal, where, matchable in rows if where == domain and matchable
    }


def names_of(conn: Connection, domain: str, pks: Iterable[int]) -> dict[int, tuple[str, str, list[str]]]:
    """store id -> (normalized first name, last name, canonical first names) of these matchable
    mentions ("" and [] where they have none)."""
    canonical = _json_field(conn, "normalized", "first_name_canonical")
    template = f"SELECT id, first_name, last_name, {canonical}, domain, matchable FROM mentions WHERE id IN ({{marks}})"
    rows = rows_in(conn, template, sorted({int(pk) for pk in pks}))
    return {
        pk: (first or "", last or "", json.loads(forms) if forms else [])
        for pk, first, last, forms, where, matchable in rows
        if where == domain and matchable
    }


def _json_field(conn: Connection, column: str, field: str) -> str:
    """SQL reading one text field of a JSON column, in the connection's dialect."""
    if conn.dialect.name == "sqlite":
        return f"json_extract({column}, '$.{field}')"
    return f"{column} ->> '{field}'"
