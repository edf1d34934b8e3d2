"""Embedding rows and candidate pairs in the store (both cascade away with their mentions)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import numpy as np
from sqlalchemy import Connection, and_, delete, select, update

from profiles.store.db import bulk_insert, driver_time, indexes_deferred, mark_of, plain_rows, rows_in
from profiles.store.schema import candidate_pairs, embeddings

CHUNK = 20_000
EMBEDDING_COLUMNS = ("mention_pk", "encoder", "domain", "content_hash", "vector", "updated_at")


def embedding_hashes(conn: Connection, domain: str, encoder: str) -> dict[int, str]:
    """mention id -> content hash the stored embedding was computed from."""
    rows = conn.execute(
        select(embeddings.c.mention_pk, embeddings.c.content_hash).where(
            embeddings.c.domain == domain, embeddings.c.encoder == encoder
        )
    )
    return dict(rows.all())


def save_embeddings(
    conn: Connection,
    domain: str,
    encoder: str,
    pks: np.ndarray,
    hashes: list[str],
    vectors: np.ndarray,
    existing: set[int],
) -> None:
    """Insert or refresh embeddings (stored as float16 bytes)."""
    now = dt.datetime.now(dt.UTC)
    half = vectors.astype(np.float16)
    rows = [
        (pk, encoder, domain, h, v.tobytes(), now)
        for pk, h, v in zip(pks.tolist(), hashes, half, strict=True)
    ]
    bulk_insert(conn, embeddings, EMBEDDING_COLUMNS, (r for r in rows if r[0] not in existing))
    for row in rows:
        if row[0] in existing:
            values = dict(zip(EMBEDDING_COLUMNS, row, strict=True))
            conn.execute(
                update(embeddings)
                .where(and_(embeddings.c.mention_pk == row[0], embeddings.c.encoder == encoder))
                .values(**values)
            )


def load_vectors(
    conn: Connection, domain: str, encoder: str, dim: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(sorted mention ids, float32 vectors) of every stored embedding of a domain and encoder.

    The dimension is read from the stored rows; `dim` only shapes the empty result."""
    rows = conn.execute(
        select(embeddings.c.mention_pk, embeddings.c.vector)
        .where(embeddings.c.domain == domain, embeddings.c.encoder == encoder)
        .order_by(embeddings.c.mention_pk)
    ).all()
    pks = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    if not rows:
        return pks, np.zeros((0, dim or 0), dtype=np.float32)
    width = len(rows[0][1]) // 2
    buffer = b"".join(r[1] for r in rows)
    vectors = np.frombuffer(buffer, dtype=np.float16).reshape(len(rows), width).astype(np.float32)
    return pks, vectors


def stored_pairs(conn: Connection, domain: str) -> tuple[np.ndarray, np.ndarray]:
    """(codes a<<32|b, blockers) of the stored candidate pairs, sorted by code."""
    rows = plain_rows(
        conn,
        select(candidate_pairs.c.mention_a, candidate_pairs.c.mention_b, candidate_pairs.c.blockers).where(
            candidate_pairs.c.domain == domain
        ),
    )
    arr = np.array(rows, dtype=np.int64).reshape(-1, 3)
    codes = (arr[:, 0] << 32) | arr[:, 1]
    order = np.argsort(codes)
    return codes[order], arr[order, 2]


def replace_pairs(
    conn: Connection, domain: str, a: np.ndarray, b: np.ndarray, blockers: np.ndarray, cosine: np.ndarray
) -> dict[str, int]:
    """Make the stored pairs equal to the given ones, writing only the difference."""
    old_codes, old_flags = stored_pairs(conn, domain)
    codes = (a.astype(np.int64) << 32) | b.astype(np.int64)
    position = np.searchsorted(old_codes, codes)
    position[position >= len(old_codes)] = 0
    known = (
        (len(old_codes) > 0) & (old_codes[position] == codes)
        if len(old_codes)
        else np.zeros(len(codes), bool)
    )
    # the stored pairs no new one found (stored codes are unique): read off the search above, where
    # `np.isin` took 0.7 s for a first blocking's 1.26 million pairs against none stored
    kept = np.zeros(len(old_codes), bool)
    kept[position[known]] = True
    gone = old_codes[~kept]
    changed = known & (old_flags[position] != blockers) if len(old_codes) else known
    fresh = ~known
    now = dt.datetime.now(dt.UTC)
    for start in range(0, len(gone), CHUNK):
        part = gone[start : start + CHUNK]
        for code in part.tolist():
            conn.execute(
                delete(candidate_pairs).where(
                    candidate_pairs.c.mention_a == code >> 32,
                    candidate_pairs.c.mention_b == code & 0xFFFFFFFF,
                )
            )
    idx = np.flatnonzero(fresh)
    stamp = driver_time(conn, now)
    with indexes_deferred(conn, candidate_pairs, len(idx)):
        bulk_insert(
            conn,
            candidate_pairs,
            ("mention_a", "mention_b", "domain", "blockers", "cosine", "created_at"),
            zip(
                a[idx].tolist(),
                b[idx].tolist(),
                [domain] * len(idx),
                blockers[idx].tolist(),
                cosine[idx].astype(float).tolist(),
                [stamp] * len(idx),
                strict=True,
            ),
        )
    for i in np.flatnonzero(changed).tolist():
        conn.execute(
            update(candidate_pairs)
            .where(candidate_pairs.c.mention_a == int(a[i]), candidate_pairs.c.mention_b == int(b[i]))
            .values(blockers=int(blockers[i]), cosine=float(cosine[i]))
        )
    return {"inserted": int(fresh.sum()), "updated": int(changed.sum()), "deleted": len(gone)}


def _decode(rows: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    pks = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    if not rows:
        return pks, np.zeros((0, 0), np.float32)
    width = len(rows[0][1]) // 2
    vectors = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float16).reshape(len(rows), width)
    return pks, vectors.astype(np.float32)


_VECTORS_SQL = (
    "SELECT mention_pk, vector, domain FROM embeddings WHERE encoder = {q} AND mention_pk IN ({marks})"
)


def vectors_by_ids(
    conn: Connection, domain: str, encoder: str, pks: Iterable[int]
) -> tuple[np.ndarray, np.ndarray]:
    """(ids, float32 vectors) of the stored embeddings of these mentions."""
    ids = sorted({int(pk) for pk in pks})
    # by primary key; the domain checked on the rows (the (domain, encoder) index is wide)
    found = rows_in(conn, _VECTORS_SQL, ids, (encoder,))
    rows = [(pk, bytes(vector)) for pk, vector, where in found if where == domain]
    return _decode(rows)


def embedding_changes(
    conn: Connection, domain: str, encoder: str, since: dt.datetime | None
) -> tuple[np.ndarray, np.ndarray, dt.datetime | None]:
    """(ids, vectors, latest update time) of the embeddings written at or after `since` (all when
    None): what a process's in-memory index has to catch up on."""
    query = select(embeddings.c.mention_pk, embeddings.c.vector, embeddings.c.updated_at).where(
        embeddings.c.domain == domain, embeddings.c.encoder == encoder
    )
    if since is not None:
        query = query.where(embeddings.c.updated_at >= since)
    rows = conn.execute(query).all()
    latest = max((r[2] for r in rows), default=None)
    pks, vectors = _decode([(r[0], r[1]) for r in rows])
    return pks, vectors, latest


def embedded_ids(conn: Connection, domain: str, encoder: str) -> np.ndarray:
    rows = plain_rows(
        conn,
        select(embeddings.c.mention_pk).where(embeddings.c.domain == domain, embeddings.c.encoder == encoder),
    )
    return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))


_PAIRS_FROM_SQL = "SELECT mention_a, mention_b FROM candidate_pairs WHERE mention_a IN ({marks})"


def pairs_among(conn: Connection, domain: str, pks: Iterable[int]) -> tuple[np.ndarray, np.ndarray]:
    """The stored candidate pairs (a < b) with both mentions among these."""
    ids = sorted({int(pk) for pk in pks})
    wanted = set(ids)
    found = [(a, b) for a, b in rows_in(conn, _PAIRS_FROM_SQL, ids) if b in wanted]
    pairs = np.array(found, np.int64).reshape(-1, 2)
    return pairs[:, 0], pairs[:, 1]


def _withdraw(conn: Connection, rows: Iterable[tuple[int, int, int, int]]) -> set[tuple[int, int]]:
    """Take blocker bits off stored pairs: each (a, b, the pair's blockers, the bits to take off);
    a pair no blocker proposes any more is deleted. The pairs deleted (a < b)."""
    kept: list[tuple[int, int, int]] = []
    dropped: list[tuple[int, int]] = []
    for a, b, flags, bits in rows:
        left = int(flags) & ~int(bits)
        if left == int(flags):
            continue
        if left:
            kept.append((left, int(a), int(b)))
        else:
            dropped.append((int(a), int(b)))
    # one statement run for every pair (an arrival can take a few dozen pairs out)
    q = mark_of(conn.dialect.paramstyle)
    where = f"WHERE mention_a = {q} AND mention_b = {q}"
    if kept:
        conn.exec_driver_sql(f"UPDATE candidate_pairs SET blockers = {q} {where}", kept)
    if dropped:
        conn.exec_driver_sql(f"DELETE FROM candidate_pairs {where}", dropped)
    return set(dropped)


def drop_pairs_of_block(
    conn: Connection, domain: str, blocker: int, members: list[int]
) -> set[tuple[int, int]]:
    """Take blocker `blocker` off the stored candidate pairs among `members` (a block grown too
    large: the batch proposes none of its pairs), deleting those no other blocker proposes; the
    pairs deleted (a < b)."""
    ids = sorted({int(m) for m in members})
    found = plain_rows(
        conn,
        select(candidate_pairs.c.mention_a, candidate_pairs.c.mention_b, candidate_pairs.c.blockers).where(
            candidate_pairs.c.mention_a.in_(ids),
            candidate_pairs.c.mention_b.in_(ids),
            candidate_pairs.c.domain == domain,
        ),
    )
    return _withdraw(conn, [(a, b, f, blocker) for a, b, f in found if int(f) & int(blocker)])


def withdraw_blockers(conn: Connection, pairs: Iterable[tuple[int, int, int]]) -> set[tuple[int, int]]:
    """Take each (a, b, blocker)'s blocker off the stored pair (a < b), deleting the pairs no other
    blocker proposes; the pairs deleted."""
    wanted: dict[tuple[int, int], int] = {}
    for a, b, blocker in pairs:
        wanted[(int(a), int(b))] = wanted.get((int(a), int(b)), 0) | int(blocker)
    if not wanted:
        return set()
    found = plain_rows(
        conn,
        select(candidate_pairs.c.mention_a, candidate_pairs.c.mention_b, candidate_pairs.c.blockers).where(
            candidate_pairs.c.mention_a.in_(sorted({a for a, _ in wanted}))
        ),
    )
    return _withdraw(conn, [(a, b, f, wanted[(a, b)]) for a, b, f in found if (a, b) in wanted])


def add_pairs(
    conn: Connection, domain: str, a: np.ndarray, b: np.ndarray, blockers: np.ndarray, cosine: np.ndarray
) -> int:
    """Store candidate pairs not stored yet (an online lookup's), and add the blockers a stored
    pair lacks; the next `upt block` makes the stored pairs exactly its own again."""
    stored = {
        (x, y): f
        for x, y, f in plain_rows(
            conn,
            # by the primary key alone (ids are the store's): a domain condition made SQLite
            # walk the domain index instead
            select(
                candidate_pairs.c.mention_a, candidate_pairs.c.mention_b, candidate_pairs.c.blockers
            ).where(candidate_pairs.c.mention_a.in_(sorted(set(a.tolist())))),
        )
    }
    for x, y, f in zip(a.tolist(), b.tolist(), blockers.tolist(), strict=True):
        had = stored.get((x, y))
        if had is not None and int(had) | int(f) != int(had):
            conn.execute(
                update(candidate_pairs)
                .where(candidate_pairs.c.mention_a == x, candidate_pairs.c.mention_b == y)
                .values(blockers=int(had) | int(f))
            )
    stamp = driver_time(conn, dt.datetime.now(dt.UTC))
    rows = [
        (int(x), int(y), domain, int(f), None if c != c else float(c), stamp)
        for x, y, f, c in zip(a.tolist(), b.tolist(), blockers.tolist(), cosine.tolist(), strict=True)
        if (x, y) not in stored
    ]
    return bulk_insert(
        conn, candidate_pairs, ("mention_a", "mention_b", "domain", "blockers", "cosine", "created_at"), rows
    )
