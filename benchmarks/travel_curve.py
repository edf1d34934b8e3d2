"""The learning curve end to end on generated travel data: how good the exported profiles are
after 0, 10, 25, 50, 100 and 200 labels, through the documented command line.

usage: python -m benchmarks.travel_curve [--sets 3] [--seed 0] [--budgets 0,10,25,50,100,200]
                                         [--mentions 20000] [--work DIR]

Each set (`benchmarks.travel_sets.SETS`) is ingested and blocked once; then in one store the
labels grow: at 0 labels `upt resolve` runs on the rules alone (`UPT_MERGE_THRESHOLD` and
`UPT_REVIEW_THRESHOLD` at 1: no model merges), and at each later budget `upt label --oracle
--budget` asks the difference, `upt train` trains on every label so far, `upt models promote
challenger` makes it the champion (as a data scientist would; a refusal is reported), `upt
resolve --full` decides every pair with the champion and `upt export` is scored. A data scientist who labels
more must never get worse profiles: the table shows each budget's pairwise and B-cubed F1 and
its change from 50 labels.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.anchors import scores
from benchmarks.common import ROOT, machine, write_section
from benchmarks.compare_commits import upt_in
from benchmarks.travel_sets import SETS, _generate, oracle_label

BUDGETS = (0, 10, 25, 50, 100, 200)
RULES_ONLY = {"UPT_MERGE_THRESHOLD": "1.0", "UPT_REVIEW_THRESHOLD": "1.0"}


def curve(
    tree: Path, objects: Path, truth: Path, work: Path, budgets: tuple[int, ...], seed: int
) -> list[dict[str, Any]]:
    """One set's scores after each budget, labels growing in one store."""
    home, mlruns = work / "home", work / "mlruns"
    upt_in(tree, home, mlruns, "ingest", str(objects), "-q")
    upt_in(tree, home, mlruns, "block", "-q")
    out, labelled = [], 0
    for budget in sorted(budgets):
        assignment = work / f"assignment-{budget}.csv"
        if budget == 0:
            upt_in(tree, home, mlruns, "resolve", "--full", "--json", settings=RULES_ONLY)
            trained: dict[str, Any] = {"model": "none (rules only)", "thresholds": {"merge": 1.0}}
        else:
            oracle_label(tree, home, mlruns, truth, budget - labelled, seed)
            labelled = budget
            trained = json.loads(upt_in(tree, home, mlruns, "train", "--json"))
            trained["promoted"] = "champion" in trained["aliases"] or _promote(tree, home, mlruns)
            upt_in(tree, home, mlruns, "resolve", "--full", "--json")
        upt_in(tree, home, mlruns, "export", "--mentions", str(assignment))
        scored = scores(assignment, truth)
        out.append(
            {
                "labels": budget,
                **scored,
                "model": trained["model"],
                "merge_threshold": trained["thresholds"]["merge"],
                "promoted": trained.get("promoted", True),
            }
        )
        print(f"[bench]   travel curve {budget} labels: {json.dumps(out[-1])}", flush=True)
    return out


def _promote(tree: Path, home: Path, mlruns: Path) -> bool:
    """`upt models promote challenger`, as the data scientist does after training; False when
    the registry refuses it (it scores below the champion on the labels)."""
    try:
        upt_in(tree, home, mlruns, "models", "promote", "challenger")
    except RuntimeError:
        return False
    return True


def measure(
    work: Path, sets: int, seed: int, mentions: int, budgets: tuple[int, ...], tree: Path = ROOT
) -> dict[str, Any]:
    results: dict[str, Any] = {"sets": {}, "mentions": mentions, "seed": seed, "budgets": list(budgets)}
    for index, (name, settings) in enumerate(SETS[:sets]):
        data = work / f"set-{index}"
        objects, truth = _generate(name, settings, index, mentions, data / "data")
        results["sets"][name] = curve(tree, objects, truth, data / "run", budgets, seed)
        shutil.rmtree(data / "run", ignore_errors=True)
    return results


def markdown(results: dict[str, Any]) -> str:
    budgets = results["budgets"]
    lines = [
        "## The learning curve end to end on generated travel data",
        "",
        f"Machine: {machine()}. `python -m benchmarks.travel_curve`: the first {len(results['sets'])} of the "
        f"travel sets above (about {results['mentions']:,} mentions each), labels growing in one store with "
        f"`label --oracle --budget ... --seed {results['seed']}`, then `train`, `models promote challenger`, "
        "`resolve --full`, `export`; "
        "at 0 labels the rules alone (no model merges). Pairwise F1 / B-cubed F1 of the exported assignment, "
        "and in brackets the pairwise change from 50 labels.",
        "",
        "| set | " + " | ".join(f"{b} labels" for b in budgets) + " |",
        "|---|" + "---|" * len(budgets),
    ]
    for name, runs in results["sets"].items():
        at = {r["labels"]: r for r in runs}
        fifty = at.get(50, {}).get("f1")
        cells = []
        for b in budgets:
            r = at[b]
            change = f" ({r['f1'] - fifty:+.3f})" if fifty is not None and b > 50 else ""
            refused = "" if r.get("promoted", True) else " (promotion refused)"
            cells.append(f"{r['f1']:.3f} / {r['b3_f1']:.3f}{change}{refused}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def run(workdir: Path, mentions: int = 20_000) -> None:
    """`make bench`: three sets, labelling seed 0."""
    results = measure(workdir / "travel_curve", 3, 0, mentions, BUDGETS)
    write_section("travel_curve", markdown(results), results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--budgets", default=",".join(map(str, BUDGETS)))
    parser.add_argument("--mentions", type=int, default=20_000)
    parser.add_argument("--work", type=Path)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="upt-travel-curve-"))
    budgets = tuple(int(b) for b in args.budgets.split(","))
    results = measure(work, args.sets, args.seed, args.mentions, budgets)
    print(json.dumps(results))
    print()
    print(markdown(results))


if __name__ == "__main__":
    main()
