"""The unsupervised Fellegi-Sunter model of the candidate pool: what EM recovers without labels."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from models.fellegi_sunter import FellegiSunter, comparison_levels, distinct_patterns


def _pool(matches: int, non_matches: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Candidate pairs drawn from known distributions: matches mostly agree on names, birth date
    and contacts; non-matches (look-alikes that blocking found) share a surname and often a home,
    and rarely anything else."""
    rng = np.random.default_rng(seed)
    y = np.r_[np.ones(matches, int), np.zeros(non_matches, int)]
    n = len(y)

    def draw(p_match: float, p_non: float) -> np.ndarray:
        return (rng.random(n) < np.where(y == 1, p_match, p_non)).astype(float)

    first_same = draw(0.9, 0.15)
    dob_known = draw(0.4, 0.4)
    email_known = draw(0.5, 0.5)
    frame = pd.DataFrame(
        {
            "first_jw": np.where(first_same == 1, 1.0, rng.uniform(0.3, 0.8, n)),
            "first_nickname_eq": np.zeros(n),
            "name_swap": np.zeros(n),
            "last_jw": np.where(draw(0.95, 0.8) == 1, 1.0, 0.5),
            "last_phonetic_eq": np.zeros(n),
            "dob_missing": 1 - dob_known,
            "dob_exact": np.where(dob_known == 1, draw(0.9, 0.02), np.nan),
            "dob_one_digit_off": np.where(dob_known == 1, 0.0, np.nan),
            "dob_day_month_swapped": np.where(dob_known == 1, 0.0, np.nan),
            "email_missing": 1 - email_known,
            "email_exact": np.where(email_known == 1, draw(0.7, 0.05), np.nan),
            "gender_conflict": draw(0.0, 0.3),
        }
    )
    return frame, y


def test_em_recovers_the_share_of_matches_and_ranks_them_first_without_a_label() -> None:
    from sklearn.metrics import roc_auc_score

    features, y = _pool(3_000, 7_000)
    mixture = FellegiSunter.fit(features)
    assert mixture.match_share == pytest.approx(0.3, abs=0.05)
    p = mixture.match_probability(features)
    assert p.sum() == pytest.approx(3_000, rel=0.15)  # the expected number of matches
    assert roc_auc_score(y, p) > 0.95
    # agreement raises the odds, as the levels promise: an exact birth date far more than a first name
    dob, first = (
        np.array(mixture.m["birth_date"]) / mixture.u["birth_date"],
        np.array(mixture.m["first_name"]) / mixture.u["first_name"],
    )
    assert dob[-1] > first[-1] > 1 > dob[0]


def test_a_field_neither_side_has_adds_nothing() -> None:
    features, _ = _pool(500, 500)
    mixture = FellegiSunter.fit(features)
    pair = features[features["email_missing"] == 0].iloc[[0]].copy()
    without = pair.copy()
    without["email_missing"], without["email_exact"] = 1.0, np.nan
    levels = comparison_levels(without)
    assert levels["email"][0] == 0 and levels["address"][0] == 0 and levels["booking"][0] == 0
    bayes = mixture.log_bayes_factors(pair)[0] - mixture.log_bayes_factors(without)[0]
    email_ratio = np.log(np.array(mixture.m["email"]) / mixture.u["email"])
    assert bayes == pytest.approx(email_ratio[comparison_levels(pair)["email"][0] - 1])


def test_the_fit_is_the_same_in_any_row_order_and_an_empty_pool_gives_no_matches() -> None:
    features, _ = _pool(800, 1_200, seed=3)
    one = FellegiSunter.fit(features)
    shuffled = FellegiSunter.fit(features.sample(frac=1.0, random_state=1))
    assert one.to_dict() == shuffled.to_dict()
    empty = FellegiSunter.fit(features.iloc[:0])
    assert empty.match_share == 0.0 and len(empty.match_probability(features)) == len(features)
    assert not empty.match_probability(features).any()


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 14).flatmap(
        lambda width: arrays(
            np.int64, st.tuples(st.integers(0, 300), st.just(width)), elements=st.integers(0, 6)
        )
    )
)
def test_distinct_patterns_are_numpys_unique_rows_with_their_counts(levels: np.ndarray) -> None:
    expected = np.unique(levels, axis=0, return_counts=True)
    patterns, counts = distinct_patterns(levels)
    assert np.array_equal(patterns, expected[0]) and np.array_equal(counts, expected[1])


def test_distinct_patterns_too_wide_for_one_number_still_count_right() -> None:
    # 40 columns of 6 levels need more than 63 bits: the rows are compared as rows
    levels = np.random.default_rng(0).integers(0, 6, size=(500, 40))
    levels[250:] = levels[:250]
    patterns, counts = distinct_patterns(levels)
    assert len(patterns) == 250 and set(counts.tolist()) == {2}
    assert np.array_equal(patterns, np.unique(levels, axis=0))


def test_labels_correct_the_pool_prior_and_the_model_keeps_what_they_never_showed() -> None:
    from sklearn.metrics import roc_auc_score

    from models.classifiers import PRIOR_COLUMN, LogisticMatcher, load_model

    features, y = _pool(3_000, 7_000, seed=5)
    mixture = FellegiSunter.fit(features)
    # 40 labels, none of whose pairs has a birth date on both sides: alone they cannot teach
    # that a shared birth date makes a match; with the pool's prior the model still knows it
    no_dob = np.flatnonzero(features["dob_missing"].to_numpy() == 1)
    rows = np.r_[no_dob[y[no_dob] == 1][:20], no_dob[y[no_dob] == 0][:20]]
    plain = LogisticMatcher().fit(features.iloc[rows], y[rows])
    prior = LogisticMatcher(prior=mixture).fit(features.iloc[rows], y[rows])
    dob_pairs = features["dob_missing"].to_numpy() == 0
    assert roc_auc_score(y[dob_pairs], prior.predict_proba(features[dob_pairs])) > roc_auc_score(
        y[dob_pairs], plain.predict_proba(features[dob_pairs])
    )
    # the prior travels with the saved model and its log-odds show in the explanation
    again = load_model(json.loads(json.dumps(prior.to_dict())))
    assert np.allclose(again.predict_proba(features.head(50)), prior.predict_proba(features.head(50)))
    explained = prior.explain(features.head(5))
    assert np.allclose(explained[PRIOR_COLUMN], mixture.log_odds(features.head(5)))
    from scipy.special import logit

    raw = prior._raw(prior.fitted_, prior.design(features.head(5)))
    assert np.allclose(explained.sum(axis=1), logit(raw))


def test_with_the_prior_a_field_written_on_one_side_only_stays_neutral() -> None:
    from models.classifiers import LogisticMatcher

    features, y = _pool(3_000, 7_000, seed=7)
    mixture = FellegiSunter.fit(features)
    # 40 labels whose non-matches all lack an email on one side and whose matches all have both:
    # alone they teach that a missing email is evidence against a match
    one_sided = features["email_missing"].to_numpy() == 1
    rows = np.r_[np.flatnonzero(~one_sided & (y == 1))[:20], np.flatnonzero(one_sided & (y == 0))[:20]]
    plain = LogisticMatcher().fit(features.iloc[rows], y[rows])
    prior = LogisticMatcher(prior=mixture).fit(features.iloc[rows], y[rows])
    weight = {m: dict(zip(m.columns_, m.fitted_.coef, strict=True))["email_missing"] for m in (plain, prior)}
    assert weight[plain] < 0 and weight[prior] == 0.0
    assert (prior.explain(features.head(20))["email_missing"] == 0).all()


def test_trees_learn_the_correction_of_the_prior_too() -> None:
    from models.classifiers import PRIOR_COLUMN, LightGBMMatcher, load_model, make_model

    features, y = _pool(1_500, 3_500, seed=6)
    mixture = FellegiSunter.fit(features)
    rows = np.r_[np.flatnonzero(y == 1)[:120], np.flatnonzero(y == 0)[:120]]
    trees = make_model("lightgbm", mixture).fit(features.iloc[rows], y[rows])
    assert isinstance(trees, LightGBMMatcher) and trees.prior is mixture
    assert make_model("ensemble", mixture).prior is None and make_model("dedupe", mixture).prior is None
    again = load_model(json.loads(json.dumps(trees.to_dict())))
    assert np.allclose(again.predict_proba(features.head(50)), trees.predict_proba(features.head(50)))
    head = features.head(5)
    explained = trees.explain(head)
    assert np.allclose(explained[PRIOR_COLUMN], mixture.log_odds(head))
    raw = trees._raw(trees.fitted_, trees.design(head))
    assert np.allclose(explained.sum(axis=1), np.log(raw / (1 - raw)), atol=1e-6)


def test_levels_read_at_once_or_column_by_column_are_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    """A request's few pairs are read out of the frame in one indexing, a batch's column by
    column: the same levels, a comparison the frame lacks counted as not comparable."""
    from models import fellegi_sunter

    features, _ = _pool(300, 300)
    features = features.drop(columns=["email_exact", "name_swap"])
    at_once = comparison_levels(features)
    monkeypatch.setattr(fellegi_sunter, "AT_ONCE", 0)
    by_column = comparison_levels(features)
    # a column the levels read that is not listed to be taken at once is still read
    monkeypatch.setattr(fellegi_sunter, "AT_ONCE", 100_000)
    monkeypatch.setattr(fellegi_sunter, "READS", ("first_jw",))
    partly = comparison_levels(features)
    assert at_once.keys() == by_column.keys() == partly.keys()
    for name, levels in at_once.items():
        np.testing.assert_array_equal(levels, by_column[name])
        np.testing.assert_array_equal(levels, partly[name])
    assert (at_once["email"] <= 1).all()
