"""`upt label`: the active-learning loop over the stored candidate pairs, answered by a person in
the terminal or, for benchmarks and tests, by a simulated oracle reading a truth file."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from features.frame import PERSON_FIELDS, load_mentions
from features.pairs import PairFeatures, load_candidate_features
from labeling.loop import LoopReport, run_loop
from labeling.store import Label, load_labels, remove_label, save_labels
from labeling.strategies import Pool, make_strategy
from profiles.errors import NotReady
from profiles.settings import Settings
from profiles.store import Store

SHOWN = PERSON_FIELDS


def build_pool(store: Store, settings: Settings | None = None) -> tuple[PairFeatures, Pool]:
    """The candidate pairs with their features, and which of them are already labelled; in the
    order of their mention keys, with draws from them, so that the questions asked do not depend
    on the order the data arrived in. With `settings`, the mentions and the pairs' vectors are
    read from (and kept in) the home's caches."""
    with store.reading() as conn:
        if settings is None:
            pairs = load_candidate_features(conn, store.domain)
        else:
            frame = load_mentions(conn, store.domain, cache=settings.frame_cache_path(store.domain))
            cache = settings.candidate_features_path(store.domain)
            pairs = load_candidate_features(conn, store.domain, frame, cache=cache)
        pairs = pairs.in_key_order()
        existing = load_labels(conn, store.domain)
    pool = Pool(pairs.features, pairs.blockers, {}, pairs.frame, pairs.draws())
    if len(existing):
        index = {key: row for row, key in enumerate(pairs.keys(np.arange(len(pairs.features))))}
        for a, b, label in existing[["mention_a", "mention_b", "label"]].itertuples(index=False):
            row = index.get((a, b), index.get((b, a)))
            if row is not None and label != "unsure":
                pool.labelled[row] = 1 if label == "match" else 0
    return pairs, pool


def label_pairs(
    store: Store,
    ask: Callable[[int, PairFeatures], str | None],
    labeller: str,
    origin: str,
    budget: int,
    strategy: str,
    progress: Callable[[LoopReport], None] | None = None,
    seed: int = 0,
    settings: Settings | None = None,
) -> LoopReport:
    pairs, pool = build_pool(store, settings)
    if len(pool.features) == 0:
        raise NotReady("no candidate pairs in this domain: ingest data and run `upt block` first")
    keys = pairs.keys

    def save(row: int, answer: str) -> None:
        ((a, b),) = keys([row])
        vector = pool.features.iloc[row].drop(["mention_a", "mention_b"]).to_dict()
        with store.transaction() as conn:
            save_labels(conn, store.domain, [Label(a, b, answer, labeller, origin, vector)])

    def unsave(row: int) -> None:
        undo(store, pairs, row, labeller)

    chooser = make_strategy(strategy)
    if hasattr(chooser, "seed"):
        chooser.seed = seed  # dedupe's learner samples with its own generator
    return run_loop(
        pool,
        lambda row: ask(row, pairs),
        save,
        budget,
        chooser,
        seed=seed,
        progress=progress,
        unsave=unsave,
    )


def undo(store: Store, pairs: PairFeatures, row: int, labeller: str) -> None:
    ((a, b),) = pairs.keys([row])
    with store.transaction() as conn:
        remove_label(conn, store.domain, a, b, labeller)


def side_by_side(pairs: PairFeatures, row: int) -> list[tuple[str, str, str, bool]]:
    """(field, left value, right value, same?) for the terminal view."""
    a, b = pairs.features["mention_a"].iloc[row], pairs.features["mention_b"].iloc[row]
    left, right = pairs.frame.loc[a], pairs.frame.loc[b]
    out = [("mention", str(left["mention_key"]), str(right["mention_key"]), False)]
    for column in SHOWN:
        if column not in pairs.frame:
            continue
        lv, rv = _text(left[column]), _text(right[column])
        if lv or rv:
            out.append((column, lv, rv, lv == rv))
    return out


def _text(value: Any) -> str:
    if isinstance(value, tuple):
        return ", ".join(value)
    return "" if value is None else str(value)
