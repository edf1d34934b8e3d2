"""Which pairs to ask about next: a seed round, uncertainty sampling, query-by-committee.

The seed round spreads its questions over the range of an unsupervised similarity score and
covers every blocker, so the first model sees clear matches, clear non-matches and the middle.
Later rounds ask where the current model is least sure (uncertainty) or where a committee of
models trained on bootstrap samples disagrees most (query-by-committee), skipping questions that
are near-duplicates of ones already chosen in the round (diversity).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Protocol

import numpy as np
import pandas as pd

from features.blocking import Blocker
from features.comparisons import MISSINGNESS
from features.pairs import mix64
from models.base import feature_matrix
from models.classifiers import LightGBMMatcher, Matcher, auto_model_name, make_model
from models.fellegi_sunter import FellegiSunter
from profiles.errors import ConfigError, ValidationFailed

# Similarities that mean "same person" when high, averaged into an unsupervised seed score.
SEED_SCORE_COLUMNS = (
    "first_jw",
    "last_jw",
    "full_token_set",
    "dob_exact",
    "email_exact",
    "phone_suffix_eq",
    "loyalty_eq",
    "document_eq",
    "postal_eq",
    "street_token_set",
    "embedding_cosine",
)


def seed_score(features: pd.DataFrame) -> np.ndarray:
    columns = [c for c in SEED_SCORE_COLUMNS if c in features]
    values = features[columns].to_numpy(np.float64)
    present = ~np.isnan(values)
    totals = np.where(present, values, 0.0).sum(axis=1)
    return np.where(present.any(axis=1), totals / np.maximum(present.sum(axis=1), 1), 0.0)


@dataclass
class Pool:
    """The candidate pairs to choose from, their features and what is labelled so far."""

    features: pd.DataFrame
    blockers: np.ndarray
    labelled: dict[int, int]  # pool row -> 1 match / 0 non-match
    frame: pd.DataFrame | None = None  # the mentions, indexed by id (for learners that read records)
    # one pseudo-random number per row from the pair's content (`PairFeatures.draws`): random
    # picks take the smallest after salting, so they do not depend on row order or row count
    draws: np.ndarray | None = None
    _trained: tuple[tuple[tuple[int, int], ...], Matcher, np.ndarray] | None = field(
        default=None, init=False, repr=False
    )
    _design: tuple[tuple[str, ...], np.ndarray] | None = field(default=None, init=False, repr=False)

    def pick(self, rows: np.ndarray, n: int, rng: np.random.Generator) -> list[int]:
        """`n` of `rows` at random: the smallest draws salted by `rng` (the labelling seed)."""
        draws = self.draws if self.draws is not None else np.arange(len(self.features), dtype=np.uint64)
        salt = np.uint64(int(rng.integers(0, 2**63)))
        salted = mix64(draws[rows] ^ salt)
        return [int(rows[i]) for i in np.argsort(salted, kind="stable")[:n]]

    def unlabelled(self, asked: set[int]) -> np.ndarray:
        rows = np.arange(len(self.features))
        return rows[~np.isin(rows, np.fromiter(asked, dtype=np.int64))] if asked else rows

    @cached_property
    def prior(self) -> FellegiSunter:
        """The unsupervised model of these candidate pairs that `upt train` fits on the same pool
        (`models.fellegi_sunter`): questions are asked of the model that will be trained."""
        return FellegiSunter.fit(self.features)

    def training_set(self) -> tuple[pd.DataFrame, np.ndarray]:
        rows = np.fromiter(self.labelled, dtype=np.int64)
        return self.features.iloc[rows], np.fromiter(self.labelled.values(), dtype=np.int64)

    def trained(self) -> tuple[Matcher, np.ndarray]:
        """The model `upt train` would fit on the labels so far (`auto`, with the pool's prior)
        and its probability for every row of the pool, computed once per state of the labels:
        the estimate after a round and the next round's choice of questions ask for the same fit
        and the same scores, and every round reads the same design matrix of the pool (`upt label
        --budget 50` on 100,000 travel mentions: 31.8 -> 20.3 s, the same questions). The key is
        the labels in the order given, as the fit's folds depend on it."""
        key = tuple(self.labelled.items())
        if self._trained is None or self._trained[0] != key:
            x, y = self.training_set()
            model = make_model(auto_model_name(y), self.prior).fit(x, y)
            if self._design is None or self._design[0] != tuple(model.columns_):
                # the pool's comparison vectors and its prior's log-odds, the same every round
                self._design = (tuple(model.columns_), model.design(self.features))
            self._trained = (key, model, model.predict_design(self._design[1]))
        return self._trained[1], self._trained[2]


# A kind of pair that lacks a field on one side (a web session has no name) and is this common in
# the pool, but not the norm, gets a question among its likeliest matches in the seed round.
KIND_SHARE = (0.01, 0.5)
KIND_TOP = 0.1  # "likeliest": the top tenth of the kind by seed score


def _kinds_likeliest(pool: Pool, free: np.ndarray, scores: np.ndarray, rng: np.random.Generator) -> list[int]:
    """One pair of each kind (`KIND_SHARE`) from the likeliest of its kind. Without it a labelling
    seed could ask about two sessions that were strangers and none that was not, and its model
    learned that a missing name means no match: on a 20,000-mention travel set it scored every
    session's true pairs below 0.1 (pairwise F1 0.789 where the other four seeds gave 0.87-0.89)."""
    picks: list[int] = []
    for column in sorted(c for c in pool.features.columns if c in MISSINGNESS):
        flagged = pool.features[column].to_numpy()[free] == 1
        if not KIND_SHARE[0] <= flagged.mean() <= KIND_SHARE[1]:
            continue
        top = scores[flagged] >= np.quantile(scores[flagged], 1 - KIND_TOP)
        candidates = free[flagged][top]
        if not set(candidates.tolist()).intersection(picks):  # one question may serve two kinds
            picks.extend(pool.pick(candidates, 1, rng))
    return picks


def seed_round(pool: Pool, n: int, asked: set[int], rng: np.random.Generator) -> list[int]:
    """`n` pairs: one among the likeliest of each kind of pair that lacks a field on one side
    (`_kinds_likeliest`), the rest spread over seed-score quantiles."""
    free = pool.unlabelled(asked)
    if len(free) == 0:
        return []
    scores = seed_score(pool.features.iloc[free])
    order = free[np.argsort(scores, kind="stable")]
    picks: list[int] = _kinds_likeliest(pool, free, scores, rng)[: max(n - 1, 0)]
    for chunk in np.array_split(order, min(n, len(order))):
        if len(chunk):
            picks.extend(pool.pick(chunk, 1, rng))
    for blocker in Blocker:
        if len(picks) >= n + len(Blocker):
            break
        has = free[(pool.blockers[free] & int(blocker)) != 0]
        if len(has) and not np.any((pool.blockers[picks] & int(blocker)) != 0):
            picks.extend(pool.pick(has, 1, rng))
    return list(dict.fromkeys(picks))[: max(n, 1)]


def _diverse(pool: Pool, ranked: np.ndarray, n: int) -> list[int]:
    """The first `n` of `ranked` skipping near-duplicates of those already taken."""
    x = np.nan_to_num(
        feature_matrix(pool.features.iloc[ranked[: n * 10]], list(pool.features.columns[2:])), nan=-1.0
    )
    taken: list[int] = []
    for i in range(min(len(ranked), n * 10)):
        if len(taken) >= n:
            break
        if all(np.abs(x[i] - x[j]).max() > 0.05 for j in taken):
            taken.append(i)
    chosen = [int(ranked[i]) for i in taken]
    for row in ranked:  # too few distinct ones: fill up in rank order
        if len(chosen) >= n:
            break
        if int(row) not in chosen:
            chosen.append(int(row))
    return chosen


# While matches hold less than this share of the labels, part of every round goes to the pairs
# likeliest to match. Uncertain pairs of a large candidate pool are mostly look-alike strangers:
# at 100,000 travel mentions uncertainty sampling alone asked 48 non-matches in 50 questions, and
# a model from 2 matches merged whole crowds. "Likeliest" is the unsupervised seed score, not the
# current model: a model fitted on one or two matches ranks strangers first (with the logistic
# sampler it went on to ask 49 non-matches of 50 on that set). At 0.15 a second 100,000-mention
# set still ended with 8 matches in 50 labels (out-of-fold average precision 0.25, end-to-end F1
# 0.41); at 0.3 it had 26 (0.85, F1 0.54), and the eight 2,000-person sets kept their mean.
# (Scarce non-matches are not topped up the same way: the likeliest non-matches are easy ones,
# and on Febrl asking them cost F1 0.9934 -> 0.9347.)
MIN_MATCH_SHARE = 0.3


def _balanced(pool: Pool, free: np.ndarray, chosen: list[int], n: int) -> list[int]:
    """`chosen`, with up to half of it swapped for the likeliest matches while matches are scarce."""
    _, y = pool.training_set()
    share = float(y.mean()) if len(y) else 0.5
    if share >= MIN_MATCH_SHARE or n < 2:
        return chosen
    likeliest = free[np.argsort(-seed_score(pool.features.iloc[free]), kind="stable")]
    extra = [int(r) for r in likeliest[:n] if int(r) not in chosen][: n // 2]
    return [*extra, *chosen][:n]


class Strategy(Protocol):
    name: str
    # True when the strategy starts from its own bootstrap instead of UPT's seed round.
    own_seed: bool

    def select(self, pool: Pool, n: int, asked: set[int], rng: np.random.Generator) -> list[int]: ...


def _one_class_fallback(pool: Pool, n: int, asked: set[int], rng: np.random.Generator) -> list[int] | None:
    """While only one class is labelled, ask from the other end of the seed score."""
    _, y = pool.training_set()
    if len(np.unique(y)) == 2:
        return None
    free = pool.unlabelled(asked)
    scores = seed_score(pool.features.iloc[free])
    order = free[np.argsort(scores, kind="stable")]
    end = order[::-1] if (len(y) == 0 or y[0] == 0) else order
    return [int(i) for i in end[:n]]


class UncertaintySampling:
    """Ask where the model `upt train` would fit on the labels so far is least sure: by default
    the same `auto` choice (logistic with few labels, LightGBM with many), since a question is
    worth most to the model it will train. Sampling with LightGBM while training logistic
    regression left Febrl3 at model F1 0.976 after 25 labels against 0.995 (mean of 5 seeds)."""

    name = "uncertainty"
    own_seed = False

    def __init__(self, model_factory: Callable[[np.ndarray], Matcher] | None = None) -> None:
        self.model_factory = model_factory

    def model_for(self, pool: Pool, y: np.ndarray) -> Matcher:
        """The unfitted model that would learn these labels: `upt train`'s choice, with the
        pool's prior, unless the sampler was given a factory."""
        if self.model_factory is not None:
            return self.model_factory(y)
        return make_model(auto_model_name(y), pool.prior)

    def select(self, pool: Pool, n: int, asked: set[int], rng: np.random.Generator) -> list[int]:
        fallback = _one_class_fallback(pool, n, asked, rng)
        if fallback is not None:
            return fallback
        free = pool.unlabelled(asked)
        if self.model_factory is None:
            p = pool.trained()[1][free]
        else:
            x, y = pool.training_set()
            p = self.model_for(pool, y).fit(x, y).predict_proba(pool.features.iloc[free])
        return _balanced(pool, free, _diverse(pool, free[np.argsort(np.abs(p - 0.5), kind="stable")], n), n)


class QueryByCommittee:
    name = "committee"
    own_seed = False

    def __init__(self, members: int = 5) -> None:
        self.members = members

    def select(self, pool: Pool, n: int, asked: set[int], rng: np.random.Generator) -> list[int]:
        fallback = _one_class_fallback(pool, n, asked, rng)
        if fallback is not None:
            return fallback
        x, y = pool.training_set()
        free = pool.unlabelled(asked)
        votes: list[np.ndarray] = []
        for member in range(self.members * 3):
            if len(votes) == self.members:
                break
            rows = rng.integers(0, len(y), len(y))
            if len(np.unique(y[rows])) < 2:
                continue
            model = LightGBMMatcher(seed=member).fit(x.iloc[rows], y[rows])
            votes.append(model.predict_proba(pool.features.iloc[free]))
        if not votes:
            return pool.pick(free, n, rng)
        disagreement = np.var(np.vstack(votes), axis=0)
        chosen = _diverse(pool, free[np.argsort(-disagreement, kind="stable")], n)
        return _balanced(pool, free, chosen, n)


def _dedupe_learning() -> Strategy:
    try:
        import dedupe  # noqa: F401  (optional extra)
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise ConfigError("strategy dedupe needs dedupe: pip install 'upt[dedupe]'") from exc
    from labeling.dedupe_learner import DedupeActiveLearning

    return DedupeActiveLearning()


STRATEGIES: dict[str, Callable[[], Strategy]] = {
    "uncertainty": UncertaintySampling,
    "committee": QueryByCommittee,
    "dedupe": _dedupe_learning,
}


def make_strategy(name: str) -> Strategy:
    if name not in STRATEGIES:
        raise ValidationFailed("strategy", f"unknown strategy {name!r}; choose from {sorted(STRATEGIES)}")
    return STRATEGIES[name]()
