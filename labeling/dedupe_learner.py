"""dedupe's own active learner behind UPT's `Strategy` interface (optional extra `upt[dedupe]`).

dedupe (3.0.3) chooses its questions with a `DisagreementLearner`: a logistic regression on
dedupe's own field distances and a learner of blocking predicates vote on every candidate pair,
and it asks where they disagree (first matches that no predicate covers yet, then covered pairs
spread over the classifier's confidence). Here that very learner, with dedupe's own field
distances and predicates, chooses from UPT's candidate pool, so the three strategies answer the
same questions on the same pairs; its answers reach UPT's labels like any other strategy's.

Two adaptations, both because of dedupe's memory: its predicate cover is quadratic in block size
(`prepare_training` on the 5,000 Febrl3 records went past 20 GB here), so the learner sees a
bounded random sample of the pool (`max_pairs` pairs, so at most twice as many records) instead
of the whole of it; and it starts, like dedupe, from its own bootstrap (a record paired with
itself as a match, a random pair as a distinct one), not from UPT's seed round.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from features.frame import FLAT_COLUMNS, flat_person_table
from labeling.strategies import Pool

DEDUPE_MAX_PAIRS = 1000
# Free text dedupe compares by string distance; the rest (dates, codes, numbers) exactly.
STRING_FIELDS = ("first_name", "last_name", "street", "email")


def dedupe_fields(columns: Sequence[str]) -> list[Any]:
    """dedupe variable definitions for these flat columns (every field may be missing)."""
    from dedupe.variables import Exact, String

    return [
        String(c, has_missing=True) if c in STRING_FIELDS else Exact(c, has_missing=True) for c in columns
    ]


def used_columns(table: pd.DataFrame) -> list[str]:
    """The flat columns filled in for more than 1% of mentions (dedupe refuses all-empty fields)."""
    return [c for c in FLAT_COLUMNS if c in table and table[c].notna().mean() > 0.01]


def _learner_class() -> type:
    """dedupe's DisagreementLearner, its candidates taken from the given pairs, not sampled."""
    from dedupe.labeler import DedupeBlockLearner, DisagreementLearner, MatchLearner

    class PoolBlockLearner(DedupeBlockLearner):
        def __init__(
            self, predicates: Any, data: dict[int, Any], candidates: list[Any], known: list[Any]
        ) -> None:
            self._given = candidates
            # pairs labelled before must be indexed too, or dedupe's index predicates fail on them
            super().__init__(predicates, data, index_include=known)

        def _sample(self, data: Any, sample_size: int) -> list[Any]:
            return list(self._given)

    class PoolDisagreementLearner(DisagreementLearner):
        def __init__(
            self,
            predicates: Any,
            featurizer: Any,
            data: dict[int, Any],
            candidates: list[Any],
            known: list[Any],
            seed: int,
        ) -> None:
            super().__init__()
            self.rng = np.random.default_rng(seed)
            self.blocker = PoolBlockLearner(predicates, data, candidates, known)
            self._candidates = self.blocker.candidates.copy()
            self.matcher = MatchLearner(featurizer, self.candidates)

    return PoolDisagreementLearner


class DedupeActiveLearning:
    """dedupe's active learner choosing from (a bounded sample of) UPT's candidate pool."""

    name = "dedupe"
    own_seed = True

    def __init__(self, max_pairs: int = DEDUPE_MAX_PAIRS, seed: int = 0) -> None:
        self.max_pairs = max_pairs
        self.seed = seed
        self._learner: Any = None
        self._records: dict[int, dict[str, Any]] = {}
        self._rows: dict[tuple[int, int], int] = {}
        self._marked: set[int] = set()

    def select(self, pool: Pool, n: int, asked: set[int], rng: np.random.Generator) -> list[int]:
        if self._learner is None:
            self._start(pool, asked, rng)
        self._mark_new(pool)
        chosen: list[int] = []
        while len(chosen) < n and len(self._learner.candidates):
            a, b = self._learner.pop()
            row = self._rows[(a["_id"], b["_id"])]
            if row not in asked:
                chosen.append(row)
        return chosen

    def _start(self, pool: Pool, asked: set[int], rng: np.random.Generator) -> None:
        import dedupe

        if pool.frame is None:
            raise ValueError("dedupe's learner reads the mentions' records: the pool carries no frame")
        free = pool.unlabelled(asked)
        sample = np.sort(rng.choice(free, size=min(self.max_pairs, len(free)), replace=False))
        a = pool.features["mention_a"].to_numpy()[sample]
        b = pool.features["mention_b"].to_numpy()[sample]
        labelled = np.fromiter(pool.labelled, dtype=np.int64)
        la = pool.features["mention_a"].to_numpy()[labelled]
        lb = pool.features["mention_b"].to_numpy()[labelled]
        ids = np.unique(np.concatenate([a, b, la, lb]))
        table = flat_person_table(pool.frame.loc[ids])
        columns = used_columns(table)
        for pk, values in zip(ids.tolist(), table[columns].itertuples(index=False), strict=True):
            self._records[pk] = {"_id": pk, **dict(zip(columns, values, strict=True))}
        self._rows = {(int(x), int(y)): int(r) for x, y, r in zip(a, b, sample, strict=True)}
        model = dedupe.Dedupe(dedupe_fields(columns), num_cores=1).data_model
        random.seed(self.seed)  # dedupe samples records and pairs with the `random` module
        self._learner = _learner_class()(
            model.predicates,
            model.distances,
            self._records,
            [(self._records[int(x)], self._records[int(y)]) for x, y in zip(a, b, strict=True)],
            [(self._records[int(x)], self._records[int(y)]) for x, y in zip(la, lb, strict=True)],
            self.seed,
        )
        # dedupe's own bootstrap: one record with itself (x4) as a match, a random pair as distinct.
        one, other = random.sample(list(self._records.values()), 2)
        self._learner.mark([(one, one)] * 4 + [(one, other)], [1, 1, 1, 1, 0])

    def _mark_new(self, pool: Pool) -> None:
        new = [row for row in pool.labelled if row not in self._marked]
        if not new:
            return
        a = pool.features["mention_a"].to_numpy()
        b = pool.features["mention_b"].to_numpy()
        pairs = [(self._records[int(a[r])], self._records[int(b[r])]) for r in new]
        self._learner.mark(pairs, [pool.labelled[r] for r in new])
        self._marked.update(new)
