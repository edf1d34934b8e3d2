"""The blocking keys of every mention, kept at ingest (`blocking_keys`): one mention's candidates
are index probes into them, never a self-join over the domain.

Rows are computed by `features.blocking.keys.mention_keys` and written here, each with its
mention's order key (`features.blocking.order`); the index (domain, kind, key, name, order_key,
mention_pk) serves both a key's block and the string pass's window of names around a mention, in
the order the batch pass sorts them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd
from sqlalchemy import Connection, delete, func, select

from profiles.store.db import bulk_insert, mark_of, plain_rows, rows_in
from profiles.store.schema import blocking_keys

COLUMNS = ("mention_pk", "domain", "kind", "key", "name", "order_key")
CHUNK = 500


def replace_keys(conn: Connection, domain: str, mention_pks: Iterable[int], rows: pd.DataFrame) -> int:
    """Make the stored keys of these mentions equal to `rows` (mention_pk, kind, key, name,
    order_key)."""
    pks = sorted({int(pk) for pk in mention_pks})
    for start in range(0, len(pks), CHUNK):
        conn.execute(delete(blocking_keys).where(blocking_keys.c.mention_pk.in_(pks[start : start + CHUNK])))
    return bulk_insert(
        conn,
        blocking_keys,
        COLUMNS,
        zip(
            rows["mention_pk"].astype(int).tolist(),
            [domain] * len(rows),
            rows["kind"].astype(int).tolist(),
            rows["key"].tolist(),
            [n or None for n in rows["name"].tolist()],
            rows["order_key"].astype(int).tolist(),
            strict=True,
        ),
    )


def clear_keys(conn: Connection, domain: str) -> None:
    conn.execute(delete(blocking_keys).where(blocking_keys.c.domain == domain))


def stored_keys(conn: Connection, domain: str, mention_pks: Sequence[int] | None = None) -> pd.DataFrame:
    """(mention_pk, kind, key, name, order_key) rows of these mentions (or the whole domain)."""
    query = select(
        blocking_keys.c.mention_pk,
        blocking_keys.c.kind,
        blocking_keys.c.key,
        blocking_keys.c.name,
        blocking_keys.c.order_key,
    )
    query = query.where(blocking_keys.c.domain == domain)
    if mention_pks is None:
        rows: list[Any] = plain_rows(conn, query)
    else:
        pks = list(mention_pks)
        rows = []
        for start in range(0, len(pks), CHUNK):
            rows += plain_rows(conn, query.where(blocking_keys.c.mention_pk.in_(pks[start : start + CHUNK])))
    frame = pd.DataFrame(rows, columns=["mention_pk", "kind", "key", "name", "order_key"])
    frame["name"] = frame["name"].fillna("")
    return frame


def keys_of_kinds(
    conn: Connection, domain: str, mention_pks: Sequence[int], kinds: Sequence[int]
) -> dict[int, list[str]]:
    """mention id -> its stored keys of these kinds (a home's residents' contacts, in one raw
    statement per 500 mentions: an online lookup reads them)."""
    kinds_sql = ", ".join(str(int(k)) for k in kinds)
    template = f"SELECT mention_pk, key, domain FROM blocking_keys WHERE kind IN ({kinds_sql}) AND mention_pk IN ({{marks}})"
    out: dict[int, list[str]] = {}
    for pk, key, where in rows_in(conn, template, sorted({int(p) for p in mention_pks})):
        if where == domain:
            out.setdefault(int(pk), []).append(key)
    return out


def probe_keys(
    conn: Connection, domain: str, probes: Sequence[tuple[int, str]], limit: int
) -> dict[tuple[int, str], list[int]]:
    """The mentions holding each (kind, key), at most `limit` per key, in one round trip (each key
    an index probe of its own): a mention's candidates come from a dozen keys, and a statement
    per key cost more than the probes."""
    probes = list(dict.fromkeys(probes))
    out: dict[tuple[int, str], list[int]] = {p: [] for p in probes}
    if conn.dialect.name == "postgresql" and probes:
        # the keys as two arrays: one statement text for any number of keys (parsed and
        # planned once), each key still an index probe of its own
        rows = conn.exec_driver_sql(
            _PROBE_ARRAYS_SQL, ([int(k) for k, _ in probes], [key for _, key in probes], domain, int(limit))
        ).fetchall()
        for kind, key, pk in rows:
            out[(int(kind), key)].append(int(pk))
        return out
    for start in range(0, len(probes), 40):
        part = probes[start : start + 40]
        one = "SELECT kind, key, mention_pk FROM (SELECT kind, key, mention_pk FROM blocking_keys "
        q = mark_of(conn.dialect.paramstyle)
        sql = " UNION ALL ".join(
            f"{one}WHERE domain = {q} AND kind = {q} AND key = {q} LIMIT {q}) AS p{i}"
            for i in range(len(part))
        )
        params: list[Any] = []
        for kind, key in part:
            params += [domain, int(kind), key, int(limit)]
        for kind, key, pk in conn.exec_driver_sql(sql, tuple(params)).fetchall():
            out[(int(kind), key)].append(int(pk))
    return out


_PROBE_ARRAYS_SQL = (
    "SELECT p.kind, p.key, b.mention_pk FROM unnest(%s::int[], %s::text[]) AS p(kind, key) "
    "CROSS JOIN LATERAL (SELECT mention_pk FROM blocking_keys WHERE domain = %s AND kind = p.kind "
    'AND key = p.key COLLATE "C" LIMIT %s) AS b'
)


def windows_around(
    conn: Connection,
    domain: str,
    spots: Sequence[tuple[int, str, str, int, int]],
    before: int,
    after: Sequence[int],
) -> list[tuple[list[tuple[int, int, str]], list[tuple[int, int, str]]]]:
    """For each (kind, block key, name, order key, mention id) spot of a string-pass block: up to
    `before` rows (mention id, order key, name) just before it (nearest first) and up to
    `after[i]` rows just after it, in the block's order (name, order key, then mention id).

    A statement per side, each an index range scan whose rows come in the order asked: on
    SQLite (in-process) a statement costs microseconds, and re-sorting and regrouping the two
    thousand rows of one UNION ALL cost milliseconds; on a server, one round trip for all."""
    q = mark_of(conn.dialect.paramstyle)
    head = (
        f"SELECT mention_pk, order_key, name FROM blocking_keys WHERE domain = {q} AND kind = {q} "
        f"AND key = {q} AND (name, order_key, mention_pk) {{op}} ({q}, {q}, {q}) "
        f"ORDER BY name {{order}}, order_key {{order}}, mention_pk {{order}} LIMIT {q}"
    )
    sides = (head.format(op="<", order="DESC"), head.format(op=">", order="ASC"))
    wanted: list[tuple[int, int, list[Any]]] = [
        (i, side, [domain, int(kind), key, name, int(order), int(pk), limit])
        for i, (kind, key, name, order, pk) in enumerate(spots)
        for side, limit in ((0, int(before)), (1, int(after[i])))
        if limit > 0
    ]
    out: list[tuple[list[tuple[int, int, str]], list[tuple[int, int, str]]]] = [([], []) for _ in spots]
    if conn.dialect.name == "sqlite":
        for i, side, params in wanted:
            out[i][side].extend(conn.exec_driver_sql(sides[side], tuple(params)).cursor.fetchall())
        return out
    if not wanted:
        return out
    sql = " UNION ALL ".join(
        f"SELECT {side} AS side, {i} AS spot, mention_pk, order_key, name FROM ({sides[side]}) AS w{side}{i}"
        for i, side, _ in wanted
    )
    params = [p for _, _, ps in wanted for p in ps]
    for side, spot, pk, order, name in conn.exec_driver_sql(sql, tuple(params)).cursor.fetchall():
        out[spot][side].append((pk, order, name))
    # UNION ALL keeps no order across its parts: each side in the block's order again
    return [
        (
            sorted(b, key=lambda r: (r[2], r[1], r[0]), reverse=True),
            sorted(a, key=lambda r: (r[2], r[1], r[0])),
        )
        for b, a in out
    ]


def key_members(conn: Connection, domain: str, kind: int, key: str, limit: int) -> list[int]:
    """The mentions holding a key, at most `limit` of them (ask one more than a block may hold
    to learn that it is too big)."""
    query = (
        select(blocking_keys.c.mention_pk)
        .where(blocking_keys.c.domain == domain, blocking_keys.c.kind == kind, blocking_keys.c.key == key)
        .limit(limit)
    )
    return [int(r[0]) for r in plain_rows(conn, query)]


def keys_present(conn: Connection, domain: str, kind: int, keys: Sequence[str]) -> set[str]:
    """Which of these keys some mention holds under `kind`."""
    if not keys:
        return set()
    query = select(blocking_keys.c.key).where(
        blocking_keys.c.domain == domain, blocking_keys.c.kind == kind, blocking_keys.c.key.in_(list(keys))
    )
    return {r[0] for r in plain_rows(conn, query.distinct())}


def count_keys(conn: Connection, domain: str) -> int:
    return int(
        conn.execute(
            select(func.count()).select_from(blocking_keys).where(blocking_keys.c.domain == domain)
        ).scalar_one()
    )
