"""Profiles, membership, decisions and the review queue in the store."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, select, update

from profiles.store.db import bulk_insert, driver_time, rows_in
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


def next_change_seq(conn: Connection, domain: str) -> int:
    """The change sequence value for the profiles this transaction changes: above every value the
    domain held when it asked (writers of a domain are serialized around it: SQLite has one
    writer, PostgreSQL writers take the domain's lock, see `profiles.store.locks`)."""
    from sqlalchemy import func

    return (
        int(
            conn.execute(
                select(func.coalesce(func.max(profiles.c.change_seq), 0)).where(profiles.c.domain == domain)
            ).scalar_one()
        )
        + 1
    )


def touch_profiles(conn: Connection, domain: str, ids: Iterable[str], seq: int | None = None) -> int:
    """Mark these profiles changed (their change sequence raised); returns the value used."""
    seq = seq if seq is not None else next_change_seq(conn, domain)
    wanted = sorted(set(ids))
    for start in range(0, len(wanted), 500):
        conn.execute(  # by id alone: ids are unique across domains (see load_mentions_by_ids)
            update(profiles).where(profiles.c.id.in_(wanted[start : start + 500])).values(change_seq=seq)
        )
    return seq


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
    seq = next_change_seq(conn, domain)
    existing = set(before.created)
    new_ids = [pid for pid in golden if pid not in existing]
    stamp = driver_time(conn, now)
    bulk_insert(
        conn,
        profiles,
        ("id", "domain", "status", "golden", "created_at", "updated_at", "change_seq"),
        ((pid, domain, "active", golden[pid], stamp, stamp, seq) for pid in new_ids),
    )
    refreshed = 0
    for pid in set(golden) & existing:
        if before.golden.get(pid) != golden[pid]:
            conn.execute(
                update(profiles)
                .where(profiles.c.id == pid)
                .values(status="active", golden=golden[pid], updated_at=now, change_seq=seq)
            )
            refreshed += 1
    for pid, into in retired.items():
        conn.execute(
            update(profiles)
            .where(profiles.c.id == pid)
            .values(status="retired", golden={"merged_into": into}, updated_at=now, change_seq=seq)
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
    moved = {assignment[m][0] for m in changed} | {before.members[m] for m in stale if m in before.members}
    touch_profiles(conn, domain, moved - set(new_ids), seq)
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
    if not rows:
        return 0
    asked = sorted({r["mention_a"] for r in rows})
    open_pairs: set[tuple[str, str]] = set()
    for start in range(0, len(asked), 500):
        # by pair, the status read with it: a status condition made SQLite walk every open item
        open_pairs |= {
            (a, b)
            for a, b, status in conn.execute(
                select(review_queue.c.mention_a, review_queue.c.mention_b, review_queue.c.status).where(
                    review_queue.c.domain == domain,
                    review_queue.c.mention_a.in_(asked[start : start + 500]),
                )
            )
            if status == "open"
        }
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


def mention_times(conn: Connection, domain: str, pks: Iterable[int] | None = None) -> dict[int, str]:
    """mention id -> its object's modified_at (ISO text): what "most recent" means for golden
    records (of every mention of the domain, or of these)."""
    from profiles.store.schema import mentions, objects

    query = select(mentions.c.id, objects.c.modified_at).join(objects, objects.c.id == mentions.c.object_pk)
    if pks is None:
        rows = list(conn.execute(query.where(mentions.c.domain == domain)))
    else:
        ids = sorted({int(pk) for pk in pks})
        rows = [
            r
            for i in range(0, len(ids), 500)
            for r in conn.execute(query.where(mentions.c.id.in_(ids[i : i + 500])))
        ]
    return {pk: at.isoformat() if at is not None else "" for pk, at in rows}


_MEMBERS_SQL = (
    "SELECT mention_pk, profile_id, resolved_hash, domain FROM profile_members WHERE mention_pk IN ({marks})"
)


def membership_of(
    conn: Connection, domain: str, pks: Iterable[int], profiles_too: bool = True
) -> tuple[Membership, dict[str, int]]:
    """The membership of these mentions (as `current_membership` has it for a whole domain), and
    the change sequence of every profile it names (`profiles_too=False`: members only, no
    profile rows read)."""
    ids = sorted({int(pk) for pk in pks})
    members: dict[int, str] = {}
    resolved: dict[int, str | None] = {}
    for m, pid, h, where in rows_in(conn, _MEMBERS_SQL, ids):
        if where == domain:  # by primary key; the domain checked here (see load_mentions_by_ids)
            members[m], resolved[m] = pid, h
    created, golden, seqs = {}, {}, {}
    pids = sorted(set(members.values())) if profiles_too else []
    for start in range(0, len(pids), 500):
        for pid, at, status, record, seq, where in conn.execute(
            select(
                profiles.c.id,
                profiles.c.created_at,
                profiles.c.status,
                profiles.c.golden,
                profiles.c.change_seq,
                profiles.c.domain,
            ).where(profiles.c.id.in_(pids[start : start + 500]))
        ):
            if where != domain:
                continue
            created[pid], seqs[pid] = str(at), int(seq)
            if status == "active":
                golden[pid] = record
    return Membership(members=members, resolved=resolved, created=created, golden=golden), seqs


def members_of_profiles(conn: Connection, domain: str, profile_ids: Iterable[str]) -> dict[str, list[int]]:
    """profile id -> its members' mention ids."""
    pids = sorted(set(profile_ids))
    out: dict[str, list[int]] = {}
    for start in range(0, len(pids), 500):
        for m, pid in conn.execute(
            select(profile_members.c.mention_pk, profile_members.c.profile_id).where(
                profile_members.c.domain == domain,
                profile_members.c.profile_id.in_(pids[start : start + 500]),
            )
        ):
            out.setdefault(pid, []).append(int(m))
    return out
