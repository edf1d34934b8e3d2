"""Training, MLflow logging and the registry end to end on generated data with oracle labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipelines.block import run_block
from pipelines.ingest import ingest_jsonl
from pipelines.synthetic import GeneratorConfig, write_dataset
from profiles.errors import Refused
from profiles.settings import Settings
from profiles.store import Store
from profiles.store.schema import audit_log
from tests.pipelines.helpers import label_with_oracle
from tests.pipelines.test_block import HashEncoder
from training import registry
from training.metrics import cluster_scores, merge_threshold
from training.train import MIN_PER_CLASS_TO_TRUST, caution_for, train


@pytest.fixture
def labelled(store: Store, settings: Settings, tmp_path: Path) -> tuple[Store, Settings]:
    info = write_dataset(GeneratorConfig(persons=150, seed=4), tmp_path / "data")
    ingest_jsonl(store, settings, Path(info["objects_file"]))
    run_block(store, settings, encoder=HashEncoder())
    label_with_oracle(store, info["truth_file"], 40)
    return store, settings.model_copy(
        update={"mlflow_tracking_uri": str(tmp_path / "mlruns"), "encoder": "hash"}
    )


@pytest.mark.slow
def test_train_logs_registers_and_promotion_is_guarded(labelled: tuple[Store, Settings]) -> None:
    store, settings = labelled
    first = train(store, settings, "lightgbm")
    assert first.aliases == ["champion"] and first.labels >= 30
    # 40 oracle labels hold 10 or more of each class here: no caution
    assert first.caution is None
    assert 0.1 <= first.thresholds["review"] <= first.thresholds["merge"] <= 1.0
    # the unsupervised model of the candidate pool found matches there, and its figures are logged
    assert 0.0 < first.metrics["pool_mixture_match_share"] < 1.0
    assert first.metrics["pool_mixture_expected_matches"] > first.labels / 4
    second = train(store, settings, "logistic")
    assert second.aliases == ["challenger"]
    versions = registry.list_versions(store, settings)
    assert [v["version"] for v in versions] == ["2", "1"] or [v["version"] for v in versions] == [
        second.version,
        first.version,
    ]
    assert {"precision", "recall", "f1"} <= set(versions[0]) and versions[1]["aliases"] == ["champion"]
    mine = registry.evaluate_version(store, settings, second.version)
    champion = registry.evaluate_version(store, settings, first.version)
    if mine["f1"] < champion["f1"]:
        with pytest.raises(Refused, match="--force"):
            registry.promote(store, settings, "challenger", "tester")
    result = registry.promote(store, settings, "challenger", "tester", force=True)
    assert result["previous_champion"] == first.version
    assert registry.resolve_version(store, settings, "champion") == second.version
    back = registry.rollback(store, settings, "tester")
    assert back["champion"] == first.version
    # the default picks the linear model while a class has fewer than 100 labels
    assert train(store, settings).model == "logistic"
    with store.reading() as conn:
        actions = [r.action for r in conn.execute(audit_log.select())]
    assert actions == ["model.promote", "model.rollback"]


def test_cluster_scores_match_the_independent_scorer_definitions() -> None:
    truth = {"a": "1", "b": "1", "c": "2", "d": "2"}
    perfect = cluster_scores(truth, {"a": "x", "b": "x", "c": "y", "d": "y"})
    assert perfect["f1"] == perfect["b3_f1"] == 1.0
    lumped = cluster_scores(truth, {"a": "x", "b": "x", "c": "x", "d": "x"})
    assert lumped["precision"] == pytest.approx(2 / 6) and lumped["recall"] == 1.0
    assert lumped["b3_precision"] == pytest.approx(0.5)
    missing = cluster_scores(truth, {"a": "x"})
    assert missing["recall"] == 0.0


def test_merge_threshold_reaches_the_target_precision() -> None:
    import numpy as np

    y = np.array([1, 1, 1, 0, 1, 0, 0])
    p = np.array([0.99, 0.95, 0.9, 0.85, 0.8, 0.3, 0.1])
    assert merge_threshold(y, p, 0.995) == 0.9
    assert merge_threshold(y, p, 0.75) == 0.8


def test_the_default_merge_threshold_is_f1_best_and_one_look_alike_does_not_lift_it() -> None:
    import numpy as np

    from training.metrics import choose_merge_threshold

    # 60 matches and 60 non-matches; one non-match (a namesake) scored above every match
    rng = np.random.default_rng(0)
    p = np.concatenate([[0.99], rng.uniform(0.6, 0.95, 60), rng.uniform(0.01, 0.5, 59)])
    y = np.concatenate([[0], np.ones(60, int), np.zeros(59, int)])
    merge, rule = choose_merge_threshold(y, p)
    assert rule == "f1_best_out_of_fold" and merge == p[1:61].min()  # every match merges
    strict, rule = choose_merge_threshold(y, p, 0.995)
    assert rule == "precision_target" and strict == 0.99  # asked for: above the namesake
    few = np.r_[0:10, 61:71]  # 10 of each class: a precision target cannot be measured
    assert choose_merge_threshold(y[few], p[few], 0.995)[1] == "f1_best_out_of_fold"


def test_a_model_from_too_few_labels_of_a_class_comes_with_a_caution() -> None:
    few = MIN_PER_CLASS_TO_TRUST - 1
    caution = caution_for(np.array([1] * few + [0] * 30))
    assert caution is not None and f"only {few} matches and 30 non-matches" in caution
    assert caution_for(np.array([1] * 30 + [0] * few)) is not None
    assert caution_for(np.array([1] * MIN_PER_CLASS_TO_TRUST + [0] * MIN_PER_CLASS_TO_TRUST)) is None


def test_the_pool_threshold_counts_only_merges_the_guards_let_stand() -> None:
    from training.metrics import choose_merge_threshold, pool_f1_threshold

    # a pool of 1,000 candidate pairs: 300 likely matches, 400 doubtful, 300 unlikely
    p = np.concatenate([np.full(300, 0.9), np.full(400, 0.3), np.full(300, 0.02)])
    allowed = np.ones(1000, bool)
    assert pool_f1_threshold(p, allowed) == 0.9  # merging the 0.3s adds more false than true
    # half of the likely ones (name-only namesakes) go to review whatever they score: their
    # matches are still to be found, so the doubtful pairs are now worth merging
    allowed[:150] = False
    assert pool_f1_threshold(p, allowed) == 0.3
    assert pool_f1_threshold(p, np.zeros(1000, bool)) is None
    # with the pool, the out-of-fold labels do not set the threshold; without it, they do
    y, oof = np.array([1, 1, 0, 0]), np.array([0.95, 0.8, 0.85, 0.1])
    assert choose_merge_threshold(y, oof, None, p, allowed) == (0.3, "f1_expected_over_pool")
    assert choose_merge_threshold(y, oof)[1] == "f1_best_out_of_fold"
    # a pool whose likely matches score 0.45-0.5: merging from 0.45 has the best expected F1
    q = np.concatenate([np.linspace(0.45, 0.5, 200), np.full(800, 0.01)])
    assert pool_f1_threshold(q, np.ones(1000, bool)) == 0.45


def test_the_review_band_reaches_down_to_one_match_in_five_over_the_pool() -> None:
    from training.metrics import review_threshold

    # below a merge threshold of 0.6: 100 pairs at 0.5, 100 at 0.3, 200 at 0.05, 600 at 0.01
    p = np.concatenate([np.full(100, 0.5), np.full(100, 0.3), np.full(200, 0.05), np.full(600, 0.01), [0.9]])
    # the band of the 0.5s and 0.3s expects 0.4 matches a pair; with the 0.05s, 0.225; with all, 0.09
    assert review_threshold(0.6, p) == 0.1  # down into the 0.05s, but never below 0.1
    assert review_threshold(0.6, p, rate=0.45) == 0.3  # a third of the 0.3s keep it at 0.45
    assert review_threshold(0.6, p, rate=0.5) == 0.5
    # no band where the pairs below the threshold are not worth a look, never one above it
    assert review_threshold(0.25, p) == 0.25
    assert review_threshold(0.05, p) == 0.05
    assert review_threshold(0.6, np.full(10, 0.9)) == 0.1  # nothing below: the floor
