"""Manual profile operations: show, merge, unmerge (of any merge, manual or automatic), history.

A manual merge or unmerge changes membership at once, records a profile event with the exact
state before it, and records manual decisions (a merge, or "no match" across the sides of an
unmerge) that every later `upt resolve` respects, so a person's word is never undone by a run.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from sqlalchemy import Connection, select, update

from features.frame import load_mentions
from pipelines.resolve import survivorship_of
from profiles.errors import NotFound, Refused, ValidationFailed
from profiles.resolution.golden import golden_record
from profiles.settings import Settings
from profiles.store import Store
from profiles.store.decisions import (
    current_decisions,
    decision_history,
    get_event,
    manual_decision,
    mark_reverted,
    profile_events_of,
    record_decisions,
    record_event,
)
from profiles.store.profiles_io import mention_times, touch_profiles
from profiles.store.schema import mentions, profile_members, profiles
from profiles.store.writes import write_audit


def canonical_id(conn: Connection, domain: str, profile_id: str) -> str:
    """The active profile an id stands for: itself, or where a retired alias was merged into."""
    seen = set()
    pid = profile_id
    while pid not in seen:
        seen.add(pid)
        row = conn.execute(
            select(profiles.c.status, profiles.c.golden).where(
                profiles.c.domain == domain, profiles.c.id == pid
            )
        ).first()
        if row is None:
            raise NotFound(f"no profile {profile_id!r} in domain {domain!r}")
        if row.status == "active":
            return pid
        into = (row.golden or {}).get("merged_into")
        if not into:
            raise NotFound(f"profile {profile_id!r} no longer exists (status {row.status})")
        pid = into
    raise NotFound(f"profile {profile_id!r}: alias cycle")


def members_of(conn: Connection, domain: str, profile_id: str) -> list[tuple[int, str]]:
    """(mention id, key) of a profile's members, by id."""
    return [
        (pk, key)
        for pk, key in conn.execute(
            select(mentions.c.id, mentions.c.mention_key)
            .join(profile_members, profile_members.c.mention_pk == mentions.c.id)
            .where(profile_members.c.domain == domain, profile_members.c.profile_id == profile_id)
            .order_by(mentions.c.id)
        )
    ]


def profile_view(store: Store, profile_id: str) -> dict[str, Any]:
    """A profile as a person sees it: golden record, members, aliases, events."""
    with store.reading() as conn:
        pid = canonical_id(conn, store.domain, profile_id)
        row = conn.execute(select(profiles).where(profiles.c.id == pid)).first()
        assert row is not None
        aliases = [
            r.id
            for r in conn.execute(
                select(profiles.c.id, profiles.c.golden).where(
                    profiles.c.domain == store.domain, profiles.c.status == "retired"
                )
            )
            if (r.golden or {}).get("merged_into") == pid
        ]
        events = profile_events_of(conn, store.domain, pid)
        return {
            "id": pid,
            "asked_for": profile_id,
            "status": row.status,
            "created_at": row.created_at,
            "updated_at": row.updated_at,
            "golden": row.golden,
            "members": [key for _, key in members_of(conn, store.domain, pid)],
            "aliases": sorted(aliases),
            "events": [
                {k: e[k] for k in ("id", "kind", "profile_id", "actor", "reason", "at", "reverted_by")}
                for e in events
            ],
        }


def profile_history(store: Store, profile_id: str) -> dict[str, Any]:
    """Every event and every decision that touched the profile's present members."""
    with store.reading() as conn:
        pid = canonical_id(conn, store.domain, profile_id)
        keys = [k for _, k in members_of(conn, store.domain, pid)]
        return {
            "id": pid,
            "events": profile_events_of(conn, store.domain, pid),
            "decisions": decision_history(conn, store.domain, keys),
        }


def _golden(conn: Connection, domain: str, settings: Settings, keys: list[str]) -> dict[str, Any]:
    frame = load_mentions(conn, domain, keys=keys)
    if frame.empty:
        return {}
    times = mention_times(conn, domain)
    frame["modified_at"] = frame["mention_pk"].map(times).fillna("")
    return golden_record(frame, survivorship_of(settings))


def _move(conn: Connection, domain: str, pks: list[int], to: str, now: dt.datetime) -> None:
    for start in range(0, len(pks), 500):
        conn.execute(
            update(profile_members)
            .where(
                profile_members.c.domain == domain, profile_members.c.mention_pk.in_(pks[start : start + 500])
            )
            .values(profile_id=to, added_at=now)
        )


def _pair(x: tuple[int, str], y: tuple[int, str]) -> tuple[str, str]:
    return (x[1], y[1]) if x[0] < y[0] else (y[1], x[1])


def merge_profiles(
    store: Store, settings: Settings, first: str, second: str, actor: str, reason: str
) -> dict[str, Any]:
    """Merge two profiles; the older id survives and the other becomes its alias."""
    now = dt.datetime.now(dt.UTC)
    with store.transaction() as conn:
        a, b = canonical_id(conn, store.domain, first), canonical_id(conn, store.domain, second)
        if a == b:
            raise ValidationFailed("profiles", f"{first} and {second} are already one profile ({a})")
        created = dict(
            conn.execute(select(profiles.c.id, profiles.c.created_at).where(profiles.c.id.in_([a, b]))).all()
        )
        goldens = dict(
            conn.execute(select(profiles.c.id, profiles.c.golden).where(profiles.c.id.in_([a, b]))).all()
        )
        keep, drop = (a, b) if (str(created[a]), a) <= (str(created[b]), b) else (b, a)
        kept, dropped = members_of(conn, store.domain, keep), members_of(conn, store.domain, drop)
        _move(conn, store.domain, [pk for pk, _ in dropped], keep, now)
        keys = sorted(k for _, k in kept + dropped)
        golden = _golden(conn, store.domain, settings, keys)
        conn.execute(update(profiles).where(profiles.c.id == keep).values(golden=golden, updated_at=now))
        conn.execute(
            update(profiles)
            .where(profiles.c.id == drop)
            .values(status="retired", golden={"merged_into": keep}, updated_at=now)
        )
        touch_profiles(conn, store.domain, [keep, drop])
        # every member tied to the first: a person's merge holds whole in every later resolve
        # (one tie alone let clustering split it again where the two sides' scores disagree)
        anchor = min(kept[0], dropped[0])
        ties = [_pair(anchor, m) for m in sorted(kept + dropped) if m != anchor]
        record_decisions(conn, store.domain, [manual_decision(x, y, "merge", actor) for x, y in ties])
        event = record_event(
            conn,
            store.domain,
            "merge",
            keep,
            {
                "members": {keep: sorted(k for _, k in kept), drop: sorted(k for _, k in dropped)},
                "golden": {keep: goldens[keep], drop: goldens[drop]},
            },
            {"members": {keep: keys}, "retired": [drop]},
            actor,
            reason or "manual merge",
        )
        write_audit(
            conn, store.domain, actor, "profile_merge", {"event": event, "kept": keep, "retired": drop}
        )
    return {"event": event, "profile": keep, "retired": drop, "members": len(keys)}


def unmerge(store: Store, settings: Settings, event_id: int, actor: str, reason: str) -> dict[str, Any]:
    """Undo a merge event: every profile it joined comes back with its members and golden record
    as they were (mentions that arrived later stay with the surviving profile), and the sides are
    kept apart from now on by manual "no match" decisions."""
    now = dt.datetime.now(dt.UTC)
    with store.transaction() as conn:
        event = get_event(conn, store.domain, event_id)
        if event["kind"] != "merge":
            raise ValidationFailed("event", f"event {event_id} is a {event['kind']}, not a merge")
        if event["reverted_by"]:
            raise ValidationFailed(
                "event", f"event {event_id} was already undone by event {event['reverted_by']}"
            )
        sides: dict[str, list[str]] = event["before"]["members"]
        survivor = canonical_id(conn, store.domain, event["profile_id"])
        key_pk = {
            k: pk
            for keys in sides.values()
            for start in range(0, len(keys), 500)
            for pk, k in conn.execute(
                select(mentions.c.id, mentions.c.mention_key).where(
                    mentions.c.domain == store.domain, mentions.c.mention_key.in_(keys[start : start + 500])
                )
            )
        }
        current = {
            pk: pid
            for pk, pid in conn.execute(
                select(profile_members.c.mention_pk, profile_members.c.profile_id).where(
                    profile_members.c.mention_pk.in_(list(key_pk.values()))
                )
            )
        }
        moved = [pk for pk in key_pk.values() if current.get(pk) != survivor]
        if moved:
            raise Refused(
                "event",
                f"{len(moved)} members of event {event_id} have since moved to other profiles; "
                "unmerge those profiles first or merge by hand",
            )
        restored: dict[str, list[str]] = defaultdict(list)
        for pid, keys in sides.items():
            present = [k for k in keys if k in key_pk]
            target = pid
            if pid != survivor:
                conn.execute(
                    update(profiles).where(profiles.c.id == pid).values(status="active", updated_at=now)
                )
                _move(conn, store.domain, [key_pk[k] for k in present], pid, now)
            restored[target] = present
        for pid in sides:
            if pid == survivor:
                restored[pid] = [k for _, k in members_of(conn, store.domain, pid)]
            exact = sorted(restored[pid]) == sorted(sides[pid])
            golden = event["before"]["golden"].get(pid) if exact else None
            conn.execute(
                update(profiles)
                .where(profiles.c.id == pid)
                .values(golden=golden or _golden(conn, store.domain, settings, restored[pid]), updated_at=now)
            )
        touch_profiles(conn, store.domain, list(sides))
        decisions = _keep_apart(conn, store.domain, sides, key_pk, actor)
        record_decisions(conn, store.domain, decisions)
        undo = record_event(
            conn,
            store.domain,
            "unmerge",
            survivor,
            event["after"],
            {"members": {pid: sorted(keys) for pid, keys in restored.items()}, "undoes": event_id},
            actor,
            reason or f"undo of event {event_id}",
        )
        mark_reverted(conn, event_id, undo)
        write_audit(
            conn,
            store.domain,
            actor,
            "profile_unmerge",
            {"event": undo, "undoes": event_id, "profiles": sorted(restored)},
        )
    return {"event": undo, "undoes": event_id, "profiles": {p: len(k) for p, k in restored.items()}}


def _keep_apart(
    conn: Connection, domain: str, sides: dict[str, list[str]], key_pk: dict[str, int], actor: str
) -> list[dict[str, Any]]:
    """Manual "no match" for every merge decision across two sides, and one between each two
    sides' first members, so that no later resolve joins them again."""
    side_of = {k: pid for pid, keys in sides.items() for k in keys if k in key_pk}
    current = current_decisions(conn, domain)
    pairs = {
        (a, b)
        for a, b, d in zip(current["mention_a"], current["mention_b"], current["decision"], strict=True)
        if d == "merge" and a in side_of and b in side_of and side_of[a] != side_of[b]
    }
    firsts = [
        min((key_pk[k], k) for k in keys if k in key_pk)
        for keys in sides.values()
        if any(k in key_pk for k in keys)
    ]
    for i, x in enumerate(firsts):
        for y in firsts[i + 1 :]:
            pairs.add(_pair(x, y))
    return [manual_decision(a, b, "no_match", actor) for a, b in sorted(pairs)]
