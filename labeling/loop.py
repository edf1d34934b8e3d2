"""The active-learning loop shared by the terminal labeller and the simulated oracle.

Seed round first, then rounds chosen by the strategy; every answer is handed to `save` at once,
so quitting loses nothing. After each round the current model estimates its own precision and
recall on the unlabelled pool (expected values from its calibrated probabilities).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from labeling.strategies import Pool, Strategy, seed_round

BACK = "back"
Ask = Callable[[int], str | None]  # pool row -> "match" | "non_match" | "unsure" | "back" | None (quit)


@dataclass
class LoopReport:
    asked: int = 0
    matches: int = 0
    non_matches: int = 0
    unsure: int = 0
    estimates: list[dict[str, float]] = field(default_factory=list)
    stopped_early: bool = False


def _count(pool: Pool, report: LoopReport, row: int, answer: str) -> None:
    report.asked += 1
    if answer == "match":
        pool.labelled[row] = 1
        report.matches += 1
    elif answer == "non_match":
        pool.labelled[row] = 0
        report.non_matches += 1
    else:
        report.unsure += 1


def _forget(pool: Pool, report: LoopReport, previous: tuple[int, str]) -> None:
    row, answer = previous
    pool.labelled.pop(row, None)
    report.asked -= 1
    if answer == "match":
        report.matches -= 1
    elif answer == "non_match":
        report.non_matches -= 1
    else:
        report.unsure -= 1


def estimate(pool: Pool) -> dict[str, float]:
    """The expected precision and recall at p >= 0.5 over the whole pool of the model `upt train`
    would fit on these labels (`auto`), by its own calibrated probabilities."""
    _, y = pool.training_set()
    if len(np.unique(y)) < 2:
        return {}
    p = pool.trained()[1]
    chosen = p >= 0.5
    return {
        "labels": float(len(y)),
        "estimated_precision": round(float(p[chosen].mean()) if chosen.any() else 1.0, 4),
        "estimated_recall": round(float(p[chosen].sum() / max(p.sum(), 1e-9)), 4),
    }


def run_loop(
    pool: Pool,
    ask: Ask,
    save: Callable[[int, str], None],
    budget: int,
    strategy: Strategy,
    seed_size: int = 10,
    batch: int = 5,
    seed: int = 0,
    progress: Callable[[LoopReport], None] | None = None,
    unsave: Callable[[int], None] | None = None,
) -> LoopReport:
    rng = np.random.default_rng(seed)
    report = LoopReport()
    asked: set[int] = set(pool.labelled)  # labelled in an earlier session: never asked again
    history: list[tuple[int, str]] = []
    first = not pool.labelled and not strategy.own_seed
    while report.asked < budget:
        want = min(seed_size if first else batch, budget - report.asked)
        rows = seed_round(pool, want, asked, rng) if first else strategy.select(pool, want, asked, rng)
        first = False
        if not rows:
            break
        queue = list(rows)
        while queue and report.asked < budget:
            row = queue.pop(0)
            answer = ask(row)
            if answer is None:
                report.stopped_early = True
                return report
            if answer == BACK:
                if history:
                    previous = history.pop()
                    _forget(pool, report, previous)
                    if unsave:
                        unsave(previous[0])
                    queue[:0] = [previous[0], row]  # ask the undone pair again, then this one
                else:
                    queue.insert(0, row)
                continue
            asked.add(row)
            save(row, answer)
            history.append((row, answer))
            _count(pool, report, row, answer)
        current = estimate(pool)
        if current:
            report.estimates.append(current)
        if progress:
            progress(report)
    return report
