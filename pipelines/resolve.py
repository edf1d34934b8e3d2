"""`upt resolve`: score the candidate pairs with the champion model, decide, cluster, and write
profiles with stable ids, golden records, decisions and the review queue.

This is the batch path over everything stored (a full pass each run; profile ids stay stable
across runs). Deterministic rule levels, configurable survivorship and incremental resolution of
only new mentions are the next steps of the resolution issue.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from features.frame import PERSON_FIELDS
from features.pairs import load_candidate_features
from models.bundle import Bundle, load_bundle
from profiles.errors import NotFound
from profiles.resolution.clustering import ClusterInputs, cluster
from profiles.resolution.identity import assign_ids
from profiles.settings import Settings
from profiles.store import Store
from profiles.store.profiles_io import current_membership, queue_reviews, record_decisions, write_profiles
from training.registry import model_name, resolve_version

GOLDEN_FIELDS = PERSON_FIELDS


@dataclass
class ResolveReport:
    mentions: int = 0
    pairs_scored: int = 0
    merges: int = 0
    reviews: int = 0
    profiles: int = 0
    model_version: str = ""
    clustering: dict[str, int] = field(default_factory=dict)
    written: dict[str, int] = field(default_factory=dict)


def champion(store: Store, settings: Settings) -> tuple[Bundle, str]:
    """The champion bundle of this store and domain, or NotFound telling what to do."""
    from mlflow.exceptions import MlflowException

    try:
        version = resolve_version(store, settings, "champion")
    except MlflowException:
        raise NotFound(
            f"no champion model for domain {store.domain!r} of this store: run `upt label` and "
            "`upt train` first (or point UPT_MLFLOW_TRACKING_URI at the registry that has it)"
        ) from None
    return load_bundle(f"models:/{model_name(store)}/{version}"), version


def golden_record(frame: pd.DataFrame) -> dict[str, Any]:
    """Most frequent non-empty value per field (ties: the most recent mention), with its sources."""
    out: dict[str, Any] = {}
    for column in GOLDEN_FIELDS:
        if column not in frame:
            continue
        values = frame[column]
        flat = [v for item in values for v in (item if isinstance(item, tuple) else (item,)) if v]
        if not flat:
            continue
        best = Counter(flat).most_common(1)[0][0]
        out[column] = {
            "value": best,
            "from": [
                k
                for k, item in zip(frame["mention_key"], values, strict=True)
                if best == item or (isinstance(item, tuple) and best in item)
            ][:20],
        }
    return out


def run_resolve(store: Store, settings: Settings) -> ResolveReport:
    report = ResolveReport()
    bundle, version = champion(store, settings)
    if settings.merge_threshold is not None:
        bundle.thresholds.merge = settings.merge_threshold
    if settings.review_threshold is not None:
        bundle.thresholds.review = min(settings.review_threshold, bundle.thresholds.merge)
    report.model_version = version
    with store.reading() as conn:
        pairs = load_candidate_features(conn, store.domain)
        previous, created = current_membership(conn, store.domain)
    frame, features = pairs.frame, pairs.features
    report.mentions, report.pairs_scored = len(frame), len(features)
    scored = bundle.score(features)
    p = scored["probability"].to_numpy()
    decision = scored["decision"].to_numpy()
    node = {pk: i for i, pk in enumerate(frame["mention_pk"].tolist())}
    a = np.array([node[x] for x in features["mention_a"].tolist()], dtype=np.int64)
    b = np.array([node[x] for x in features["mention_b"].tolist()], dtype=np.int64)
    merge = decision == "merge"
    companions = (features["travelled_together"] == 1).to_numpy()
    conflict = ((features["document_conflict"] == 1) | (features["dob_conflict"] == 1)).to_numpy() & ~merge
    apart = companions | conflict
    inputs = ClusterInputs(
        n=len(frame),
        edges=list(zip(a[merge].tolist(), b[merge].tolist(), p[merge].tolist(), strict=True)),
        cannot_link=list(zip(a[apart].tolist(), b[apart].tolist(), strict=True)),
        pair_scores=dict(
            zip(
                zip(np.minimum(a, b).tolist(), np.maximum(a, b).tolist(), strict=True),
                p.tolist(),
                strict=True,
            )
        ),
    )
    labels, clustering = cluster(inputs)
    report.clustering = vars(clustering)
    ids, retired = assign_ids(labels, [previous.get(pk) for pk in frame["mention_pk"]], created)
    frame = frame.assign(profile_id=ids)
    golden = {pid: golden_record(group) for pid, group in frame.groupby("profile_id", sort=False)}
    keys = frame["mention_key"].to_numpy()
    decisions = [
        {
            "mention_a": keys[x],
            "mention_b": keys[y],
            "score": float(s),
            "model_version": version,
            "rule": None,
            "decision": d,
            "actor": "model",
        }
        for x, y, s, d in zip(a.tolist(), b.tolist(), p.tolist(), decision.tolist(), strict=True)
        if d != "no_match"
    ]
    reviews = [
        {
            "mention_a": r["mention_a"],
            "mention_b": r["mention_b"],
            "score": r["score"],
            "model_version": version,
        }
        for r in decisions
        if r["decision"] == "review"
    ]
    survivors = {}
    for pid in retired:
        holders = [ids[i] for i, pk in enumerate(frame["mention_pk"]) if previous.get(pk) == pid]
        survivors[pid] = Counter(holders).most_common(1)[0][0] if holders else None
    with store.transaction() as conn:
        report.written = write_profiles(
            conn, store.domain, dict(zip(frame["mention_pk"].tolist(), ids, strict=True)), golden, survivors
        )
        record_decisions(conn, store.domain, decisions)
        report.reviews = queue_reviews(conn, store.domain, reviews)
    report.merges = int(merge.sum())
    report.profiles = len(golden)
    return report
