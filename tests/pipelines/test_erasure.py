"""A request to be forgotten after a real history: erasing a guest by one email removes the whole
person (every member of their profile), from every table and every file of the home: the
database and its write-ahead log, the profile history's golden-record snapshots, the candidate
index, the caches, the kept exports and the model registry kept there."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from labeling.oracle import read_truth
from labeling.store import Label, save_labels
from pipelines.block import run_block
from pipelines.export import export_assignment, export_profiles
from pipelines.ingest import ingest_path
from pipelines.privacy import ErasureRequest, Query, erase, plan, search
from pipelines.profile_ops import merge_profiles, unmerge
from pipelines.resolve import run_resolve
from pipelines.review import decide_review, list_reviews
from pipelines.synthetic import GeneratorConfig, write_dataset
from profiles.settings import Settings
from profiles.store import open_store
from profiles.store.profiles_io import assignment_rows
from profiles.store.schema import mentions, metadata, objects, profile_events
from tests.pipelines.helpers import label_with_oracle, lines
from training.train import train


def table_text(store: Any) -> str:
    """Every row of every table, as lowercase text."""
    parts = []
    with store.reading() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(select(table)):
                values = [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in row]
                parts.append(json.dumps(values, default=str, ensure_ascii=False))
    return "\n".join(parts).lower()


def files_holding(home: Path, value: str) -> list[str]:
    needle = value.lower().encode()
    return [
        str(f.relative_to(home))
        for f in sorted(home.rglob("*"))
        if f.is_file() and needle in f.read_bytes().lower()
    ]


def _unique_values(store: Any, target_keys: set[str]) -> dict[str, list[str]]:
    """The target's emails, phones, loyalty ids, documents, last name and street that appear in no
    other stored mention, not even inside a longer value: what must be gone from every byte of
    the home afterwards."""
    with store.reading() as conn:
        rows = conn.execute(select(mentions.c.mention_key, mentions.c.raw, mentions.c.normalized)).all()
    fields = ("emails", "phones", "loyalty", "documents", "last_name", "street")
    mine: dict[str, set[str]] = {f: set() for f in fields}
    others = []
    for key, raw, norm in rows:
        norm = json.loads(norm) if isinstance(norm, str) else norm
        if key not in target_keys:
            others.append(json.dumps([raw, norm], ensure_ascii=False, default=str).lower())
            continue
        for f in fields:
            value = norm.get(f)
            mine[f] |= {str(v) for v in (value if isinstance(value, list) else [value]) if v}
    text = "\n".join(others)
    unique = {f: sorted(v for v in values if v.lower() not in text) for f, values in mine.items()}
    return {f: values for f, values in unique.items() if values}


def _corrected(store: Any, key: str) -> dict[str, Any]:
    """A newer version of the object holding mention `key`, in which that person is someone else
    (a source correcting a record): the next resolve splits it off the guest's profile."""
    source, object_type, rest = key.split("/", 2)
    object_id, _, path = rest.partition("#")
    with store.reading() as conn:
        payload = conn.execute(
            select(objects.c.payload)
            .join(mentions, mentions.c.object_pk == objects.c.id)
            .where(mentions.c.mention_key == key)
        ).scalar_one()
    name, _, index = path.partition("[")
    person = payload[name][int(index.rstrip("]"))] if index else payload[name]
    person.clear()
    person.update(
        {"first_name": "Zebedee", "last_name": "Quarrington", "emails": [{"address": "zq@example.org"}]}
    )
    return {
        "object_type": object_type,
        "source": source,
        "id": object_id,
        "modified_at": "2030-01-01T00:00:00Z",
        "data": payload,
    }


@pytest.mark.slow
def test_erasing_a_guest_by_email_leaves_no_byte_of_them_in_the_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    settings = Settings(home=home, mlflow_tracking_uri=str(home / "mlruns"), ingest_batch_size=200)
    store = open_store(settings)
    info = write_dataset(GeneratorConfig(persons=150, seed=21, bad_line_rate=0.02), tmp_path / "data")
    ingest_path(store, settings, Path(info["objects_file"]))
    run_block(store, settings)
    label_with_oracle(store, info["truth_file"], 30)
    train(store, settings, "auto")
    assert run_resolve(store, settings).profiles > 0

    # the guest: a person of several mentions in one profile, with an email of their own
    truth = read_truth(Path(info["truth_file"]))
    with store.reading() as conn:
        assigned = dict(assignment_rows(conn, store.domain))
        by_key = {
            k: json.loads(n) if isinstance(n, str) else n
            for k, n in conn.execute(select(mentions.c.mention_key, mentions.c.normalized))
        }
    person_of = dict(zip(truth["mention_key"], truth["person_id"], strict=True))
    best = None
    groups: dict[str, set[str]] = {}
    for key, pid in assigned.items():
        groups.setdefault(pid, set()).add(key)
    # profile ids are random: go through profiles in the order of their members' keys
    for pid, keys in sorted(groups.items(), key=lambda item: min(item[1])):
        people = {person_of.get(k) for k in keys}
        emails = {e for k in keys for e in by_key[k].get("emails") or []}
        if len(keys) >= 3 and len(people) == 1 and emails:
            unique = _unique_values(store, keys)
            if "emails" in unique and len(unique) >= 4:
                best = (pid, keys, unique)
                break
    assert best is not None, "the generated set has no suitable guest"
    profile, members, unique = best
    email = unique["emails"][0]

    # a history: a label on the guest, a manual merge and its undo, a review answered, a newer
    # version of one of the guest's records that splits it off, a second resolve
    other = next(p for p, keys in sorted(groups.items(), key=lambda item: min(item[1])) if p != profile)
    a, b = sorted(members)[:2]
    with store.transaction() as conn:
        save_labels(conn, store.domain, [Label(a, b, "match", "tester", "cli")])
    merged = merge_profiles(store, settings, profile, other, "tester", "test merge")
    unmerge(store, settings, merged["event"], "tester", "test undo")
    items = list_reviews(store, limit=1)
    assert items, "the history should hold a review answer"
    decide_review(store, settings, items[0]["id"], "non_match", "reviewer")
    moved = sorted(members)[-1]
    (tmp_path / "newer.jsonl").write_bytes(lines(_corrected(store, moved)))
    ingest_path(store, settings, tmp_path / "newer.jsonl")
    run_resolve(store, settings)
    export_assignment(store, home / "exports" / "assignment.csv")
    export_profiles(store, home / "exports" / "profiles")

    with store.reading() as conn:
        kinds = {k for (k,) in conn.execute(select(profile_events.c.kind))}
    before = table_text(store)
    assert {"merge", "unmerge", "split"} <= kinds
    assert email.lower() in before
    events_text = "\n".join(line for line in before.splitlines() if '"merge"' in line or '"split"' in line)
    assert email.lower() in events_text, "the history holds the guest: the test would prove nothing"

    # what would go is shown first, and nothing is erased by looking
    would = plan(store, settings, ErasureRequest(query=Query(email=email)))
    assert set(would["mentions"]) >= members - {moved}
    assert search(store, settings, Query(email=email))["mentions"]

    receipt = erase(store, settings, "dpo", query=Query(email=email))
    assert receipt.removed["mentions"] >= len(members) - 1
    assert receipt.exports_rewritten == 2 and receipt.log_emptied is True
    store.engine.dispose()  # every connection closed: the files are what a copy of the home holds

    store = open_store(settings)
    after = table_text(store)
    left: dict[str, list[str]] = {}
    for field, values in unique.items():
        for value in values:
            if value.lower() in after:
                left.setdefault("tables", []).append(f"{field}={value}")
            for f in files_holding(home, value):
                left.setdefault(f, []).append(f"{field}={value}")
    assert not left, left
    for key in members - {moved}:
        assert key.lower() not in after
    assert search(store, settings, Query(email=email))["mentions"] == []
