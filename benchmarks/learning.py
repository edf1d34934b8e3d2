"""Learning curves (issue 5): how good the match model gets after 10, 25, 50, 100 and 200 labels
from the simulated oracle, for each active-learning strategy and each model, on Febrl3, Febrl4
and generated travel data.

Each data set is ingested and blocked once through the command line; then, in process, each
strategy runs the real labelling loop (`labeling.loop.run_loop`, the one `upt label` runs) up to
200 answers from the truth file, and after each budget each model is trained on the labels asked
so far (the first N, in asking order) exactly as `upt train` does (out-of-fold calibration, the
same threshold rule). The figure is pairwise precision/recall/F1 of the model's merge decisions
over all candidate pairs, before rules and clustering, and the training time.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import datasets
from benchmarks.common import machine, write_section
from benchmarks.quality import _ingest, _upt, _upt_env

BUDGETS = (10, 25, 50, 100, 200)
STRATEGIES = ("uncertainty", "committee", "dedupe")
MODELS = ("lightgbm", "logistic", "dedupe")


def _pool(home: Path, truth: Path) -> tuple[Any, Any, np.ndarray]:
    """(candidate pairs, the labelling pool's features, the oracle's answer for every pair)."""
    from labeling.oracle import SimulatedOracle
    from pipelines.label import build_pool
    from profiles.settings import Settings
    from profiles.store import open_store

    store = open_store(Settings(home=home))
    pairs, base = build_pool(store)
    oracle = SimulatedOracle.from_file(truth)
    keys = pairs.keys(np.arange(len(base.features)))
    y_all = np.array([oracle.answer(a, b) == "match" for a, b in keys], dtype=np.int64)
    return pairs, base, y_all


def _asking_order(
    pairs: Any, base: Any, y_all: np.ndarray, strategy: str, budget: int, seed: int
) -> list[int]:
    """The pool rows the real labelling loop asks, in order, with the oracle answering."""
    from labeling.loop import run_loop
    from labeling.strategies import Pool, make_strategy

    pool = Pool(base.features, base.blockers, {}, pairs.frame, base.draws)
    order: list[int] = []
    chooser = make_strategy(strategy)
    if hasattr(chooser, "seed"):
        chooser.seed = seed  # dedupe's learner samples with its own generator
    run_loop(
        pool,
        lambda row: "match" if y_all[row] else "non_match",
        lambda row, answer: order.append(row),
        budget,
        chooser,
        seed=seed,
    )
    return order


def _trained_scores(
    base: Any, y_all: np.ndarray, rows: np.ndarray, model_name: str, prior: Any = None
) -> dict[str, Any]:
    """The model trained on these labelled rows as `upt train` trains it (with the pool's `prior`),
    scored on every pair."""
    from models.classifiers import make_model
    from training.metrics import choose_merge_threshold, pair_scores

    y = y_all[rows]
    if len(np.unique(y)) < 2:
        return {"labels": len(rows), "f1": None, "note": "one class only"}
    started = time.perf_counter()
    model = make_model(model_name, prior).fit(base.features.iloc[rows], y)
    merge, _ = choose_merge_threshold(y, model.oof_proba_)
    train_s = time.perf_counter() - started
    scores = pair_scores(y_all, model.predict_proba(base.features), merge)
    return {
        "labels": len(rows),
        "matches": int(y.sum()),
        **{k: round(v, 4) for k, v in scores.items()},
        "train_s": round(train_s, 2),
    }


def curves(home: Path, truth: Path) -> dict[str, Any]:
    from models.fellegi_sunter import FellegiSunter

    pairs, base, y_all = _pool(home, truth)
    prior = FellegiSunter.fit(base.features)
    out: dict[str, Any] = {"candidate_pairs": len(y_all), "true_pairs_among_candidates": int(y_all.sum())}
    for strategy in STRATEGIES:
        order = _asking_order(pairs, base, y_all, strategy, max(BUDGETS), seed=0)
        for model_name in MODELS:
            for n in BUDGETS:
                key = f"{strategy}/{model_name}/{n}"
                out[key] = _trained_scores(
                    base, y_all, np.array(order[:n], dtype=np.int64), model_name, prior
                )
                print(f"[bench]   learning {home.name} {key}: {json.dumps(out[key])}", flush=True)
    return out


# UPT's default path against dedupe's own active learning, repeated with different seeds (the
# seed round and dedupe's sampling are random): one run's F1 after 10 or 25 labels moves by
# several points from one seed to the next.
SEEDED_PATHS = {
    "UPT (uncertainty + logistic)": ("uncertainty", "logistic"),
    "dedupe's own": ("dedupe", "dedupe"),
}
SEEDED_BUDGETS = (10, 25, 50)
SEEDS = (0, 1, 2, 3, 4)


def seeded(home: Path, truth: Path) -> dict[str, Any]:
    from models.fellegi_sunter import FellegiSunter

    pairs, base, y_all = _pool(home, truth)
    prior = FellegiSunter.fit(base.features)
    out: dict[str, Any] = {}
    for path, (strategy, model_name) in SEEDED_PATHS.items():
        for seed in SEEDS:
            order = _asking_order(pairs, base, y_all, strategy, max(SEEDED_BUDGETS), seed)
            for n in SEEDED_BUDGETS:
                rows = np.array(order[:n], dtype=np.int64)
                f1 = _trained_scores(base, y_all, rows, model_name, prior)["f1"]
                out.setdefault(f"{path}/{n}", []).append(0.0 if f1 is None else f1)
            print(f"[bench]   learning {home.name} {path} seed {seed}: done", flush=True)
    return out


def run(workdir: Path, travel_mentions: int = 20_000) -> None:
    sets = {
        "febrl3": datasets.febrl("febrl3", workdir / "lc-febrl3"),
        "febrl4": datasets.febrl("febrl4", workdir / "lc-febrl4"),
        f"travel {travel_mentions // 1000}k": datasets.travel(travel_mentions, workdir / "lc-travel", seed=3),
    }
    results = {}
    for name, (files, truth) in sets.items():
        home = workdir / f"lc-home-{name.replace(' ', '-')}"
        env = _upt_env(home, workdir / f"lc-mlruns-{name.replace(' ', '-')}")
        _ingest(home, env, files)
        _upt(home, env, "block", "-q")
        results[name] = curves(home, truth)
        results[name]["seeded"] = seeded(home, truth)
    lines = [
        "## Learning curves (issue 5)\n",
        f"Machine: {machine()}.\n",
        "Command: `make bench` (part `learning`). Simulated oracle answering from the truth file through the real "
        "labelling loop (10-question seed round, then rounds of 5); after N labels each model is trained as "
        "`upt train` trains it (out-of-fold calibration and threshold rule). Pairwise F1 of the model's merge "
        "decisions over all candidate pairs, before rules and clustering (so it differs from the end-to-end "
        "figures). Strategy `dedupe` is dedupe 3.0.3's own DisagreementLearner (its field distances and "
        "blocking predicates) choosing from a random sample of 1,000 candidate pairs, starting from its own "
        "bootstrap instead of the seed round; model `dedupe` is dedupe's classifier (its F1-tuned logistic "
        "regression) on UPT's comparison vectors. dedupe's own active learning = strategy dedupe + model "
        "dedupe. UPT's default path (`upt label`, then `upt train`'s `auto`) is strategy uncertainty + model "
        "logistic while a class has fewer than 100 labels.\n",
        "| data set | strategy | model | " + " | ".join(f"F1 @{n}" for n in BUDGETS) + " | train s @200 |",
        "|---|---|---|" + "---|" * (len(BUDGETS) + 1),
    ]
    for name, r in results.items():
        for strategy in STRATEGIES:
            for model_name in MODELS:
                cells = []
                for n in BUDGETS:
                    f1 = r.get(f"{strategy}/{model_name}/{n}", {}).get("f1")
                    cells.append("–" if f1 is None else f"{f1:.4f}")
                last = r.get(f"{strategy}/{model_name}/{max(BUDGETS)}", {}).get("train_s", "")
                lines.append(f"| {name} | {strategy} | {model_name} | " + " | ".join(cells) + f" | {last} |")
    lines += [
        "",
        f"UPT's default path against dedupe's own active learning over {len(SEEDS)} seeds (the seed round and "
        "dedupe's sampling are random): mean pairwise F1, and the worst seed in brackets (a run whose labels "
        "hold one class only counts as 0).\n",
        "| data set | path | " + " | ".join(f"F1 @{n} mean (worst)" for n in SEEDED_BUDGETS) + " |",
        "|---|---|" + "---|" * len(SEEDED_BUDGETS),
    ]
    for name, r in results.items():
        for path in SEEDED_PATHS:
            per_seed: list[list[float]] = [r["seeded"][f"{path}/{n}"] for n in SEEDED_BUDGETS]
            lines.append(
                f"| {name} | {path} | "
                + " | ".join(f"{np.mean(v):.4f} ({min(v):.4f})" for v in per_seed)
                + " |"
            )
    write_section("learning", "\n".join(lines) + "\n", results)
