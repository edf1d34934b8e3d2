"""Privacy requests: search finds a person everywhere; erasure leaves nothing of them in any
table or in the candidate index, keeps everyone else, and leaves a receipt without their data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select

from features.embedding.index import CandidateIndex
from labeling.store import Label, save_labels
from pipelines.privacy import Query, erase, search
from pipelines.resolve import run_resolve
from profiles.store.profiles_io import assignment_rows
from profiles.store.schema import audit_log, mentions, metadata
from tests.pipelines.test_profile_ops import resolved  # noqa: F401  (fixture)


def everything(store: Any) -> str:
    """Every row of every table, as text."""
    parts = []
    with store.reading() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(select(table)):
                parts.append(
                    json.dumps(
                        [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in row],
                        default=str,
                    )
                )
    return "\n".join(parts).lower()


def test_search_then_erase_a_person_everywhere(resolved: Any, tmp_path: Path) -> None:  # noqa: F811
    store, settings, _truth, _ = resolved
    run_resolve(store, settings)
    with store.reading() as conn:
        rows = conn.execute(
            select(mentions.c.id, mentions.c.mention_key, mentions.c.email, mentions.c.normalized)
        ).all()
        assigned = dict(assignment_rows(conn, store.domain))
    # someone with an email, in a profile of several mentions
    sizes: dict[str, int] = {}
    for pid in assigned.values():
        sizes[pid] = sizes.get(pid, 0) + 1
    target = next(r for r in rows if r.email and sizes.get(assigned.get(r.mention_key, ""), 0) >= 3)
    profile = assigned[target.mention_key]
    members = {k for k, p in assigned.items() if p == profile}
    pk_of = {r.mention_key: r.id for r in rows}
    others = [k for k in assigned if k not in members]
    with store.transaction() as conn:
        save_labels(
            conn,
            store.domain,
            [
                Label(sorted(members)[0], sorted(members)[1], "match", "tester", "cli"),
                Label(others[0], others[1], "non_match", "tester", "cli"),
            ],
        )

    found = search(store, settings, Query(email=target.email))
    assert found["profiles"] == [profile] and set(found["mentions"]) == members
    assert found["labels"] and found["decisions"] > 0 and found["objects"]

    assert settings.frame_cache_path(store.domain).exists()  # kept by the resolve above
    receipt = erase(store, settings, "dpo", profile_ids=[profile])
    assert receipt.removed["mentions"] == len(members) and receipt.removed["labels"] == 1
    assert receipt.profiles_deleted == 1 and len(receipt.request_hash) == 64

    text = everything(store)
    assert target.email.lower() not in text, [
        line[:400] for line in text.splitlines() if target.email.lower() in line
    ]
    for key in members:
        assert key.lower() not in text
    for phone in target.normalized.get("phones") or []:
        assert phone not in text
    gone = np.array([pk_of[k] for k in members])
    index_path = settings.index_path(store.domain, settings.encoder)
    index = CandidateIndex.load(index_path, json.loads(index_path.with_suffix(".json").read_text())["dim"])
    assert not np.isin(gone, index.ids()).any() and len(index) > 0
    # nor in any file kept beside the store (the index, the parsed-mentions cache, ...)
    kept = [f for f in settings.home.rglob("*") if f.is_file() and not f.name.startswith("upt.db")]
    assert settings.frame_cache_path(store.domain).exists() is False
    for f in kept:
        assert target.email.lower().encode() not in f.read_bytes().lower(), f
    # everyone else is still there, labels included
    with store.reading() as conn:
        after = dict(assignment_rows(conn, store.domain))
        entry = conn.execute(select(audit_log.c.details).where(audit_log.c.action == "erase")).scalar_one()
    assert set(after) == set(assigned) - members
    assert "non_match" in text
    # the receipt in the audit log names counts and a hash, never the person
    assert entry["receipt"] == receipt.receipt and entry["removed"] == receipt.removed
    assert target.email.lower() not in json.dumps(entry).lower()
    assert search(store, settings, Query(email=target.email))["mentions"] == []


def test_erasing_part_of_a_profile_refreshes_what_is_left(resolved: Any) -> None:  # noqa: F811
    store, settings, _, _ = resolved
    run_resolve(store, settings)
    with store.reading() as conn:
        assigned = dict(assignment_rows(conn, store.domain))
    groups: dict[str, list[str]] = {}
    for key, pid in assigned.items():
        groups.setdefault(pid, []).append(key)
    _profile, keys = next((p, sorted(k)) for p, k in groups.items() if len(k) >= 3)
    receipt = erase(store, settings, "dpo", mention_keys=[keys[0]])
    assert receipt.profiles_reresolved == 1 and receipt.removed["mentions"] == 1
    report = run_resolve(store, settings)
    assert report.dirty_mentions >= len(keys) - 1
    with store.reading() as conn:
        after = dict(assignment_rows(conn, store.domain))
    assert keys[0] not in after and all(k in after for k in keys[1:])
