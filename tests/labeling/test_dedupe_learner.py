"""dedupe's own active learner behind UPT's strategy interface, on a real blocked store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from labeling.dedupe_learner import DedupeActiveLearning
from labeling.loop import run_loop
from labeling.oracle import SimulatedOracle
from labeling.store import load_labels
from pipelines.block import run_block
from pipelines.ingest import ingest_jsonl
from pipelines.label import build_pool, label_pairs
from pipelines.synthetic import GeneratorConfig, write_dataset
from profiles.settings import Settings
from profiles.store import Store
from tests.pipelines.test_block import HashEncoder


@pytest.fixture
def blocked(store: Store, settings: Settings, tmp_path: Path) -> SimulatedOracle:
    info = write_dataset(GeneratorConfig(persons=150, seed=4), tmp_path / "data")
    ingest_jsonl(store, settings, Path(info["objects_file"]))
    run_block(store, settings, encoder=HashEncoder())
    return SimulatedOracle.from_file(Path(info["truth_file"]))


def test_dedupe_learner_chooses_from_a_bounded_pool_sample_and_learns_every_answer(
    store: Store, blocked: SimulatedOracle
) -> None:
    from dedupe.labeler import DisagreementLearner

    pairs, pool = build_pool(store)
    keys = pairs.keys(np.arange(len(pool.features)))
    strategy = DedupeActiveLearning(max_pairs=200, seed=3)
    asked: list[int] = []
    report = run_loop(
        pool,
        lambda row: blocked.answer(*keys[row]),
        lambda row, answer: asked.append(row),
        budget=25,
        strategy=strategy,
    )
    assert report.asked == 25 == len(set(asked))
    assert report.matches >= 3 and report.non_matches >= 3  # dedupe asks both kinds
    learner = strategy._learner
    assert isinstance(learner, DisagreementLearner)
    # every question came from its bounded sample, and every answer reached dedupe's learner
    assert set(asked) <= set(strategy._rows.values()) and len(strategy._rows) == 200
    # answers reach dedupe's learner when it is next asked to choose
    more = strategy.select(pool, 1, set(asked), np.random.default_rng(0))
    assert len(learner.y) == 5 + report.matches + report.non_matches  # its bootstrap + answers
    assert more and more[0] not in asked
    assert len(strategy._records) <= 2 * 200


def test_upt_label_with_the_dedupe_strategy_continues_earlier_labels(
    store: Store, blocked: SimulatedOracle
) -> None:
    def answer(row: int, pairs: object) -> str:
        return blocked.answer(*pairs.keys([row])[0])  # type: ignore[attr-defined]

    label_pairs(store, answer, blocked.labeller, blocked.origin, 10, "uncertainty")
    # the earlier labels are marked in dedupe's learner (and indexed for its predicates)
    report = label_pairs(store, answer, blocked.labeller, blocked.origin, 15, "dedupe")
    with store.reading() as conn:
        labels = load_labels(conn, store.domain)
    assert report.asked == 15 and len(labels) == 25
    assert set(labels["label"]) <= {"match", "non_match", "unsure"}
