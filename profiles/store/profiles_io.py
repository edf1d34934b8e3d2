"""Profiles, membership, decisions and the review queue in the store."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from profiles.store.schema import match_decisions, profile_members, profiles, review_queue

CHUNK = 20_000


def current_membership(conn: Connection, domain: str) -> tuple[dict[int, str], dict[str, str]]:
    """(mention id -> active profile id, profile id -> created_at as sortable text)."""
    members = dict(
        conn.execute(
            select(profile_members.c.mention_pk, profile_members.c.profile_id).where(
                profile_members.c.domain == domain
            )
        ).all()
    )
    created = {
        pid: str(at)
        for pid, at in conn.execute(
            select(profiles.c.id, profiles.c.created_at).where(profiles.c.domain == domain)
        )
    }
    return members, created


def write_profiles(
    conn: Connection,
    domain: str,
    assignment: dict[int, str],
    golden: dict[str, dict[str, Any]],
    retired: dict[str, str | None],
) -> dict[str, int]:
    """Make membership equal to `assignment`; create, refresh and retire profiles accordingly."""
    now = dt.datetime.now(dt.UTC)
    existing = set(conn.execute(select(profiles.c.id).where(profiles.c.domain == domain)).scalars())
    new_ids = [pid for pid in golden if pid not in existing]
    for start in range(0, len(new_ids), CHUNK):
        conn.execute(
            insert(profiles),
            [
                {
                    "id": pid,
                    "domain": domain,
                    "status": "active",
                    "golden": golden[pid],
                    "created_at": now,
                    "updated_at": now,
                }
                for pid in new_ids[start : start + CHUNK]
            ],
        )
    for pid in set(golden) & existing:
        conn.execute(
            update(profiles)
            .where(profiles.c.id == pid)
            .values(status="active", golden=golden[pid], updated_at=now)
        )
    for pid, into in retired.items():
        conn.execute(
            update(profiles)
            .where(profiles.c.id == pid)
            .values(status="retired", golden={"merged_into": into}, updated_at=now)
        )
    conn.execute(delete(profile_members).where(profile_members.c.domain == domain))
    rows = [
        {"mention_pk": m, "domain": domain, "profile_id": p, "added_at": now} for m, p in assignment.items()
    ]
    for start in range(0, len(rows), CHUNK):
        conn.execute(insert(profile_members), rows[start : start + CHUNK])
    return {"profiles": len(golden), "created": len(new_ids), "retired": len(retired)}


def record_decisions(conn: Connection, domain: str, rows: list[dict[str, Any]]) -> None:
    now = dt.datetime.now(dt.UTC)
    for start in range(0, len(rows), CHUNK):
        conn.execute(
            insert(match_decisions),
            [{**r, "domain": domain, "decided_at": now} for r in rows[start : start + CHUNK]],
        )


def queue_reviews(conn: Connection, domain: str, rows: list[dict[str, Any]]) -> int:
    """Add review items not already open for the same pair."""
    now = dt.datetime.now(dt.UTC)
    open_pairs = set(
        conn.execute(
            select(review_queue.c.mention_a, review_queue.c.mention_b).where(
                review_queue.c.domain == domain, review_queue.c.status == "open"
            )
        ).all()
    )
    fresh = [r for r in rows if (r["mention_a"], r["mention_b"]) not in open_pairs]
    for start in range(0, len(fresh), CHUNK):
        conn.execute(
            insert(review_queue),
            [
                {**r, "domain": domain, "status": "open", "created_at": now}
                for r in fresh[start : start + CHUNK]
            ],
        )
    return len(fresh)


def assignment_rows(conn: Connection, domain: str) -> list[tuple[str, str]]:
    """(mention key, profile id) of every assigned mention, by key."""
    from profiles.store.schema import mentions

    return [
        (k, p)
        for k, p in conn.execute(
            select(mentions.c.mention_key, profile_members.c.profile_id)
            .join(profile_members, profile_members.c.mention_pk == mentions.c.id)
            .where(mentions.c.domain == domain)
            .order_by(mentions.c.mention_key)
        )
    ]
