from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.pairs import PairFeatures
from labeling.loop import run_loop
from labeling.oracle import SimulatedOracle
from labeling.store import (
    Label,
    conflicts,
    export_labels,
    load_labels,
    read_label_file,
    save_labels,
    training_labels,
)
from labeling.strategies import (
    Pool,
    QueryByCommittee,
    UncertaintySampling,
    _balanced,
    seed_round,
    seed_score,
)
from models.classifiers import LogisticMatcher, auto_model_name
from profiles.errors import ValidationFailed
from profiles.store import Store


def test_labels_are_one_per_pair_and_labeller_with_conflicts_listed(store: Store, tmp_path: Path) -> None:
    with store.transaction() as conn:
        save_labels(
            conn,
            store.domain,
            [
                Label("b", "a", "match", "ann", "cli", {"x": 1.0}),
                Label("a", "b", "non_match", "ann", "cli"),  # ann changes her mind: one label remains
                Label("a", "b", "match", "bob", "ui"),
                Label("c", "d", "unsure", "bob", "ui"),
                Label("e", "f", "match", "bob", "import"),
            ],
        )
        frame = load_labels(conn, store.domain)
    assert len(frame) == 4
    assert set(conflicts(frame)["labeller"]) == {"ann", "bob"}
    usable = training_labels(frame)
    assert usable[["mention_a", "mention_b", "y"]].values.tolist() == [["e", "f", 1]]
    export_labels(frame, tmp_path / "labels.csv")
    export_labels(frame, tmp_path / "labels.jsonl")
    assert len(read_label_file(tmp_path / "labels.csv", "me")) == 4
    assert read_label_file(tmp_path / "labels.jsonl", "me")[0].labeller in {"ann", "bob"}
    with pytest.raises(ValidationFailed), store.transaction() as conn:
        save_labels(conn, store.domain, [Label("a", "b", "maybe", "ann", "cli")])


def test_oracle_answers_from_truth() -> None:
    oracle = SimulatedOracle(pd.DataFrame({"mention_key": ["a", "b", "c"], "person_id": ["1", "1", "2"]}))
    assert [oracle.answer("a", "b"), oracle.answer("a", "c"), oracle.answer("a", "zz")] == [
        "match",
        "non_match",
        "unsure",
    ]


def pool(n: int = 300, seed: int = 1) -> tuple[Pool, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(int)
    features = pd.DataFrame(
        {
            "mention_a": np.arange(n),
            "mention_b": np.arange(n) + n,
            "first_jw": np.clip(0.55 + 0.35 * y + rng.normal(0, 0.12, n), 0, 1),
            "dob_exact": np.where(rng.random(n) < 0.5, np.nan, y).astype(float),
        }
    )
    blockers = np.where(rng.random(n) < 0.5, 1, 128)
    return Pool(features, blockers, {}), y


def test_seed_round_spreads_over_scores_and_blockers() -> None:
    p, _ = pool()
    picks = seed_round(p, 10, set(), np.random.default_rng(0))
    assert len(picks) == 10 and len(set(picks)) == 10
    assert {1, 128} <= {int(b) for b in p.blockers[picks]}
    scores = p.features["first_jw"].to_numpy()[picks]
    assert scores.min() < 0.6 < scores.max()


@pytest.mark.parametrize("strategy", [UncertaintySampling(), QueryByCommittee(members=3)])
def test_loop_with_the_oracle_learns_a_good_model_and_saves_every_answer(strategy: object) -> None:
    p, y = pool()
    saved: list[tuple[int, str]] = []
    report = run_loop(
        p,
        lambda row: "match" if y[row] else "non_match",
        lambda r, a: saved.append((r, a)),
        budget=30,
        strategy=strategy,
        seed_size=10,
        batch=5,
    )  # type: ignore[arg-type]
    assert report.asked == 30 == len(saved) == len({r for r, _ in saved})
    assert report.matches + report.non_matches == 30
    assert report.estimates and report.estimates[-1]["estimated_precision"] > 0.8


def test_quitting_stops_at_once() -> None:
    p, _ = pool()
    answers = iter(["match", "non_match", None])
    report = run_loop(
        p, lambda row: next(answers), lambda r, a: None, budget=20, strategy=UncertaintySampling()
    )
    assert report.stopped_early and report.asked == 2


def test_back_undoes_the_previous_answer_everywhere() -> None:
    p, _ = pool()
    script = iter(["match", "back", "non_match", "non_match", "unsure"])
    saved: dict[int, str] = {}
    unsaved: list[int] = []
    order: list[int] = []

    def ask(row: int) -> str | None:
        order.append(row)
        return next(script, None)

    def save(row: int, answer: str) -> None:
        saved[row] = answer

    def unsave(row: int) -> None:
        unsaved.append(row)
        saved.pop(row)

    report = run_loop(p, ask, save, budget=3, strategy=UncertaintySampling(), unsave=unsave)
    assert unsaved == [order[0]] and order[2] == order[0]  # the undone pair is asked again at once
    assert saved[order[0]] == "non_match" and len(saved) == 3
    assert (report.asked, report.matches, report.non_matches, report.unsure) == (3, 0, 2, 1)
    assert p.labelled[order[0]] == 0


def test_uncertainty_sampling_asks_for_the_model_training_will_fit() -> None:
    sampler = UncertaintySampling()
    p, _ = pool(n=400, seed=3)
    few = np.array([1] * 10 + [0] * 30)
    many = np.array([1] * 500 + [0] * 500)
    linear = sampler.model_for(p, few)
    assert linear.name == auto_model_name(few) == "logistic"
    # with the prior `upt train` gives it: the unsupervised model of this very pool
    assert isinstance(linear, LogisticMatcher) and linear.prior is p.prior
    assert sampler.model_for(p, many).name == auto_model_name(many) == "lightgbm"


def test_the_pool_fits_once_per_state_of_the_labels_and_again_when_they_change() -> None:
    p, y = pool(n=400, seed=3)
    p.labelled = {int(r): int(y[r]) for r in range(30)}
    first, scores = p.trained()
    assert p.trained()[0] is first  # the estimate after a round and the next round share the fit
    x, labels = p.training_set()
    fresh = LogisticMatcher(prior=p.prior).fit(x, labels)
    np.testing.assert_array_equal(scores, fresh.predict_proba(p.features))
    # the scores of some rows alone are those rows' scores of the whole pool
    rows = np.array([5, 17, 399, 200])
    np.testing.assert_array_equal(first.predict_proba(p.features.iloc[rows]), scores[rows])
    p.labelled[30] = int(y[30])
    design = p._design
    second = p.trained()[0]
    assert second is not first and len(second.oof_proba_) == 31
    assert p._design is design  # the pool's design matrix is built once for every fit
    np.testing.assert_array_equal(p.trained()[1], second.predict_proba(p.features))
    p.labelled = dict(reversed(list(p.labelled.items())))  # the folds follow the order given
    assert p.trained()[0] is not second


def test_scarce_matches_are_topped_up_by_seed_score_not_by_a_one_match_model() -> None:
    p, y = pool(n=400, seed=3)
    matches = np.flatnonzero(y == 1)
    p.labelled = {int(matches[0]): 1, **{int(r): 0 for r in np.flatnonzero(y == 0)[:19]}}
    picks = _balanced(p, p.unlabelled(set(p.labelled)), [int(r) for r in np.flatnonzero(y == 0)[19:29]], 10)
    assert len(picks) == 10
    topped_up = picks[:5]  # half the round goes to the highest seed scores: here all matches
    assert all(y[r] == 1 for r in topped_up)
    scores = seed_score(p.features)
    free = p.unlabelled(set(p.labelled))
    assert min(scores[topped_up]) >= np.sort(scores[free])[-6]


def _pair_features(order: np.ndarray, n: int = 400, pairs: int = 900) -> tuple[PairFeatures, dict]:
    """The same mentions and candidate pairs, the mentions stored with ids in `order` (as if the
    data had arrived in that order) and the pairs listed by those ids."""
    rng = np.random.default_rng(5)
    keys = np.array([f"src/obj/{i:05d}#p" for i in range(n)])
    same = rng.random(pairs) < 0.3
    left, right = rng.integers(0, n, pairs), rng.integers(0, n, pairs)
    right = np.where(left == right, (right + 1) % n, right)
    unique = sorted({(int(min(a, b)), int(max(a, b))) for a, b in zip(left, right, strict=True)})
    truth = {(keys[a], keys[b]): bool(same[i % pairs]) for i, (a, b) in enumerate(unique)}
    pk = np.empty(n, np.int64)
    pk[order] = np.arange(1, n + 1)  # mention i arrives order-th
    frame = pd.DataFrame({"mention_key": keys}, index=pd.Index(pk, name="mention_pk"))
    a = np.array([pk[x] for x, _ in unique])
    b = np.array([pk[y] for _, y in unique])
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    is_match = np.array([truth[(keys[x], keys[y])] for x, y in unique])
    features = pd.DataFrame(
        {
            "mention_a": lo,
            "mention_b": hi,
            # few distinct values: many ties, which must not be broken by row order
            "first_jw": np.round(np.clip(0.55 + 0.35 * is_match + rng.normal(0, 0.1, len(lo)), 0, 1), 1),
            "dob_exact": np.where(rng.random(len(lo)) < 0.5, np.nan, is_match).astype(float),
        }
    )
    shuffle = np.argsort(lo * (n + 1) + hi)  # listed by (a, b) of these ids, as the store reads them
    features = features.iloc[shuffle].reset_index(drop=True)
    blockers = np.where(features["dob_exact"].isna(), 1, 128)
    return PairFeatures(frame, features, blockers), truth


@pytest.mark.parametrize("strategy", [UncertaintySampling, QueryByCommittee])
def test_the_questions_do_not_depend_on_the_order_the_data_arrived_in(strategy: type) -> None:
    asked: list[list[tuple[str, str]]] = []
    for order in (np.arange(400), np.random.default_rng(9).permutation(400)):
        pairs, truth = _pair_features(order)
        pairs = pairs.in_key_order()
        p = Pool(pairs.features, pairs.blockers, {}, pairs.frame, pairs.draws())
        keys = [tuple(sorted(k)) for k in pairs.keys(np.arange(len(pairs.features)))]
        run_loop(
            p,
            lambda row, keys=keys, truth=truth: "match" if truth[keys[row]] else "non_match",
            lambda r, a: None,
            budget=30,
            strategy=strategy(),
            seed=3,
        )
        asked.append([keys[row] for row in p.labelled])
    assert len(asked[0]) == 30 and asked[0] == asked[1]


def test_pairs_in_key_order_are_sorted_by_their_smaller_then_larger_mention_key() -> None:
    rng = np.random.default_rng(4)
    keys = sorted(
        {
            f"src{rng.integers(0, 4)}/o/{rng.integers(0, 10**5):06d}#p[{rng.integers(0, 3)}]"
            for _ in range(600)
        }
    )
    ids = rng.permutation(len(keys)) + 7  # ids given in another order than the keys
    frame = pd.DataFrame({"mention_key": keys}, index=pd.Index(ids, name="mention_pk"))
    a, b = rng.choice(ids, 3000), rng.choice(ids, 3000)
    a, b = np.minimum(a, b)[a != b], np.maximum(a, b)[a != b]
    features = pd.DataFrame({"mention_a": a, "mention_b": b, "row": np.arange(len(a))})
    ordered = PairFeatures(frame, features, np.zeros(len(a), np.int64)).in_key_order()
    named = [tuple(sorted(k)) for k in ordered.keys(np.arange(len(a)))]
    assert named == sorted(named)
    assert sorted(ordered.features["row"]) == list(range(len(a)))


def test_seed_round_asks_about_the_likeliest_of_a_kind_of_pair_missing_a_name() -> None:
    """A web session has no name: its pairs are a kind of their own, and the seed round asks
    about one of its likeliest matches, not only whatever the score quantiles happen to hold."""
    p, _ = pool(n=1000)
    nameless = np.zeros(1000, bool)
    nameless[::20] = True  # 5% of the pool
    features = p.features.assign(
        first_missing=nameless.astype(float),
        email_exact=np.where(nameless, (np.arange(1000) % 40 == 0).astype(float), np.nan),
        first_jw=np.where(nameless, np.nan, p.features["first_jw"]),
    )
    for seed in range(5):
        picks = seed_round(Pool(features, p.blockers, {}), 10, set(), np.random.default_rng(seed))
        assert len(picks) == 10
        asked = features.iloc[picks]
        assert ((asked["first_missing"] == 1) & (asked["email_exact"] == 1)).any()
