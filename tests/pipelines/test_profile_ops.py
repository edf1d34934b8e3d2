"""Resolution as people use it: imported scores, rule levels, manual merge and unmerge, review
answers, incremental runs, a failed run that leaves nothing behind. Rules and imported scores
stand in for the model here (thresholds from settings), which `test_resolve` covers."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import select

from features.pairs import load_candidate_table
from labeling.oracle import read_truth
from labeling.store import load_labels
from pipelines.block import run_block
from pipelines.import_matches import import_matches
from pipelines.ingest import ingest_path
from pipelines.profile_ops import merge_profiles, profile_view, unmerge
from pipelines.resolve import run_resolve
from pipelines.review import decide_review, list_reviews
from pipelines.synthetic import GeneratorConfig, write_dataset
from profiles.errors import Conflict, ValidationFailed
from profiles.settings import Settings
from profiles.store import Store, open_store
from profiles.store.decisions import current_decisions
from profiles.store.profiles_io import assignment_rows
from profiles.store.schema import audit_log, profile_events, review_queue


@pytest.fixture
def resolved(tmp_path: Path, settings: Settings) -> tuple[Store, Settings, pd.DataFrame, Path]:
    """A small travel store, blocked, with an external scorer's scores for half the candidate
    pairs (from the truth), resolved by rules and those scores."""
    settings = settings.model_copy(update={"merge_threshold": 0.9, "review_threshold": 0.5})
    info = write_dataset(GeneratorConfig(persons=120, seed=3), tmp_path / "data")
    store = open_store(settings)
    ingest_path(store, settings, Path(info["objects_file"]))
    run_block(store, settings)
    truth = read_truth(info["truth_file"])
    person = dict(zip(truth["mention_key"], truth["person_id"], strict=True))
    with store.reading() as conn:
        table = load_candidate_table(conn, store.domain)
        keys = dict(conn.execute(select(*_key_columns())).all())
    scores = tmp_path / "scores.csv"
    with scores.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["mention_key_a", "mention_key_b", "score", "scorer"])
        for a, b in list(zip(table.a.tolist(), table.b.tolist(), strict=True))[::2]:
            same = person[keys[a]] == person[keys[b]]
            writer.writerow([keys[a], keys[b], 0.97 if same else 0.03, "cloud-er"])
        writer.writerow([keys[int(table.a[0])], "no/such/mention#x", 0.5, ""])
        writer.writerow([keys[int(table.a[0])], keys[int(table.b[0])], "high", ""])
    report = import_matches(store, settings, scores, "external", "tester")
    assert report.rejected == 2 and report.scorers == {"cloud-er": report.imported}
    assert {r["field"] for r in report.reasons} == {"mention_key_b", "score"}
    return store, settings, truth, scores


def _key_columns() -> list[Any]:
    from profiles.store.schema import mentions

    return [mentions.c.id, mentions.c.mention_key]


def assignment(store: Store) -> dict[str, str]:
    with store.reading() as conn:
        return dict(assignment_rows(conn, store.domain))


def test_imported_scores_and_rules_decide_through_the_same_thresholds(resolved: Any) -> None:
    store, settings, _, _ = resolved
    report = run_resolve(store, settings)
    assert report.mode == "full" and report.model_version == "none"
    assert report.merges.get("external", 0) > 0 and report.merges.get("rule", 0) > 0
    assert report.rule_hits and all(name.startswith(report.rules_version + "/") for name in report.rule_hits)
    with store.reading() as conn:
        decisions = current_decisions(conn, store.domain)
    external = decisions[decisions["source"] == "external"]
    assert set(external["actor"]) == {"scorer:cloud-er"}
    merged = external[external["decision"] == "merge"]
    assert len(merged) and (merged["score"] >= settings.merge_threshold).all()
    # below the review threshold an imported score only ever keeps a pair apart (co-travellers)
    assert set(external.loc[external["score"] < settings.review_threshold, "decision"]) <= {"apart"}
    # what a rule decided says which rule, and no model threshold
    ruled = decisions[decisions["source"] == "rule"]
    assert ruled["rule"].str.startswith(report.rules_version).all()


def test_incremental_run_changes_nothing_and_full_run_agrees(resolved: Any) -> None:
    store, settings, _, _ = resolved
    run_resolve(store, settings)
    before = assignment(store)
    again = run_resolve(store, settings)
    assert again.mode == "incremental" and again.pairs_decided == 0 and again.decisions_changed == 0
    full = run_resolve(store, settings, full=True)
    assert full.decisions_changed == 0 and assignment(store) == before


def test_manual_merge_then_unmerge_restores_the_exact_state_and_stays_apart(resolved: Any) -> None:
    store, settings, _, _ = resolved
    run_resolve(store, settings)
    before = assignment(store)
    # two profiles a merge decision links but clustering kept apart: the unmerge keeps that pair
    # apart by a person's "no" too, which the person's second merge must overrule
    with store.reading() as conn:
        current = current_decisions(conn, store.domain)
    linked_apart = sorted(
        (a, b)
        for a, b, d in zip(current["mention_a"], current["mention_b"], current["decision"], strict=True)
        if d == "merge" and before.get(a) and before.get(b) and before[a] != before[b]
    )
    assert linked_apart
    first, second = before[linked_apart[0][0]], before[linked_apart[0][1]]
    with store.reading():
        golden_before = {pid: profile_view(store, pid)["golden"] for pid in (first, second)}
    done = merge_profiles(store, settings, first, second, "tester", "same guest, says the front desk")
    merged = assignment(store)
    assert merged != before and {merged[k] for k, p in before.items() if p in (first, second)} == {
        done["profile"]
    }
    # the retired id is an alias that still resolves
    assert profile_view(store, done["retired"])["id"] == done["profile"]
    unmerge(store, settings, done["event"], "tester", "front desk was wrong")
    assert assignment(store) == before
    assert {pid: profile_view(store, pid)["golden"] for pid in (first, second)} == golden_before
    with pytest.raises(ValidationFailed, match="already undone"):
        unmerge(store, settings, done["event"], "tester", "")
    # the unmerged sides stay apart in every later run
    run_resolve(store, settings, full=True)
    assert assignment(store) == before
    # a resolve keeps a person's merge (other mentions may regroup around the new evidence)
    sides = [k for k, p in before.items() if p in (first, second)]
    again = merge_profiles(store, settings, first, second, "tester", "it was them after all")
    run_resolve(store, settings, full=True)
    now = assignment(store)
    assert {now[k] for k in sides} == {again["profile"]}


def test_an_automatic_merge_is_an_event_that_can_be_undone(resolved: Any, tmp_path: Path) -> None:
    store, settings, _, _ = resolved
    run_resolve(store, settings)
    before = assignment(store)
    by_profile: dict[str, list[str]] = {}
    for key, pid in before.items():
        by_profile.setdefault(pid, []).append(key)
    (a, *_), (b, *_) = sorted(by_profile.values())[:2]
    extra = tmp_path / "more.csv"
    extra.write_text(f"mention_key_a,mention_key_b,score,scorer\n{a},{b},0.99,cloud-er\n")
    import_matches(store, settings, extra, "external", "tester")
    report = run_resolve(store, settings)
    assert report.events.get("merge") == 1 and assignment(store)[a] == assignment(store)[b]
    with store.reading() as conn:
        event = conn.execute(select(profile_events).where(profile_events.c.kind == "merge")).first()
    assert event is not None and event.actor == "upt resolve"
    unmerge(store, settings, event.id, "tester", "the scorer was wrong")
    assert assignment(store) == before
    run_resolve(store, settings, full=True)
    assert assignment(store) == before


def test_a_review_answer_becomes_a_label_and_a_decision(resolved: Any) -> None:
    store, settings, _, _ = resolved
    settings = settings.model_copy(update={"review_threshold": 0.02})  # every imported "no" is reviewed
    run_resolve(store, settings)
    items = list_reviews(store)
    assert items and items[0]["person_a"]
    item = items[0]
    done = decide_review(store, settings, item["id"], "match", "reviewer")
    assert done["status"] == "merged"
    with store.reading() as conn:
        labels = load_labels(conn, store.domain)
        status = conn.execute(select(review_queue.c.status).where(review_queue.c.id == item["id"])).scalar()
        decisions = current_decisions(conn, store.domain)
    pair = tuple(sorted((item["mention_a"], item["mention_b"])))
    assert (
        (labels["mention_a"] == pair[0]) & (labels["mention_b"] == pair[1]) & (labels["origin"] == "review")
    ).any()
    assert status == "merged"
    row = decisions[
        (decisions["mention_a"] == item["mention_a"]) & (decisions["mention_b"] == item["mention_b"])
    ]
    assert row["source"].tolist() == ["manual"] and row["decision"].tolist() == ["merge"]
    run_resolve(store, settings)
    now = assignment(store)
    assert now[item["mention_a"]] == now[item["mention_b"]]
    with pytest.raises(Conflict, match="already merged"):
        decide_review(store, settings, item["id"], "non_match", "reviewer")


def test_a_run_that_fails_while_writing_leaves_the_previous_state(
    resolved: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, settings, _, _ = resolved
    import pipelines.assign as resolve_module

    def broken(*args: Any, **kwargs: Any) -> int:
        raise RuntimeError("disk full")

    monkeypatch.setattr(resolve_module, "record_event", broken)
    monkeypatch.setattr(resolve_module, "queue_reviews", broken)
    with pytest.raises(RuntimeError):
        run_resolve(store, settings)
    with store.reading() as conn:
        assert current_decisions(conn, store.domain).empty
        assert not conn.execute(select(audit_log).where(audit_log.c.action == "resolve")).first()
    assert assignment(store) == {}
    monkeypatch.undo()
    first = run_resolve(store, settings)
    clean = assignment(store)
    assert first.mode == "full" and len(clean) == first.mentions


def test_a_different_model_or_threshold_under_the_same_version_redecides_everything(resolved: Any) -> None:
    store, settings, _, _ = resolved
    run_resolve(store, settings)
    assert run_resolve(store, settings).mode == "incremental"
    stricter = settings.model_copy(update={"merge_threshold": 0.95})
    again = run_resolve(store, stricter)
    assert again.mode == "full" and "model changed" in again.mode_reason
    assert run_resolve(store, stricter).mode == "incremental"


def test_online_resolve_decides_imported_pairs_as_the_batch_run(resolved: Any, tmp_path: Path) -> None:
    """Mentions resolved one at a time online take the imported scores of their pairs (and the
    imported pairs blocking did not propose) exactly as one batch run does."""
    import shutil

    from pipelines.online import OnlineResolver
    from profiles.store.schema import mentions

    store, settings, _, _ = resolved
    extra = tmp_path / "unproposed.csv"
    with store.reading() as conn:
        keys = [k for (k,) in conn.execute(select(mentions.c.mention_key).order_by(mentions.c.id))]
        table = load_candidate_table(conn, store.domain)
    proposed = {(int(a), int(b)) for a, b in zip(table.a.tolist(), table.b.tolist(), strict=True)}
    # an imported pair that blocking did not propose is decided too (first and last mention)
    assert (1, len(keys)) not in proposed
    extra.write_text(f"mention_key_a,mention_key_b,score,scorer\n{keys[0]},{keys[-1]},0.99,cloud-er\n")
    import_matches(store, settings, extra, "external", "tester")
    store.engine.dispose()
    copy = tmp_path / "batch.db"
    shutil.copy(Path(settings.store_url.removeprefix("sqlite:///")), copy)
    batch_settings = settings.model_copy(update={"database_url": f"sqlite:///{copy}"})
    batch = open_store(batch_settings)
    run_resolve(batch, batch_settings)

    resolver = OnlineResolver(store, settings)
    with store.reading() as conn:
        pks = [int(pk) for (pk,) in conn.execute(select(mentions.c.id).order_by(mentions.c.id))]
    for pk in pks:
        resolver.resolve_mention(pk)

    def imported(s: Store) -> dict[tuple[str, str], tuple[str, float]]:
        with s.reading() as conn:
            d = current_decisions(conn, s.domain)
        d = d[d["source"] == "external"]
        return {
            (a, b): (dec, round(float(sc), 6))
            for a, b, dec, sc in zip(d["mention_a"], d["mention_b"], d["decision"], d["score"], strict=True)
        }

    online, offline = imported(store), imported(batch)
    assert len(offline) > 20 and online == offline
    assert {(keys[0], keys[-1]), (keys[-1], keys[0])} & set(online)

    # and the profiles agree: the same mentions together
    def groups(s: Store) -> set[frozenset[str]]:
        by: dict[str, set[str]] = {}
        for k, p in assignment(s).items():
            by.setdefault(p, set()).add(k)
        return {frozenset(g) for g in by.values()}

    assert groups(store) == groups(batch)
