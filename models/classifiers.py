"""Match classifiers: logistic regression (`auto`'s choice below 500 labels of a class), LightGBM
and dedupe's classifier, calibrated, saved as JSON; the first two correct an unsupervised prior
of the candidate pool (`models.fellegi_sunter`).

One calibrator maps the classifier's raw score to a probability; it is fitted on out-of-fold
scores (cross-validation), isotonic when each class has at least 100 labels, else Platt
(sigmoid, on Platt's smoothed targets): with 50 labels isotonic overfits. The learned state is plain data (LightGBM's text
model, coefficients, calibration parameters), never a pickle, so a saved model is a contract
(`to_dict` / `from_dict`, stamped with a format version).
Explanations: LightGBM `pred_contrib` (SHAP values in log-odds) or coefficient x standardized value.
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from typing import Any

import numpy as np
import pandas as pd

from models.base import feature_matrix
from models.fellegi_sunter import FellegiSunter
from profiles.errors import ConfigError, NotReady, ValidationFailed

# 2: a logistic regression or LightGBM model may carry its pool prior (`models.fellegi_sunter`),
# which a reader of format 1 would drop without a word and score differently; format 1 models
# read as before.
FORMAT_VERSION = 2
READABLE_FORMATS = (1, 2)
ISOTONIC_MIN_PER_CLASS = 100
PRIOR_COLUMN = "pool_mixture"  # the unsupervised prior's log-odds in an explanation
PREDICT_BLOCK = 16_384  # rows per block in the linear model's predict


def _folds(labels: np.ndarray) -> int:
    return max(2, min(5, int(min((labels == 1).sum(), (labels == 0).sum()))))


def label_folds(labels: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """The (train, test) rows of the cross-validation over labels: stratified, shuffled with a
    fixed seed, up to five folds. A class with a single label cannot be in every fold; the
    callers handle a fold without both classes."""
    from sklearn.model_selection import StratifiedKFold

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "The least populated class", UserWarning)
        split = StratifiedKFold(_folds(labels), shuffle=True, random_state=0)
        return list(split.split(np.zeros((len(labels), 1)), labels))


class Calibrator:
    """Raw score -> probability: Platt (a, b on the logit) or isotonic (interpolated steps)."""

    def __init__(self, method: str = "sigmoid", params: dict[str, Any] | None = None) -> None:
        self.method = method
        self.params = params or {}

    def fit(self, scores: np.ndarray, labels: np.ndarray) -> Calibrator:
        if self.method == "isotonic":
            from sklearn.isotonic import IsotonicRegression

            iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(scores, labels)
            self.params = {"x": iso.X_thresholds_.tolist(), "y": iso.y_thresholds_.tolist()}
        else:
            logits = _logit(scores)
            a, b = _platt(logits, np.asarray(labels))
            if a <= 0:
                # Out-of-fold scores that do not rise with the labels (one or two matches, each
                # scored by a fold that never saw a match) would turn the ranking upside down:
                # keep the model's order and only shift it to the labels' base rate.
                a = 1.0
                b = float(_logit(np.array([np.mean(labels)]))[0] - np.mean(logits))
            self.params = {"a": a, "b": b}
        return self

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        if self.method == "isotonic":
            return np.interp(scores, self.params["x"], self.params["y"])
        from scipy.special import expit

        return np.asarray(expit(self.params["a"] * _logit(scores) + self.params["b"]))

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "params": self.params}


def _platt(logits: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Platt's sigmoid p = expit(a * logit + b), fitted to his smoothed targets: (N+ + 1) / (N+ + 2)
    for a match, 1 / (N- + 2) for a non-match, not 1 and 0. Out-of-fold scores that separate a
    few dozen labels perfectly would otherwise give an unbounded slope, and one labelled sample
    would make the calibrated probabilities 1e-13 and 1.0 (Platt 1999, section 2.2)."""
    from scipy.optimize import minimize
    from scipy.special import expit

    positives = float((labels == 1).sum())
    negatives = float(len(labels) - positives)
    target = np.where(labels == 1, (positives + 1.0) / (positives + 2.0), 1.0 / (negatives + 2.0))

    def loss(v: np.ndarray) -> tuple[float, np.ndarray]:
        z = v[0] * logits + v[1]
        # cross-entropy against soft targets: log(1 + e^z) - t z
        value = float((np.logaddexp(0.0, z) - target * z).sum())
        g = expit(z) - target
        return value, np.array([float(g @ logits), float(g.sum())])

    result = minimize(loss, np.array([1.0, 0.0]), jac=True, method="L-BFGS-B")
    return float(result.x[0]), float(result.x[1])


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


class Matcher(ABC):
    """Shared fit/predict: a classifier plus a calibrator fitted on out-of-fold scores."""

    name = "base"
    # an unsupervised model of the candidate pool whose log-odds the classifier corrects (an
    # offset: `models.fellegi_sunter`); None learns from the labels alone
    prior: FellegiSunter | None = None

    @abstractmethod
    def _fit_raw(self, x: np.ndarray, y: np.ndarray) -> Any: ...

    @abstractmethod
    def _raw(self, fitted: Any, x: np.ndarray) -> np.ndarray: ...

    def fit(self, features: pd.DataFrame, labels: np.ndarray) -> Matcher:
        y = np.asarray(labels, dtype=np.int64)
        if len(np.unique(y)) < 2:
            raise NotReady("training needs labelled matches and non-matches: label more pairs (`upt label`)")
        self.columns_ = [c for c in features.columns if c not in ("mention_a", "mention_b")]
        x = self.design(features)
        self.fitted_ = self._fit_raw(x, y)
        oof = np.zeros(len(y))
        for train, test in label_folds(y):
            if len(np.unique(y[train])) < 2:
                oof[test] = y[train].mean()
                continue
            oof[test] = self._raw(self._fit_raw(x[train], y[train]), x[test])
        method = "isotonic" if min((y == 1).sum(), (y == 0).sum()) >= ISOTONIC_MIN_PER_CLASS else "sigmoid"
        self.calibrator_ = Calibrator(method).fit(oof, y)
        self.oof_proba_ = self.calibrator_(oof)
        return self

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        return self.predict_design(self.design(features))

    def predict_design(self, x: np.ndarray) -> np.ndarray:
        """`predict_proba` of a design matrix (`design`), which depends only on the columns and
        the prior: the labeller builds its pool's once and scores it after each round's fit."""
        return np.asarray(self.calibrator_(self._raw(self.fitted_, x)), dtype=np.float64)

    def design(self, features: pd.DataFrame) -> np.ndarray:
        """The matrix the classifier reads: the comparison vectors in training order, and the
        prior's log-odds as a last column when there is a prior."""
        x = feature_matrix(features, self.columns_)
        if self.prior is None:
            return x
        return np.column_stack([x, self.prior.log_odds(features).astype(np.float32)])

    def _split(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(comparison vectors, the prior's log-odds: zeros without a prior) of a design matrix."""
        if self.prior is None:
            return x, np.zeros(len(x))
        return x[:, :-1], x[:, -1].astype(np.float64)

    def _prior_dict(self) -> dict[str, Any]:
        return {"prior": self.prior.to_dict()} if self.prior is not None else {}

    @abstractmethod
    def explain(self, features: pd.DataFrame) -> pd.DataFrame: ...

    @abstractmethod
    def importance(self) -> dict[str, float]: ...

    @abstractmethod
    def to_dict(self) -> dict[str, Any]: ...


class LightGBMMatcher(Matcher):
    name = "lightgbm"

    def __init__(
        self,
        n_estimators: int = 200,
        learning_rate: float = 0.05,
        num_leaves: int = 15,
        min_child_samples: int = 3,
        seed: int = 0,
        prior: FellegiSunter | None = None,
    ) -> None:
        self.prior = prior
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.seed = seed

    def _fit_raw(self, x: np.ndarray, y: np.ndarray) -> Any:
        from lightgbm import LGBMClassifier

        x, offset = self._split(x)
        model = LGBMClassifier(
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            num_leaves=self.num_leaves,
            min_child_samples=self.min_child_samples,
            min_data_in_bin=1,
            random_state=self.seed,
            verbose=-1,
            n_jobs=1,
        ).fit(x, y, init_score=offset if self.prior is not None else None)
        return model.booster_

    def _raw(self, fitted: Any, x: np.ndarray) -> np.ndarray:
        from scipy.special import expit

        x, offset = self._split(x)
        if self.prior is None:
            return np.asarray(fitted.predict(x), dtype=np.float64)
        # trees fitted from the prior's log-odds (`init_score`) predict only the correction
        return np.asarray(expit(fitted.predict(x, raw_score=True) + offset), dtype=np.float64)

    def explain(self, features: pd.DataFrame) -> pd.DataFrame:
        contrib = self.fitted_.predict(feature_matrix(features, self.columns_), pred_contrib=True)
        out = pd.DataFrame(contrib, columns=[*self.columns_, "bias"])
        if self.prior is not None:
            out.insert(len(self.columns_), PRIOR_COLUMN, self.prior.log_odds(features))
        return out

    def importance(self) -> dict[str, float]:
        gains = self.fitted_.feature_importance(importance_type="gain")
        return dict(zip(self.columns_, (float(g) for g in gains), strict=True))

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "kind": self.name,
            "columns": self.columns_,
            "booster": self.fitted_.model_to_string(),
            "calibrator": self.calibrator_.to_dict(),
            **self._prior_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LightGBMMatcher:
        import lightgbm

        model = cls(prior=_prior_of(data))
        model.columns_ = list(data["columns"])
        model.fitted_ = lightgbm.Booster(model_str=data["booster"])
        model.calibrator_ = Calibrator(data["calibrator"]["method"], data["calibrator"]["params"])
        return model


class _Linear:
    """A fitted standardized logistic regression as plain arrays. `fill` stands in for a missing
    value: one per column, or one for all (models saved before per-column fills). `low` and
    `high` are the range each column took in training: a value beyond it is taken at its edge
    (models saved before the ranges take values as they come)."""

    def __init__(
        self,
        fill: float | np.ndarray,
        mean: np.ndarray,
        scale: np.ndarray,
        coef: np.ndarray,
        intercept: float,
        low: np.ndarray | None = None,
        high: np.ndarray | None = None,
        c: float | None = None,
    ) -> None:
        self.fill, self.mean, self.scale, self.coef, self.intercept = fill, mean, scale, coef, intercept
        self.low, self.high = low, high
        self.c = c  # the inverse L2 strength it was fitted with (None: not recorded)

    def _filled(self, x: np.ndarray) -> np.ndarray:
        filled = np.where(np.isnan(x), self.fill, x).astype(np.float64, copy=False)
        if self.low is not None and self.high is not None:
            filled = np.clip(filled, self.low, self.high)
        return filled

    def standardized(self, x: np.ndarray) -> np.ndarray:
        return (self._filled(x) - self.mean) / self.scale

    def predict(self, x: np.ndarray, log_odds: np.ndarray | None = None) -> np.ndarray:
        """The same as expit(standardized(x) @ coef + intercept), with the standardization folded
        into the weights: one pass over a million-pair matrix instead of three temporaries."""
        from scipy.special import expit

        weights = self.coef / self.scale
        offset = self.intercept - float((self.mean / self.scale) @ self.coef)
        out = np.empty(len(x), dtype=np.float64)
        # in blocks that stay in cache: a filled float64 copy of 1.1M pairs at once is half a GB
        for start in range(0, len(x), PREDICT_BLOCK):
            out[start : start + PREDICT_BLOCK] = self._filled(x[start : start + PREDICT_BLOCK]) @ weights
        if log_odds is not None:
            out += log_odds
        return np.asarray(expit(out + offset))

    def to_dict(self) -> dict[str, Any]:
        return {
            "fill": self.fill.tolist() if isinstance(self.fill, np.ndarray) else self.fill,
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "coef": self.coef.tolist(),
            "intercept": self.intercept,
            **(
                {"low": self.low.tolist(), "high": self.high.tolist()}
                if self.low is not None and self.high is not None
                else {}
            ),
            **({"c": self.c} if self.c is not None else {}),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> _Linear:
        return cls(
            np.array(data["fill"]) if isinstance(data["fill"], list) else data["fill"],
            np.array(data["mean"]),
            np.array(data["scale"]),
            np.array(data["coef"]),
            data["intercept"],
            np.array(data["low"]) if "low" in data else None,
            np.array(data["high"]) if "high" in data else None,
            data.get("c"),
        )


def _fit_logistic(
    z: np.ndarray, y: np.ndarray, c: float, signs: list[int], offset: np.ndarray | None = None
) -> tuple[np.ndarray, float]:
    """L2-regularized logistic regression (scikit-learn's objective: ||w||^2 / 2 + C * log-loss)
    whose weights keep the given signs (+1: >= 0, -1: <= 0, 0: free), by L-BFGS-B with bounds.

    Measured with the same 50 oracle labels, against the unconstrained fit: Febrl3 and Febrl4
    unchanged (0.9982 and 0.9988 pairwise F1); generated travel sets of 250, 2,000 and 3,000
    people and 100,000 mentions 0.702, 0.383, 0.647, 0.375 against 0.646, 0.432, 0.577, 0.372."""
    from scipy.optimize import minimize
    from scipy.special import expit

    target = np.where(y == 1, 1.0, -1.0)
    d = z.shape[1]
    base = np.zeros(len(y)) if offset is None else offset

    def objective(v: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = v[:d], v[d]
        margin = target * (base + z @ w + b)
        loss = 0.5 * float(w @ w) + c * float(np.logaddexp(0.0, -margin).sum())
        g = -c * target * expit(-margin)
        return loss, np.concatenate([w + z.T @ g, [g.sum()]])

    bounds = [(0.0, None) if s > 0 else (None, 0.0) if s < 0 else (None, None) for s in signs]
    result = minimize(
        objective,
        np.zeros(d + 1),
        jac=True,
        method="L-BFGS-B",
        bounds=[*bounds, (None, None)],
        options={"maxiter": 2000},
    )
    return np.asarray(result.x[:d]), float(result.x[d])


# How far the labels may pull the weights from the pool's prior: scikit-learn's C (the inverse of
# the L2 strength) tried at each of these.
PRIOR_PULLS = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)


def prior_pull(z: np.ndarray, y: np.ndarray, signs: list[int], offset: np.ndarray) -> float:
    """The C of `PRIOR_PULLS` whose fits, starting from the prior's log-odds (`offset`), predict
    held-out labels best (cross-validated log-loss over `label_folds`, as `Matcher.fit`'s; the
    strongest pull towards the prior wins a tie): how much a few dozen labels are allowed to
    correct the pool's opinion is itself read off the labels. 1.0 with fewer than two labels of
    a class."""
    from scipy.special import expit

    if int(min((y == 1).sum(), (y == 0).sum())) < 2:
        return 1.0
    folds = label_folds(y)
    best, best_loss = 1.0, np.inf
    for c in PRIOR_PULLS:
        loss = 0.0
        for train, test in folds:
            w, b = _fit_logistic(z[train], y[train], c, signs, offset[train])
            p = np.clip(expit(offset[test] + z[test] @ w + b), 1e-9, 1 - 1e-9)
            loss -= float(np.sum(np.where(y[test] == 1, np.log(p), np.log1p(-p))))
        if loss < best_loss - 1e-9:
            best, best_loss = c, loss
    return best


def neutral_fill(x: np.ndarray) -> np.ndarray:
    """Per column, the mean of its present values (0 where a column has none)."""
    present = ~np.isnan(x)
    counts = present.sum(axis=0)
    totals = np.where(present, x, 0.0).sum(axis=0)
    return np.where(counts > 0, totals / np.maximum(counts, 1), 0.0)


class LogisticMatcher(Matcher):
    """Signed, standardized logistic regression (the default below 500 labels of a class).

    A missing comparison (no email on one side) is filled with the feature's mean over the
    training pairs that have it, so that it adds nothing to the log-odds: missing is neither
    agreement nor disagreement, as in a Fellegi-Sunter model, and the missingness indicators stay
    free to learn what absence itself says. Filling with -1 instead, below every similarity, made
    an absent email count as more against a match than two different emails, which a few dozen
    labels could not undo: on eight 2,000-person travel sets, 50 labels each, pairwise F1 0.584
    -> 0.677 (every set equal or better), on 100,000 travel mentions 0.412 -> 0.613.

    With a `prior` (an unsupervised model of the candidate pool, `models.fellegi_sunter`; `upt
    train` and the labeller give it one), the log-odds start from the prior's and the weights
    learn only the correction (an offset in the regression): the L2 penalty then pulls towards
    the pool's opinion instead of towards "no idea". On eight generated travel sets with 50
    labels and five labelling seeds each, pairwise F1 0.902 -> 0.919 with the prior in training
    alone (worst seed 0.726 -> 0.793), 0.927 (worst 0.884) when the labeller asks its questions of
    the same model (BENCHMARKS.md). How far the labels may pull from the prior (C) is chosen by
    cross-validated log-loss over them (`prior_pull`), and the missingness indicators are left
    to the prior (a field written on one side only is neutral).
    """

    name = "logistic"

    def __init__(
        self, c: float | None = None, signed: bool = True, prior: FellegiSunter | None = None
    ) -> None:
        # None: chosen by cross-validation with a prior (`prior_pull`), 1.0 without one
        self.c = c
        self.signed = signed
        self.prior = prior

    def _fit_raw(self, x: np.ndarray, y: np.ndarray) -> Any:
        from features.comparisons import MISSINGNESS, feature_sign

        x, offset = self._split(x)
        fill = neutral_fill(x)
        filled = np.where(np.isnan(x), fill, x)
        if self.prior is not None:
            # With the pool's prior a field written on one side only is what the prior says it
            # is, neither for nor against a match, and the labels do not correct that: 50 pairs
            # chosen for being hard are no sample of what absence says. One labelling seed's
            # labels held nameless strangers, and its model put -2.2 log-odds on every pair with
            # a nameless side, an email naming the other mention or not (one travel set's
            # pairwise F1 0.887 on that seed, 0.93 on the other four). A column held constant
            # gets no weight.
            filled[:, [j for j, name in enumerate(self.columns_) if name in MISSINGNESS]] = 0.0
        mean, scale = filled.mean(axis=0), filled.std(axis=0)
        scale[scale == 0] = 1.0
        signs = [feature_sign(c) if self.signed else 0 for c in self.columns_]
        z = (filled - mean) / scale
        c = self.c if self.c is not None else 1.0 if self.prior is None else prior_pull(z, y, signs, offset)
        coef, intercept = _fit_logistic(z, y, c, signs, offset)
        # No extrapolation past what the labels showed: a column nearly constant in training (one
        # labelled pair with a city, say) has a tiny scale, and a value far from it would count
        # hundreds of standard deviations (one 50-label model gave a shared city +14 log-odds and
        # merged namesakes with different birth dates at 0.99).
        return _Linear(fill, mean, scale, coef, intercept, filled.min(axis=0), filled.max(axis=0), c)

    def _raw(self, fitted: Any, x: np.ndarray) -> np.ndarray:
        x, offset = self._split(x)
        return np.asarray(fitted.predict(x, offset), dtype=np.float64)

    def explain(self, features: pd.DataFrame) -> pd.DataFrame:
        z = self.fitted_.standardized(feature_matrix(features, self.columns_))
        out = pd.DataFrame(z * self.fitted_.coef, columns=self.columns_)
        if self.prior is not None:
            out[PRIOR_COLUMN] = self.prior.log_odds(features)
        out["bias"] = self.fitted_.intercept
        return out

    def importance(self) -> dict[str, float]:
        return {c: float(abs(w)) for c, w in zip(self.columns_, self.fitted_.coef, strict=True)}

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "kind": self.name,
            "columns": self.columns_,
            "linear": self.fitted_.to_dict(),
            "calibrator": self.calibrator_.to_dict(),
            **self._prior_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LogisticMatcher:
        model = cls(prior=_prior_of(data))
        model.columns_ = list(data["columns"])
        model.fitted_ = _Linear.from_dict(data["linear"])
        model.calibrator_ = Calibrator(data["calibrator"]["method"], data["calibrator"]["params"])
        return model


class DedupeMatcher(LogisticMatcher):
    """dedupe's own classifier (a logistic regression whose C is chosen by cross-validated F1,
    taken from `dedupe.Dedupe` itself, so it follows dedupe's release) fitted on UPT's comparison
    vectors. Like dedupe it neither standardizes nor imputes beyond 0 for a missing distance
    (UPT's vectors carry their own missingness indicators). Fitting needs the optional extra
    `upt[dedupe]`; a fitted model is plain coefficients and loads without it."""

    name = "dedupe"
    FILL = 0.0

    def _fit_raw(self, x: np.ndarray, y: np.ndarray) -> Any:
        from sklearn.base import clone

        filled = np.where(np.isnan(x), self.FILL, x)
        minority = int(min((y == 1).sum(), (y == 0).sum()))
        search = clone(_dedupe_classifier())
        if minority >= 2:
            # dedupe's 5 folds need 5 labels of each class; with fewer, as many folds as there are
            search.set_params(cv=min(5, minority), n_jobs=1)
            lr = search.fit(filled, y).best_estimator_
        else:
            lr = search.estimator.fit(filled, y)
        width = x.shape[1]
        return _Linear(self.FILL, np.zeros(width), np.ones(width), lr.coef_[0], float(lr.intercept_[0]))


def _dedupe_classifier() -> Any:
    try:
        from dedupe import Dedupe
        from dedupe.variables import String
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise ConfigError("the dedupe model needs dedupe: pip install 'upt[dedupe]'") from exc
    return Dedupe([String("name")], num_cores=1).classifier


class EnsembleMatcher(Matcher):
    """LightGBM and logistic regression, averaged in log-odds, then calibrated.

    With tens of labels the two fail differently: the linear model generalizes from few examples
    but cannot weigh combinations (a shared surname means little without a shared contact), the
    trees can but learn coarse steps from 50 labels; their average hedges between the two."""

    name = "ensemble"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def _members(self) -> tuple[LightGBMMatcher, LogisticMatcher]:
        trees, linear = LightGBMMatcher(seed=self.seed), LogisticMatcher()
        trees.columns_ = linear.columns_ = self.columns_
        return trees, linear

    def _fit_raw(self, x: np.ndarray, y: np.ndarray) -> Any:
        trees, linear = self._members()
        return trees._fit_raw(x, y), linear._fit_raw(x, y)

    def _raw(self, fitted: Any, x: np.ndarray) -> np.ndarray:
        from scipy.special import expit

        booster, line = fitted
        return np.asarray(expit((_logit(booster.predict(x)) + _logit(line.predict(x))) / 2))

    def _fitted_members(self) -> tuple[LightGBMMatcher, LogisticMatcher]:
        trees, linear = self._members()
        trees.fitted_, linear.fitted_ = self.fitted_
        return trees, linear

    def explain(self, features: pd.DataFrame) -> pd.DataFrame:
        """Half of each member's log-odds contributions: they add up to the averaged log-odds."""
        trees, linear = self._fitted_members()
        return (trees.explain(features) + linear.explain(features)) / 2

    def importance(self) -> dict[str, float]:
        trees, linear = self._fitted_members()
        parts = [trees.importance(), linear.importance()]
        totals = [sum(p.values()) or 1.0 for p in parts]
        return {c: sum(p[c] / t for p, t in zip(parts, totals, strict=True)) / 2 for c in self.columns_}

    def to_dict(self) -> dict[str, Any]:
        booster, line = self.fitted_
        return {
            "format_version": FORMAT_VERSION,
            "kind": self.name,
            "columns": self.columns_,
            "booster": booster.model_to_string(),
            "linear": line.to_dict(),
            "calibrator": self.calibrator_.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EnsembleMatcher:
        import lightgbm

        model = cls()
        model.columns_ = list(data["columns"])
        model.fitted_ = (lightgbm.Booster(model_str=data["booster"]), _Linear.from_dict(data["linear"]))
        model.calibrator_ = Calibrator(data["calibrator"]["method"], data["calibrator"]["params"])
        return model


MODELS: dict[str, type[LightGBMMatcher] | type[LogisticMatcher] | type[EnsembleMatcher]] = {
    "lightgbm": LightGBMMatcher,
    "logistic": LogisticMatcher,
    "ensemble": EnsembleMatcher,
    "dedupe": DedupeMatcher,
}


# `auto`, the default of `upt train`: logistic regression while either class has fewer labels than
# this, LightGBM from there. With 50 oracle labels the linear model was ahead end to end on
# Febrl3, Febrl4 and every generated travel set tried (trees need more examples than 43 features
# x 50 labels give them); with the pool's prior it stayed ahead with more: on the "households 0.6"
# travel set, 200 labels (100 matches) gave pairwise F1 0.911 with it against 0.888 with LightGBM
# (0.181 with LightGBM without the prior), and 500 labels 0.909 against 0.907 there and 0.919
# against 0.904 on "typos 0.16", where 50 labels gave 0.912 and 0.928: switching model families
# at 100 labels of a class made more labels worse (README, "Labelling and training";
# BENCHMARKS.md, learning curves).
AUTO_TREES_MIN_PER_CLASS = 500


def auto_model_name(labels: np.ndarray) -> str:
    """The model `auto` picks for these labels: logistic with few, LightGBM with many."""
    y = np.asarray(labels)
    fewest = int(min((y == 1).sum(), (y == 0).sum()))
    return "lightgbm" if fewest >= AUTO_TREES_MIN_PER_CLASS else "logistic"


def _prior_of(data: dict[str, Any]) -> FellegiSunter | None:
    return FellegiSunter.from_dict(data["prior"]) if "prior" in data else None


# The models that take the pool's prior: dedupe's classifier is dedupe's own (it knows no offset),
# and the ensemble's members would count it twice.
TAKE_PRIOR = frozenset({"logistic", "lightgbm"})


def make_model(name: str, prior: FellegiSunter | None = None) -> Matcher:
    """A new, unfitted model by name; `prior` (an unsupervised model of the candidate pool) is
    given to the logistic regression and LightGBM (`TAKE_PRIOR`), whose labels then correct it,
    and not to the others."""
    if name not in MODELS:
        raise ValidationFailed("model", f"unknown model {name!r}; choose from {sorted(MODELS)}")
    model = MODELS[name]()
    if name in TAKE_PRIOR:
        model.prior = prior
    return model


def load_model(data: dict[str, Any]) -> Matcher:
    """A model from its `to_dict` form, refusing formats this version cannot read."""
    if data.get("format_version") not in READABLE_FORMATS:
        raise NotReady(
            f"model format {data.get('format_version')} is not one of {READABLE_FORMATS}; retrain or upgrade UPT"
        )
    return MODELS[data["kind"]].from_dict(data)
