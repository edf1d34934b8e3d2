"""`upt train`: fit the match model on the labels, evaluate it, log and register it in MLflow.

The logistic regression (the default below 500 labels of a class) starts from an unsupervised
Fellegi-Sunter model of the candidate pool and learns from the labels how to correct it
(`models.fellegi_sunter`). Metrics are cross-validated (out-of-fold probabilities). The auto-merge threshold is the one
whose merges have the best expected F1 over the candidate pool, the calibrated probabilities of
every candidate pair standing in for labels, counting only the merges the resolver's guards let
stand (`training.metrics.pool_f1_threshold`); with `--target-precision P` and at least 50 labels
of each class, the lowest out-of-fold score reaching P. The review band lies below it.
Everything goes to MLflow: parameters, metrics, plots, the label set's size and hash, the code
version, and the model as one pyfunc bundling feature configuration, classifier and
thresholds. Every model is registered; the first of a store and domain becomes `champion`, later
ones `challenger` until promoted.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.comparisons import COMPARISONS, model_may_merge
from features.frame import load_mentions
from features.pairs import features_for_pairs, load_candidate_features
from labeling.store import load_labels, training_labels
from models.bundle import Bundle, Thresholds
from models.classifiers import auto_model_name, make_model
from models.fellegi_sunter import FellegiSunter
from profiles.errors import NotReady
from profiles.settings import Settings
from profiles.store import Store
from profiles.store.reads import store_id
from training import tracking
from training.metrics import (
    REPORTED_PRECISION_TARGET,
    choose_merge_threshold,
    f1_threshold,
    merge_threshold,
    pair_scores,
    pool_merge_threshold,
    review_threshold,
)


@dataclass
class TrainResult:
    version: str
    run_id: str
    registered_name: str
    labels: int
    metrics: dict[str, float]
    thresholds: dict[str, float]
    aliases: list[str] = field(default_factory=list)
    model: str = ""  # the classifier fitted (what `auto` chose)
    caution: str | None = None  # why its merges should not be trusted yet, if so


# Below this many labels of the rarer class a model's merges can be worse than the rules alone:
# on three 20,000-mention travel sets, 10 labels (about 5 of each class) gave pairwise F1 0.56
# where the rules alone gave 0.74 on one set (0.84 and 0.77 against 0.72 and 0.70 on the other
# two); from 25 labels (10 or more of each) every set was above the rules alone
# (`benchmarks.travel_curve`).
MIN_PER_CLASS_TO_TRUST = 10


def caution_for(y: np.ndarray) -> str | None:
    """A warning when the labels are too few to trust the model's merges (see
    `MIN_PER_CLASS_TO_TRUST`), naming how many of each class there are."""
    matches, non_matches = int(y.sum()), int(len(y) - y.sum())
    if min(matches, non_matches) >= MIN_PER_CLASS_TO_TRUST:
        return None
    return (
        f"only {matches} matches and {non_matches} non-matches: a model from so few labels can merge "
        f"worse than the rules alone; label until each class has {MIN_PER_CLASS_TO_TRUST} or more "
        "(`upt label`), then train again"
    )


def labelled_features(
    store: Store,
    settings: Settings,
    frame: pd.DataFrame | None = None,
    pool: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    """Comparison vectors of the labelled pairs whose mentions are still stored, and their labels
    (`frame` and `pool`: the domain's mentions and its candidate features, when loaded; see
    `features_for_pairs`)."""
    with store.reading() as conn:
        labels = training_labels(load_labels(conn, store.domain))
        if frame is None:
            frame = load_mentions(conn, store.domain, cache=settings.frame_cache_path(store.domain))
        ids = dict(zip(frame["mention_key"], frame["mention_pk"], strict=True))
        labels = labels[labels["mention_a"].isin(ids) & labels["mention_b"].isin(ids)].reset_index(drop=True)
        a = labels["mention_a"].map(ids).to_numpy(np.int64)
        b = labels["mention_b"].map(ids).to_numpy(np.int64)
        features = features_for_pairs(conn, store.domain, settings.encoder, a, b, frame, pool)
    return features, labels["y"].to_numpy(np.int64), labels


def label_hash(labels: pd.DataFrame) -> str:
    text = "\n".join(
        f"{a}|{b}|{y}"
        for a, b, y in sorted(zip(labels["mention_a"], labels["mention_b"], labels["y"], strict=True))
    )
    return hashlib.sha256(text.encode()).hexdigest()


def code_version() -> str:
    done = subprocess.run(
        ["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1]
    )
    return done.stdout.strip() or "unknown"


def _plots(
    folder: Path, y: np.ndarray, p: np.ndarray, importance: dict[str, float], merge: float
) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import precision_recall_curve

    paths = []
    precision, recall, _ = precision_recall_curve(y, p)
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot(recall, precision)
    chosen = pair_scores(y, p, merge)
    ax.scatter([chosen["recall"]], [chosen["precision"]], color="red", label=f"merge threshold {merge:.3f}")
    ax.set(xlabel="recall", ylabel="precision", title="Precision/recall (out-of-fold)")
    ax.legend(loc="lower left")
    paths.append(folder / "precision_recall.png")
    fig.savefig(paths[-1], dpi=100, bbox_inches="tight")
    plt.close(fig)
    bins = max(2, min(10, len(y) // 10))
    true_rate, mean_p = calibration_curve(y, p, n_bins=bins, strategy="quantile")
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey")
    ax.plot(mean_p, true_rate, marker="o")
    ax.set(xlabel="predicted probability", ylabel="share of matches", title="Calibration (out-of-fold)")
    paths.append(folder / "calibration.png")
    fig.savefig(paths[-1], dpi=100, bbox_inches="tight")
    plt.close(fig)
    top = sorted(importance.items(), key=lambda kv: kv[1], reverse=True)[:20]
    fig, ax = plt.subplots(figsize=(6, 5))
    ax.barh([k for k, _ in reversed(top)], [v for _, v in reversed(top)])
    ax.set(title="Feature importance")
    paths.append(folder / "feature_importance.png")
    fig.savefig(paths[-1], dpi=100, bbox_inches="tight")
    plt.close(fig)
    return paths


def train(
    store: Store,
    settings: Settings,
    model_name: str = "auto",
    target_precision: float | None = None,
    actor: str = "cli",
) -> TrainResult:
    with store.reading() as conn:
        frame = load_mentions(conn, store.domain, cache=settings.frame_cache_path(store.domain))
        # kept by `upt label` when nothing changed since (`features.pool_cache`)
        cache = settings.candidate_features_path(store.domain)
        pool = load_candidate_features(conn, store.domain, frame, cache=cache).features
    # labelled pairs are read from the pool when all are candidates (active learning asks only those)
    features, y, labels = labelled_features(store, settings, frame, pool=pool)
    if len(np.unique(y)) < 2:
        raise NotReady(
            f"{len(y)} usable labels, not both matches and non-matches: label pairs first (`upt label`)"
        )
    if model_name == "auto":
        model_name = auto_model_name(y)
    # What the candidate pool says without a label, which the labels then correct
    # (`models.fellegi_sunter`; the logistic regression takes it as its prior, the others not).
    mixture = FellegiSunter.fit(pool)
    model = make_model(model_name, prior=mixture).fit(features, y)
    oof = model.oof_proba_
    pool_p = model.predict_proba(pool) if len(pool) else np.zeros(0)
    # A precision of 0.995 cannot be measured on a few dozen labels, and a model calibrated on
    # them may never score near 1: the threshold is the one with the best expected F1 over the
    # candidate pool, counting only the merges the resolver's guards would let stand.
    allowed = model_may_merge(pool) if len(pool) else np.zeros(0, bool)
    merge, rule = choose_merge_threshold(y, oof, target_precision, pool_p, allowed)
    reported = target_precision if target_precision is not None else REPORTED_PRECISION_TARGET
    review = review_threshold(merge, pool_p)
    at_merge = pair_scores(y, oof, merge)
    from sklearn.metrics import average_precision_score, brier_score_loss

    metrics = {
        **at_merge,
        "f1_at_0_5": pair_scores(y, oof, 0.5)["f1"],
        "oof_precision_threshold": merge_threshold(y, oof, reported),
        "oof_f1_threshold": f1_threshold(y, oof),
        "pool_expected_precision_threshold": pool_merge_threshold(pool_p, reported),
        "pool_pairs": float(len(pool)),
        "pool_expected_merges": float((pool_p >= merge).sum()),
        "pool_mixture_match_share": mixture.match_share,
        "pool_mixture_expected_matches": mixture.match_share * len(pool),
        "average_precision": float(average_precision_score(y, oof)),
        "brier": float(brier_score_loss(y, oof)),
        "labels": float(len(y)),
        "matches": float(y.sum()),
    }
    with store.transaction() as conn:
        sid = store_id(conn)
    name = tracking.registered_name(sid, store.domain)
    lhash = label_hash(labels)
    bundle = Bundle(
        model,
        Thresholds(merge, review),
        feature_config={
            "comparisons": [c.name for c in COMPARISONS],
            "encoder": settings.encoder,
            "text_template": settings.text_template,
        },
        trained_on={
            "store_id": sid,
            "domain": store.domain,
            "labels": len(y),
            "labels_hash": lhash,
            "label_pairs": [[a, b] for a, b in zip(labels["mention_a"], labels["mention_b"], strict=True)],
        },
    )
    mlflow = tracking.configure(settings)
    from mlflow import MlflowClient
    from mlflow.models import infer_signature

    with (
        tempfile.TemporaryDirectory() as tmp,
        mlflow.start_run(run_name=f"{model_name}-{len(y)}-labels") as run,
    ):
        folder = Path(tmp)
        mlflow.log_params(
            {
                "model": model_name,
                "target_precision": "none" if target_precision is None else target_precision,
                "encoder": settings.encoder,
                "text_template": settings.text_template,
                "domain": store.domain,
                "store_id": sid,
                "labels": len(y),
                "labels_hash": lhash,
                "code_version": code_version(),
                "calibration": model.calibrator_.method,
                "threshold_rule": rule,
            }
        )
        # how far the labels were let pull the weights from the pool's prior (`prior_pull`)
        chosen_c = getattr(getattr(model, "fitted_", None), "c", None)
        if chosen_c is not None:
            mlflow.log_param("logistic_c", chosen_c)
        mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
        mlflow.log_metrics({"threshold_merge": merge, "threshold_review": review})
        for path in _plots(folder, y, oof, model.importance(), merge):
            mlflow.log_artifact(str(path), "plots")
        (folder / "feature_importance.json").write_text(json.dumps(model.importance(), indent=1))
        mlflow.log_artifact(str(folder / "feature_importance.json"))
        (folder / "pool_mixture.json").write_text(json.dumps(mixture.to_dict(), indent=1))
        mlflow.log_artifact(str(folder / "pool_mixture.json"))
        bundle.save(folder / "bundle.json")
        example = features.drop(columns=["mention_a", "mention_b"]).head(3)
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(Path(__file__).resolve().parents[1] / "models" / "pyfunc_entry.py"),
            artifacts={"bundle": str(folder / "bundle.json")},
            input_example=example,
            signature=infer_signature(example, bundle.score(example)),
            registered_model_name=name,
            pip_requirements=[f"upt=={_version()}"],
        )
        run_id = run.info.run_id
    client = MlflowClient()
    version = str(info.registered_model_version)
    client.set_model_version_tag(name, version, "trained_by", actor)
    client.set_model_version_tag(name, version, "labels_hash", lhash)
    aliases = client.get_registered_model(name).aliases
    if "champion" not in aliases:
        client.set_registered_model_alias(name, "champion", version)
        assigned = ["champion"]
    else:
        client.set_registered_model_alias(name, "challenger", version)
        assigned = ["challenger"]
    return TrainResult(
        version,
        run_id,
        name,
        len(y),
        {k: round(float(v), 5) for k, v in metrics.items()},
        {"merge": merge, "review": review},
        assigned,
        model_name,
        caution_for(y),
    )


def _version() -> str:
    from importlib.metadata import version

    return version("upt")


def model_metrics(settings: Settings, name: str, version: str) -> dict[str, Any]:
    mlflow = tracking.configure(settings)
    from mlflow import MlflowClient

    client = MlflowClient()
    mv = client.get_model_version(name, version)
    run = mlflow.get_run(mv.run_id) if mv.run_id else None
    return dict(run.data.metrics) if run else {}
