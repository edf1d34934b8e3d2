"""Exports of the resolved profiles: the mention -> profile assignment, and whole profiles.

`export_assignment(FILE)` writes `mention_key,profile_id` for every assigned mention (keys
verbatim), a header alone when nothing is resolved yet.

`export_profiles(DIR)` writes, for the active profiles of a domain:
- `profiles.jsonl`: one profile per line, golden record (with sources), members, aliases and
  interactions, for systems that take documents;
- `profiles.parquet` (one row per profile, each golden field's value as a column and the whole
  golden record as JSON), `members.parquet` and `interactions.parquet`, for analytics.
Files are written beside and then renamed, so a reader never sees half an export. Every export
is recorded (`exports` table): an erasure writes the recorded files again without the person.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import delete, insert, select

from profiles.store import Store
from profiles.store.profiles_io import assignment_rows
from profiles.store.schema import exports, interactions, mentions, profile_members, profiles


@dataclass
class ProfileExport:
    folder: str
    profiles: int
    members: int
    interactions: int
    files: list[str]


def _value(entry: Any) -> Any:
    value = entry.get("value") if isinstance(entry, dict) else None
    return value if value is None or isinstance(value, str | int | float) else json.dumps(value)


@dataclass
class AssignmentExport:
    file: str
    mentions: int
    profiles: int


def _record(store: Store, kind: str, path: Path) -> None:
    where = str(path.resolve())
    with store.transaction() as conn:
        conn.execute(
            delete(exports).where(
                exports.c.domain == store.domain, exports.c.kind == kind, exports.c.path == where
            )
        )
        conn.execute(
            insert(exports).values(
                domain=store.domain, kind=kind, path=where, written_at=dt.datetime.now(dt.UTC)
            )
        )


def export_assignment(store: Store, path: Path) -> AssignmentExport:
    """Write `mention_key,profile_id` of every assigned mention to a CSV file (folders made)."""
    with store.reading() as conn:
        rows = assignment_rows(conn, store.domain)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.tmp")
    with partial.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["mention_key", "profile_id"])
        writer.writerows(rows)
    partial.replace(path)
    _record(store, "mentions", path)
    return AssignmentExport(str(path), len(rows), len({p for _, p in rows}))


def rewrite_exports(store: Store) -> list[str]:
    """Write every recorded export of the domain again from the store as it is now (after an
    erasure: the files no longer hold the person). Exports moved or deleted since are skipped."""
    with store.reading() as conn:
        recorded = conn.execute(
            select(exports.c.kind, exports.c.path).where(exports.c.domain == store.domain)
        ).all()
    done = []
    for kind, where in recorded:
        path = Path(where)
        if kind == "mentions" and path.is_file():
            export_assignment(store, path)
            done.append(where)
        elif kind == "profiles" and (path / "profiles.jsonl").is_file():
            export_profiles(store, path)
            done.append(where)
    return done


def export_profiles(store: Store, folder: Path) -> ProfileExport:
    domain = store.domain
    with store.reading() as conn:
        active = {
            pid: (golden, created, updated)
            for pid, golden, created, updated in conn.execute(
                select(profiles.c.id, profiles.c.golden, profiles.c.created_at, profiles.c.updated_at).where(
                    profiles.c.domain == domain, profiles.c.status == "active"
                )
            )
        }
        aliases: dict[str, list[str]] = defaultdict(list)
        for pid, golden in conn.execute(
            select(profiles.c.id, profiles.c.golden).where(
                profiles.c.domain == domain, profiles.c.status == "retired"
            )
        ):
            into = (golden or {}).get("merged_into")
            if into:
                aliases[into].append(pid)
        members = pd.DataFrame(
            conn.execute(
                select(profile_members.c.profile_id, mentions.c.mention_key, mentions.c.source, mentions.c.id)
                .join(mentions, mentions.c.id == profile_members.c.mention_pk)
                .where(profile_members.c.domain == domain)
                .order_by(profile_members.c.profile_id, mentions.c.mention_key)
            ).all(),
            columns=["profile_id", "mention_key", "source", "mention_pk"],
        )
        events = pd.DataFrame(
            conn.execute(
                select(
                    interactions.c.mention_pk,
                    interactions.c.kind,
                    interactions.c.role,
                    interactions.c.ref,
                    interactions.c.occurred_at,
                    interactions.c.attributes,
                ).where(interactions.c.domain == domain)
            ).all(),
            columns=["mention_pk", "kind", "role", "ref", "occurred_at", "attributes"],
        )
    events = events.merge(members[["mention_pk", "profile_id", "mention_key"]], on="mention_pk", how="inner")
    events["occurred_at"] = events["occurred_at"].map(lambda t: t.isoformat() if pd.notna(t) else None)
    events = events.sort_values(["profile_id", "occurred_at", "ref"], na_position="last")
    folder.mkdir(parents=True, exist_ok=True)
    members_by = {pid: group for pid, group in members.groupby("profile_id", sort=False)}
    events_by = {pid: group for pid, group in events.groupby("profile_id", sort=False)}

    tmp = folder / "profiles.jsonl.tmp"
    with tmp.open("w", encoding="utf-8") as f:
        for pid in sorted(active):
            golden, created, updated = active[pid]
            group = members_by.get(pid)
            stays = events_by.get(pid)
            record = {
                "profile_id": pid,
                "domain": domain,
                "created_at": str(created),
                "updated_at": str(updated),
                "golden": golden,
                "aliases": sorted(aliases.get(pid, [])),
                "members": []
                if group is None
                else [
                    {"mention_key": k, "source": s}
                    for k, s in zip(group["mention_key"], group["source"], strict=True)
                ],
                "interactions": []
                if stays is None
                else stays[["mention_key", "kind", "role", "ref", "occurred_at", "attributes"]].to_dict(
                    "records"
                ),
            }
            f.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
    tmp.replace(folder / "profiles.jsonl")

    fields = sorted({name for golden, _, _ in active.values() for name in golden})
    table = pd.DataFrame(
        [
            {
                "profile_id": pid,
                "members": len(members_by[pid]) if pid in members_by else 0,
                "created_at": str(created),
                "updated_at": str(updated),
                **{f"golden_{name}": _value(golden.get(name)) for name in fields},
                "golden_json": json.dumps(golden, ensure_ascii=False, default=str),
            }
            for pid, (golden, created, updated) in sorted(active.items())
        ]
    )
    frames = {
        "profiles.parquet": table,
        "members.parquet": members.drop(columns=["mention_pk"]),
        "interactions.parquet": events.assign(attributes=events["attributes"].map(json.dumps))[
            ["profile_id", "mention_key", "kind", "role", "ref", "occurred_at", "attributes"]
        ],
    }
    for name, frame in frames.items():
        part = folder / f"{name}.tmp"
        frame.to_parquet(part, index=False)
        part.replace(folder / name)
    _record(store, "profiles", folder)
    return ProfileExport(
        folder=str(folder),
        profiles=len(active),
        members=len(members),
        interactions=len(events),
        files=["profiles.jsonl", *frames],
    )
