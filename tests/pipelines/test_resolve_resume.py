"""`upt resolve` after a crash: the next run redoes the work with neither lost nor duplicated
decisions, whether the crash came after blocking stored its pairs or in the middle of the run's
own write."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

import pipelines.assign
import pipelines.resolve
from features.frame import load_interactions, load_mentions
from pipelines.block import blocking_identity, blocking_is_current
from pipelines.resolve import run_resolve
from pipelines.synthetic import GeneratorConfig, write_dataset
from profiles.settings import Settings
from profiles.store import Store, open_store
from profiles.store.profiles_io import current_membership
from profiles.store.schema import match_decisions, review_queue
from tests.pipelines.test_cli import upt


class Crash(RuntimeError):
    pass


def _crash(*_: object, **__: object) -> None:
    raise Crash("killed here")


def _open(home: Path, mlruns: Path) -> tuple[Store, Settings]:
    settings = Settings(home=home, mlflow_tracking_uri=str(mlruns))
    return open_store(settings), settings


def _outcome(store: Store) -> tuple[set[frozenset[int]], Counter[tuple[str, str, str]], int]:
    """(the partition of mentions into profiles, the recorded decisions as a multiset of
    (mention_a, mention_b, decision), review items)."""
    with store.reading() as conn:
        groups: dict[str, set[int]] = {}
        for pk, pid in current_membership(conn, store.domain).members.items():
            groups.setdefault(pid, set()).add(pk)
        decisions = Counter(
            (a, b, d)
            for a, b, d in conn.execute(
                select(match_decisions.c.mention_a, match_decisions.c.mention_b, match_decisions.c.decision)
            )
        )
        reviews = conn.execute(select(func.count()).select_from(review_queue)).scalar_one()
    return {frozenset(g) for g in groups.values()}, decisions, int(reviews)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(the store as ingested, the registry with its champion model, the store resolved in one go)."""
    root = tmp_path_factory.mktemp("resume")
    mlruns, home, ingested = root / "mlruns", root / "home", root / "ingested"
    env = {"UPT_MLFLOW_TRACKING_URI": str(mlruns)}
    info = write_dataset(GeneratorConfig(persons=150, seed=21), root / "data")
    upt(home, "ingest", info["objects_file"], "-q", env=env)
    shutil.copytree(home, ingested)
    upt(home, "block", "-q", env=env)
    upt(home, "label", "--oracle", info["truth_file"], "--budget", "30", "--json", env=env)
    upt(home, "train", "--json", env=env)
    reference = root / "reference"
    shutil.copytree(ingested, reference)
    store, settings = _open(reference, mlruns)
    assert run_resolve(store, settings).blocking["ran"] is True
    return ingested, mlruns, reference


def _crashed_run(
    prepared: tuple[Path, Path, Path], home: Path, monkeypatch: pytest.MonkeyPatch, at: str
) -> tuple[Store, Settings, tuple[set[frozenset[int]], Counter[tuple[str, str, str]], int]]:
    """A run on a copy of the store as ingested that dies where `pipelines.assign` calls `at`:
    (its store, its settings, what the uninterrupted run left)."""
    ingested, mlruns, reference = prepared
    shutil.copytree(ingested, home)
    store, settings = _open(home, mlruns)
    monkeypatch.setattr(pipelines.assign, at, _crash)
    with pytest.raises(Crash):
        run_resolve(store, settings)
    monkeypatch.undo()
    return store, settings, _outcome(_open(reference, mlruns)[0])


@pytest.mark.slow
def test_a_crash_after_blocking_stored_its_pairs(
    prepared: tuple[Path, Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, settings, expected = _crashed_run(prepared, tmp_path / "home", monkeypatch, "cluster")
    with store.reading() as conn:  # the pairs are stored and current; nothing of the resolve is
        frame = load_mentions(conn, store.domain)
        identity = blocking_identity(frame, load_interactions(conn, store.domain), store.domain, settings)
        assert blocking_is_current(conn, store.domain, identity)
    assert _outcome(store) == (set(), Counter(), 0)
    again = run_resolve(store, settings)
    assert again.blocking["ran"] is False and again.mode == "full"
    assert _outcome(store) == expected


@pytest.mark.slow
def test_a_crash_in_the_middle_of_the_write_leaves_nothing_half_done(
    prepared: tuple[Path, Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the profiles and decisions are written, then the review queue fails: all of it is undone
    store, settings, expected = _crashed_run(prepared, tmp_path / "home", monkeypatch, "queue_reviews")
    assert _outcome(store) == (set(), Counter(), 0)
    run_resolve(store, settings)
    assert _outcome(store) == expected
    assert max(expected[1].values()) == 1  # each decision recorded once
    # and once more, nothing changed: no decision is recorded twice
    assert run_resolve(store, settings).decisions_changed == 0
    assert _outcome(store) == expected
