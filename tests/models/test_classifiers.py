from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from models.base import feature_matrix
from models.bundle import Bundle, Thresholds
from models.classifiers import LightGBMMatcher, LogisticMatcher, auto_model_name, load_model, make_model
from profiles.errors import NotReady


def toy(n: int = 200, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    name = np.clip(y * 0.3 + rng.normal(0.6, 0.12, n), 0, 1)
    dob = np.where(rng.random(n) < 0.3, np.nan, (y == 1) & (rng.random(n) < 0.9)).astype(float)
    frame = pd.DataFrame(
        {"mention_a": np.arange(n), "mention_b": np.arange(n) + n, "name_jw": name, "dob_exact": dob}
    )
    return frame, y


@pytest.mark.parametrize("name", ["lightgbm", "logistic", "ensemble", "dedupe"])
def test_models_learn_calibrate_explain_and_round_trip_as_json(name: str) -> None:
    x, y = toy()
    model = make_model(name).fit(x, y)
    p = model.predict_proba(x)
    assert p.shape == (len(y),) and ((p >= 0) & (p <= 1)).all()
    assert ((p >= 0.5) == y).mean() > 0.85
    assert model.oof_proba_.shape == (len(y),)
    contrib = model.explain(x.head(5))
    assert list(contrib.columns) == ["name_jw", "dob_exact", "bias"]
    restored = load_model(json.loads(json.dumps(model.to_dict())))
    assert np.allclose(restored.predict_proba(x), p)
    assert set(model.importance()) == {"name_jw", "dob_exact"}


def test_dedupe_classifier_is_dedupes_own_and_copes_with_few_labels() -> None:
    import dedupe

    x, y = toy()
    model = make_model("dedupe").fit(x, y)
    own = dedupe.Dedupe([dedupe.variables.String("name")], num_cores=1).classifier
    assert "C" in own.param_grid and own.scoring == "f1"  # the grid search UPT takes from dedupe
    assert model.fitted_.fill == 0.0 and (model.fitted_.scale == 1.0).all()  # unstandardized, as dedupe
    few = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])  # 10 labels: too few for dedupe's 5 folds
    small = make_model("dedupe").fit(x.iloc[few], y[few])
    assert small.predict_proba(x).shape == (len(y),)


def test_lightgbm_contributions_add_up_to_the_raw_score() -> None:
    x, y = toy()
    model = LightGBMMatcher().fit(x, y)
    contrib = model.explain(x).sum(axis=1).to_numpy()
    raw = model.fitted_.predict(x[["name_jw", "dob_exact"]].to_numpy(np.float32), raw_score=True)
    assert np.allclose(contrib, raw, atol=1e-6)


def test_one_class_is_refused_and_formats_are_checked() -> None:
    x, y = toy()
    with pytest.raises(NotReady, match="matches and non-matches"):
        LogisticMatcher().fit(x, np.zeros_like(y))
    with pytest.raises(NotReady, match="format"):
        load_model({"format_version": 99, "kind": "lightgbm"})


def test_bundle_scores_and_decides_with_its_thresholds() -> None:
    x, y = toy()
    bundle = Bundle(LightGBMMatcher().fit(x, y), Thresholds(merge=0.9, review=0.4))
    scored = bundle.score(x)
    p = scored["probability"].to_numpy()
    expected = np.where(p >= 0.9, "merge", np.where(p >= 0.4, "review", "no_match"))
    assert (scored["decision"].to_numpy() == expected).all()
    again = Bundle.from_dict(json.loads(json.dumps(bundle.to_dict())))
    assert np.allclose(again.score(x)["probability"], p)


def test_auto_picks_the_linear_model_with_few_labels_and_trees_with_many() -> None:
    assert auto_model_name(np.array([1] * 30 + [0] * 500)) == "logistic"
    assert auto_model_name(np.array([1] * 300 + [0] * 300)) == "logistic"
    assert auto_model_name(np.array([1] * 500 + [0] * 500)) == "lightgbm"


def test_ensemble_contributions_add_up_to_its_averaged_log_odds() -> None:
    from scipy.special import logit

    x, y = toy()
    model = make_model("ensemble").fit(x, y)
    contrib = model.explain(x.head(8)).sum(axis=1).to_numpy()
    raw = model._raw(model.fitted_, model_matrix(model, x.head(8)))
    assert np.allclose(contrib, logit(raw), atol=1e-6)


def model_matrix(model: object, x: pd.DataFrame) -> np.ndarray:
    from models.base import feature_matrix

    return feature_matrix(x, model.columns_)  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", ["logistic", "lightgbm"])
def test_one_labelled_match_still_ranks_pairs_the_right_way(name: str) -> None:
    """With a single match, its fold never sees a match and scores it like a non-match; Platt
    scaling on such out-of-fold scores once learned a negative slope and ranked every pair upside
    down (an active-learning session then asked 49 non-matches in 50 questions)."""
    frame, y = toy(300, seed=1)
    rows = np.concatenate([np.flatnonzero(y == 1)[:1], np.flatnonzero(y == 0)[:20]])
    model = make_model(name).fit(frame.iloc[rows], y[rows])
    assert model.calibrator_.method == "sigmoid" and model.calibrator_.params["a"] > 0
    p = model.predict_proba(frame)
    top = np.argsort(-p, kind="stable")[:20]
    assert y[top].mean() > 0.8


def test_platt_scaling_of_scores_that_separate_the_labels_stays_bounded() -> None:
    from models.classifiers import Calibrator

    # 36 matches scored 0.6-0.99 and 14 non-matches 0.01-0.3 out of fold: a perfect separation,
    # which an unpenalized sigmoid would turn into a step (1e-13 just below it, 1.0 just above)
    scores = np.r_[np.linspace(0.6, 0.99, 36), np.linspace(0.01, 0.3, 14)]
    labels = np.r_[np.ones(36, int), np.zeros(14, int)]
    calibrator = Calibrator("sigmoid").fit(scores, labels)
    # Platt's targets (37/38 for a match, 1/16 for a non-match) keep the slope finite: the pairs
    # nearest the gap keep a doubt, and the gap itself is no certainty either way
    assert 0 < calibrator.params["a"] < 5
    near = calibrator(np.array([0.3, 0.45, 0.6]))
    assert 0.05 < near[0] < near[1] < near[2] < 0.95
    assert near[1] == pytest.approx(0.5, abs=0.25)


def test_platt_scaling_never_reverses_the_order_of_scores() -> None:
    from models.classifiers import Calibrator

    scores = np.array([0.9, 0.8, 0.7, 0.2, 0.1])
    inverted = np.array([0, 0, 0, 1, 1])  # out-of-fold scores that fall as the labels rise
    calibrated = Calibrator("sigmoid").fit(scores, inverted)(np.array([0.1, 0.5, 0.9]))
    assert np.all(np.diff(calibrated) > 0)
    assert Calibrator("sigmoid").fit(scores, 1 - inverted).params["a"] > 0


def test_logistic_weights_keep_the_sign_of_their_evidence() -> None:
    """In this small sample a shared postal code happens to go with non-matches: unconstrained,
    the model learns that agreement counts against a match; signed, it cannot."""
    rng = np.random.default_rng(3)
    n = 60
    y = np.array([1] * 20 + [0] * 40)
    frame = pd.DataFrame(
        {
            "mention_a": np.arange(n),
            "mention_b": np.arange(n) + n,
            "first_jw": np.clip(0.6 + 0.3 * y + rng.normal(0, 0.08, n), 0, 1),
            "postal_eq": np.where(y == 1, rng.random(n) < 0.2, rng.random(n) < 0.6).astype(float),
            "dob_conflict": np.where(y == 1, rng.random(n) < 0.5, rng.random(n) < 0.2).astype(float),
        }
    )
    free = LogisticMatcher(signed=False).fit(frame, y)
    signed = LogisticMatcher().fit(frame, y)
    weights = dict(zip(signed.columns_, signed.fitted_.coef, strict=True))
    loose = dict(zip(free.columns_, free.fitted_.coef, strict=True))
    assert loose["postal_eq"] < 0 and loose["dob_conflict"] > 0  # the sample's accidents
    assert weights["postal_eq"] >= 0 and weights["dob_conflict"] <= 0 and weights["first_jw"] > 0


def test_unsigned_logistic_fit_is_scikit_learns() -> None:
    from sklearn.linear_model import LogisticRegression

    frame, y = toy(300, seed=4)
    model = LogisticMatcher(signed=False).fit(frame, y)
    z = model.fitted_.standardized(feature_matrix(frame, model.columns_))
    reference = LogisticRegression(C=1.0, max_iter=2000, tol=1e-10).fit(z, y)  # its default stops early
    assert np.allclose(model.fitted_.coef, reference.coef_[0], atol=1e-3)
    assert model.fitted_.intercept == pytest.approx(float(reference.intercept_[0]), abs=1e-3)


def test_a_missing_comparison_counts_neither_for_nor_against_a_match() -> None:
    """An absent email is not a different email: the logistic model fills it with the feature's
    mean, so it adds nothing to the log-odds, and the pair scores between full agreement and full
    disagreement on that field. (Filled with -1, below every similarity, absence scored lower than
    a plain disagreement.)"""
    rng = np.random.default_rng(5)
    n = 80
    y = np.array([1] * 30 + [0] * 50)
    email = np.where(y == 1, rng.random(n) < 0.8, rng.random(n) < 0.1).astype(float)
    email[rng.random(n) < 0.4] = np.nan
    frame = pd.DataFrame(
        {
            "mention_a": np.arange(n),
            "mention_b": np.arange(n) + n,
            "first_jw": np.clip(0.6 + 0.3 * y + rng.normal(0, 0.1, n), 0, 1),
            "email_exact": email,
        }
    )
    model = LogisticMatcher().fit(frame, y)
    probe = pd.DataFrame(
        {
            "mention_a": [0, 1, 2],
            "mention_b": [3, 4, 5],
            "first_jw": [0.8] * 3,
            "email_exact": [1.0, 0.0, np.nan],
        }
    )
    agree, disagree, missing = model.fitted_.predict(feature_matrix(probe, model.columns_))
    assert disagree < missing < agree
    present = email[~np.isnan(email)]
    column = model.columns_.index("email_exact")
    assert model.fitted_.fill[column] == pytest.approx(present.mean())
    z = model.fitted_.standardized(feature_matrix(probe, model.columns_))
    assert z[2, column] == pytest.approx(0.0, abs=1e-9)  # standardized: exactly the training mean
    again = load_model(json.loads(json.dumps(model.to_dict())))
    assert np.allclose(again.predict_proba(probe), model.predict_proba(probe))


def test_a_column_the_labels_barely_saw_cannot_outweigh_the_rest() -> None:
    """One labelled pair has a city, a little unlike the neutral fill of the others: the column's
    scale is tiny, and a pair whose cities agree fully would count hundreds of standard
    deviations. Taken at the edge of the range the labels showed, it moves the log-odds no more
    than it did in training; and the range survives saving and loading."""
    rng = np.random.default_rng(8)
    n = 50
    y = np.array([1] * 20 + [0] * 30)
    city = np.full(n, np.nan)
    city[[0, 1]] = [0.46, 0.44]  # two labelled pairs with both cities, nearly alike
    frame = pd.DataFrame(
        {
            "mention_a": np.arange(n),
            "mention_b": np.arange(n) + n,
            "first_jw": np.clip(0.6 + 0.3 * y + rng.normal(0, 0.1, n), 0, 1),
            "dob_conflict": np.where(y == 1, 0.0, rng.random(n) < 0.6).astype(float),
            "city_jw": city,
        }
    )
    model = LogisticMatcher().fit(frame, y)
    probe = frame.iloc[[25]].assign(city_jw=1.0, dob_conflict=1.0)  # a non-match's look, one city
    contribution = model.explain(probe)["city_jw"].iloc[0]
    seen = model.explain(frame)["city_jw"].abs().max()
    assert abs(contribution) <= seen + 1e-9
    again = load_model(json.loads(json.dumps(model.to_dict())))
    assert np.allclose(again.predict_proba(probe), model.predict_proba(probe))
    # without the range, the same weight on the same value would have counted far more
    j = model.columns_.index("city_jw")
    fitted = model.fitted_
    assert fitted.coef[j] > 0
    assert fitted.coef[j] * (1.0 - fitted.mean[j]) / fitted.scale[j] > 10 * seen


def test_the_labels_pull_from_the_prior_as_far_as_held_out_labels_ask() -> None:
    from scipy.special import expit

    from models.classifiers import PRIOR_PULLS, prior_pull

    rng = np.random.default_rng(0)
    noise = rng.normal(size=(60, 3))
    # labels drawn from the prior's own probabilities, features that are noise: keep to the prior
    prior = rng.normal(0, 2, 60)
    drawn = (rng.random(60) < expit(prior)).astype(int)
    assert prior_pull(noise, drawn, [0, 0, 0], prior) <= 0.1
    # a prior that knows nothing and a feature that decides: let the labels speak
    y = np.array([1, 0] * 30)
    telling = noise.copy()
    telling[:, 0] = (2 * y - 1) + rng.normal(0, 0.5, 60)
    assert prior_pull(telling, y, [0, 0, 0], np.zeros(60)) == PRIOR_PULLS[-1]
    # a single label of a class cannot be cross-validated
    assert prior_pull(noise[:31], np.r_[1, np.zeros(30, int)], [0, 0, 0], np.zeros(31)) == 1.0
