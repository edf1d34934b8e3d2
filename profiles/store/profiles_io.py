"""Profiles, membership, decisions and the review queue in the store."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, select, update

from profiles.store.db import bulk_insert, driver_time
from profiles.store.schema import profile_members, profiles, review_queue


@dataclass
class Membership:
    """The resolved state of a domain: who is in which profile, and as of which mention content."""

    members: dict[int, str]  # mention id -> active profile id
    resolved: dict[int, str | None]  # mention id -> content hash when last resolved
    created: dict[str, str]  # profile id -> created_at as sortable text
    golden: dict[str, dict[str, Any]]  # active profile id -> golden record


def current_membership(conn: Connection, domain: str) -> Membership:
    rows = conn.execute(
        select(
            profile_members.c.mention_pk, profile_members.c.profile_id, profile_members.c.resolved_hash
        ).where(profile_members.c.domain == domain)
    ).all()
    created, golden = {}, {}
    for pid, at, status, record in conn.execute(
        select(profiles.c.id, profiles.c.created_at, profiles.c.status, profiles.c.golden).where(
            profiles.c.domain == domain
        )
    ):
        created[pid] = str(at)
        if status == "active":
            golden[pid] = record
    return Membership(
        members={m: p for m, p, _ in rows},
        resolved={m: h for m, _, h in rows},
        created=created,
        golden=golden,
    )


def write_profiles(
    conn: Connection,
    domain: str,
    assignment: dict[int, tuple[str, str | None]],
    golden: dict[str, dict[str, Any]],
    retired: dict[str, str | None],
    before: Membership,
) -> dict[str, int]:
    """Make membership equal to `assignment` (mention id -> (profile id, resolved content hash));
    create and refresh the profiles in `golden`, retire those in `retired` (id -> merged into)."""
    now = dt.datetime.now(dt.UTC)
    existing = set(before.created)
    new_ids = [pid for pid in golden if pid not in existing]
    stamp = driver_time(conn, now)
    bulk_insert(
        conn,
        profiles,
        ("id", "domain", "status", "golden", "created_at", "updated_at"),
        ((pid, domain, "active", golden[pid], stamp, stamp) for pid in new_ids),
    )
    refreshed = 0
    for pid in set(golden) & existing:
        if before.golden.get(pid) != golden[pid]:
            conn.execute(
                update(profiles)
                .where(profiles.c.id == pid)
                .values(status="active", golden=golden[pid], updated_at=now)
            )
            refreshed += 1
    for pid, into in retired.items():
        conn.execute(
            update(profiles)
            .where(profiles.c.id == pid)
            .values(status="retired", golden={"merged_into": into}, updated_at=now)
        )
    changed = [
        m for m, (pid, h) in assignment.items() if before.members.get(m) != pid or before.resolved.get(m) != h
    ]
    gone = [m for m in before.members if m not in assignment]
    stale = [m for m in changed if m in before.members] + gone
    for start in range(0, len(stale), 500):
        conn.execute(
            delete(profile_members).where(profile_members.c.mention_pk.in_(stale[start : start + 500]))
        )
    bulk_insert(
        conn,
        profile_members,
        ("mention_pk", "domain", "profile_id", "added_at", "resolved_hash"),
        ((m, domain, assignment[m][0], stamp, assignment[m][1]) for m in changed),
    )
    return {
        "profiles": len(golden),
        "created": len(new_ids),
        "refreshed": refreshed,
        "retired": len(retired),
        "memberships_changed": len(changed) + len(gone),
    }


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
    stamp = driver_time(conn, now)
    return bulk_insert(
        conn,
        review_queue,
        ("domain", "status", "created_at", "mention_a", "mention_b", "score", "model_version"),
        (
            (domain, "open", stamp, r["mention_a"], r["mention_b"], r.get("score"), r.get("model_version"))
            for r in fresh
        ),
    )


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


def mention_times(conn: Connection, domain: str) -> dict[int, str]:
    """mention id -> its object's modified_at (ISO text): what "most recent" means for golden records."""
    from profiles.store.schema import mentions, objects

    return {
        pk: at.isoformat() if at is not None else ""
        for pk, at in conn.execute(
            select(mentions.c.id, objects.c.modified_at)
            .join(objects, objects.c.id == mentions.c.object_pk)
            .where(mentions.c.domain == domain)
        )
    }
