"""Match quality on generated travel data that differs in its generator settings, over several
labelling seeds: the documented command line (`ingest`, `block`, `label --oracle --budget 50
--seed S`, `train`, `resolve`, `export`) on each set, each seed, scored on the exported assignment.

usage: python -m benchmarks.travel_sets [--sets 8] [--seeds 5] [--mentions 20000] [--budget 50]
                                        [--base REV] [--work DIR] [--no-anchors] [--json PATH]

With `--base`, that git revision (checked out into a temporary worktree, run with this checkout's
virtual environment) runs the same sets and seeds beside the working tree, each on a store it
ingested and blocked itself, so that a change to ingest or blocking is measured too. Prints one
line per run and a Markdown table: pairwise and B-cubed F1, mean and worst seed, per set and over
all sets. `make bench` runs it without `--base` (`run`).

Beside UPT, on every set, the anchor tools run on the same store's normalized mention table
(`benchmarks.anchors`, each in its own process): Splink (unsupervised, once per set, in two
configurations: its documented recipe and the fuller one of its FEBRL demos) and
recordlinkage (logistic regression on the 50 labels UPT's seed-0 run chose; ECM unsupervised).
dedupe is not run (its memory: `quality.DEDUPE_MAX_MENTIONS`).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from benchmarks import anchors
from benchmarks.common import ROOT, machine, run_measured, write_section
from benchmarks.compare_commits import upt_in
from benchmarks.quality import RECORDLINKAGE_MAX_MENTIONS

# dedupe is left out: 10.6 GB on 5,000 records (see quality.DEDUPE_MAX_MENTIONS)
TRAVEL_ANCHORS = ("splink", "splink-full", "recordlinkage-logistic", "recordlinkage-ecm")

# (name, generator settings besides the number of people and the seed): one knob moved at a time
# from the generator's defaults (household share 0.3, typo rate 0.08, nickname rate 0.15,
# update rate 0.03), then two together.
SETS: tuple[tuple[str, dict[str, float]], ...] = (
    ("defaults", {}),
    ("households 0.6", {"household_rate": 0.6}),
    ("few households 0.1", {"household_rate": 0.1}),
    ("typos 0.16", {"typo_rate": 0.16}),
    ("clean 0.02", {"typo_rate": 0.02}),
    ("nicknames 0.35", {"nickname_rate": 0.35}),
    ("updates 0.15", {"update_rate": 0.15}),
    ("households 0.5 + typos 0.14", {"household_rate": 0.5, "typo_rate": 0.14}),
)


def _generate(
    name: str, settings: dict[str, float], index: int, mentions: int, out: Path
) -> tuple[Path, Path]:
    from benchmarks.datasets import MENTIONS_PER_PERSON
    from pipelines.synthetic import GeneratorConfig, write_dataset

    persons = round(mentions / MENTIONS_PER_PERSON)
    info = write_dataset(GeneratorConfig(persons=persons, seed=100 + index, **settings), out)
    return Path(info["objects_file"]), Path(info["truth_file"])


def oracle_label(tree: Path, home: Path, mlruns: Path, truth: Path, budget: int, seed: int) -> str:
    """`upt label --oracle TRUTH --budget N --seed S` in that store."""
    args = ("label", "--oracle", str(truth), "--budget", str(budget), "--seed", str(seed), "--json")
    return upt_in(tree, home, mlruns, *args)


def run_set(
    tree: Path, objects: Path, truth: Path, work: Path, seeds: int, budget: int, keep_labels: bool = False
) -> list[dict[str, Any]]:
    """One tree on one data set: ingested and blocked once, then labelled, trained, resolved and
    exported from that state once per labelling seed. With `keep_labels`, the normalized mention
    table (`records.parquet`) and seed 0's labels (`labels.csv`) stay in `work` for the anchors."""
    blocked = work / "blocked"
    upt_in(tree, blocked, work / "mlruns-blocked", "ingest", str(objects), "-q")
    upt_in(tree, blocked, work / "mlruns-blocked", "block", "-q")
    if keep_labels:
        anchors.write_records(blocked, work / "records.parquet")
    out = []
    for seed in range(seeds):
        home, mlruns = work / f"home-{seed}", work / f"mlruns-{seed}"
        shutil.copytree(blocked, home)
        oracle_label(tree, home, mlruns, truth, budget, seed)
        trained = json.loads(upt_in(tree, home, mlruns, "train", "--json"))
        upt_in(tree, home, mlruns, "resolve", "--json")
        upt_in(tree, home, mlruns, "export", "--mentions", str(work / f"assignment-{seed}.csv"))
        if keep_labels and seed == 0:
            upt_in(tree, home, mlruns, "labels", "export", str(work / "labels.csv"))
        scores = anchors.scores(work / f"assignment-{seed}.csv", truth)
        out.append(
            {
                "seed": seed,
                **scores,
                "model": trained["model"],
                "merge_threshold": trained["thresholds"]["merge"],
            }
        )
        shutil.rmtree(home)
        shutil.rmtree(mlruns, ignore_errors=True)
    return out


def run_anchors(work: Path, truth: Path, mentions: int) -> dict[str, Any]:
    """The anchor tools on one set, on what `run_set(..., keep_labels=True)` left in `work`."""
    out: dict[str, Any] = {}
    for tool in TRAVEL_ANCHORS:
        if tool.startswith("recordlinkage") and mentions > RECORDLINKAGE_MAX_MENTIONS:
            out[tool] = {"skipped": f"not run above {RECORDLINKAGE_MAX_MENTIONS:,} mentions"}
            continue
        assignment = work / f"assignment-{tool}.csv"
        try:
            measured = run_measured(
                anchors.child_code(tool, work / "records.parquet", work / "labels.csv", assignment)
            )
            out[tool] = {**anchors.scores(assignment, truth), **measured}
        except RuntimeError as exc:
            out[tool] = {"failed": str(exc).strip().splitlines()[-1][:300]}
    return out


def _summary(runs: list[dict[str, Any]]) -> dict[str, float]:
    f1, b3 = [r["f1"] for r in runs], [r["b3_f1"] for r in runs]
    return {
        "f1_mean": round(statistics.mean(f1), 4),
        "f1_worst": min(f1),
        "b3_mean": round(statistics.mean(b3), 4),
        "b3_worst": min(b3),
        "precision_mean": round(statistics.mean(r["precision"] for r in runs), 4),
        "recall_mean": round(statistics.mean(r["recall"] for r in runs), 4),
    }


def measure(
    work: Path,
    sets: int,
    seeds: int,
    mentions: int,
    budget: int,
    trees: dict[str, Path],
    with_anchors: bool = True,
) -> dict[str, Any]:
    results: dict[str, Any] = {"sets": {}, "mentions": mentions, "seeds": seeds, "budget": budget}
    for index, (name, settings) in enumerate(SETS[:sets]):
        data = work / f"set-{index}"
        objects, truth = _generate(name, settings, index, mentions, data / "data")
        results["sets"][name] = {"settings": settings}
        for side, tree in trees.items():
            # the anchors run on the store and labels of the tree measured (the last one)
            keep = with_anchors and side == list(trees)[-1]
            runs = run_set(tree, objects, truth, data / side, seeds, budget, keep_labels=keep)
            results["sets"][name][side] = {"runs": runs, **_summary(runs)}
            print(f"[bench]   travel sets {name} {side}: {json.dumps(_summary(runs))}", flush=True)
            if keep:
                results["sets"][name]["anchors"] = run_anchors(data / side, truth, mentions)
                print(
                    f"[bench]   travel sets {name} anchors: {json.dumps(results['sets'][name]['anchors'])}",
                    flush=True,
                )
            shutil.rmtree(data / side, ignore_errors=True)
    for side in trees:
        every = [r for s in results["sets"].values() for r in s[side]["runs"]]
        results[side] = _summary(every)
        results[side]["set_means_worst_f1"] = min(s[side]["f1_mean"] for s in results["sets"].values())
    return results


def markdown(results: dict[str, Any], trees: dict[str, str]) -> str:
    sides = list(trees)
    head = " | ".join(f"{trees[s]} F1 mean / worst | {trees[s]} B3 mean / worst" for s in sides)
    lines = [
        "## Match quality on generated travel data, several generator settings and labelling seeds",
        "",
        f"Machine: {machine()}. `python -m benchmarks.travel_sets`: {len(results['sets'])} generated travel "
        f"sets of about {results['mentions']:,} mentions (generator seeds 100, 101, ...; one setting moved "
        f"per set), each ingested and blocked once, then `label --oracle --budget {results['budget']} --seed S`, "
        f"`train`, `resolve`, `export` for S = 0..{results['seeds'] - 1}; pairwise and B-cubed F1 of the "
        "exported assignment (mean over seeds, and the worst seed).",
        "",
        f"| set | {head} |",
        "|---|" + "---|---|" * len(sides),
    ]
    for name, per_set in results["sets"].items():
        cells = " | ".join(
            f"{per_set[s]['f1_mean']:.3f} / {per_set[s]['f1_worst']:.3f} | "
            f"{per_set[s]['b3_mean']:.3f} / {per_set[s]['b3_worst']:.3f}"
            for s in sides
        )
        lines.append(f"| {name} | {cells} |")
    cells = " | ".join(
        f"**{results[s]['f1_mean']:.3f}** / {results[s]['f1_worst']:.3f} | "
        f"**{results[s]['b3_mean']:.3f}** / {results[s]['b3_worst']:.3f}"
        for s in sides
    )
    lines.append(f"| all sets | {cells} |")
    lines.append("")
    for s in sides:
        lines.append(
            f"{trees[s]}: pairwise precision {results[s]['precision_mean']:.3f}, recall "
            f"{results[s]['recall_mean']:.3f} (means over every set and seed)."
        )
    lines += anchor_lines(results, sides[-1], trees[sides[-1]])
    return "\n".join(lines) + "\n"


def anchor_lines(results: dict[str, Any], side: str, label: str) -> list[str]:
    """The anchors beside UPT on each set, and UPT's lead: its worst seed against the best anchor,
    on each measure."""
    measured = {n: s for n, s in results["sets"].items() if "anchors" in s}
    if not measured:
        return []
    tools = [t for t in TRAVEL_ANCHORS if any("f1" in s["anchors"].get(t, {}) for s in measured.values())]
    lines = [
        "",
        f"The anchors on the same sets in the same run (on the normalized mention table of {label}'s store; "
        "Splink unsupervised, recordlinkage logistic regression on the labels of UPT's seed-0 run, recordlinkage "
        f"ECM unsupervised; dedupe is not run here: it took 10.6 GB on Febrl3's 5,000 records, see `quality`), pairwise F1 / B-cubed F1, "
        f"and {label}'s lead: its worst seed minus the best anchor:",
        "",
        f"| set | {label} mean | " + " | ".join(tools) + " | lead F1 | lead B3 |",
        "|---|---|" + "---|" * len(tools) + "---|---|",
    ]
    for name, per_set in measured.items():
        upt = per_set[side]
        cells = []
        best_f1 = best_b3 = 0.0
        for tool in tools:
            r = per_set["anchors"].get(tool, {})
            if "f1" in r:
                cells.append(f"{r['f1']:.3f} / {r['b3_f1']:.3f}")
                best_f1, best_b3 = max(best_f1, r["f1"]), max(best_b3, r["b3_f1"])
            else:
                cells.append(str(r.get("skipped") or r.get("failed") or "not run"))
        lines.append(
            f"| {name} | {upt['f1_mean']:.3f} / {upt['b3_mean']:.3f} | "
            + " | ".join(cells)
            + f" | {upt['f1_worst'] - best_f1:+.3f} | {upt['b3_worst'] - best_b3:+.3f} |"
        )
    return lines


def run(workdir: Path, mentions: int = 20_000) -> None:
    """`make bench`: the working tree on eight sets, five labelling seeds each."""
    results = measure(workdir / "travel_sets", len(SETS), 5, mentions, 50, {"head": ROOT}, with_anchors=True)
    write_section("travel_sets", markdown(results, {"head": "UPT"}), results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", type=int, default=len(SETS))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--mentions", type=int, default=20_000)
    parser.add_argument("--budget", type=int, default=50)
    parser.add_argument("--base")
    parser.add_argument("--work", type=Path)
    parser.add_argument("--no-anchors", action="store_true", help="UPT only, no anchor tools")
    parser.add_argument("--json", type=Path, help="write every run's figures here")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="upt-travel-sets-"))
    work.mkdir(parents=True, exist_ok=True)
    trees: dict[str, Path] = {}
    base_tree = None
    if args.base:
        base_tree = Path(tempfile.mkdtemp(prefix="upt-base-"))
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(base_tree), args.base], cwd=ROOT, check=True
        )
        trees["base"] = base_tree
    trees["head"] = ROOT
    try:
        results = measure(
            work, args.sets, args.seeds, args.mentions, args.budget, trees, with_anchors=not args.no_anchors
        )
    finally:
        if base_tree is not None:
            subprocess.run(["git", "worktree", "remove", "--force", str(base_tree)], cwd=ROOT, check=False)
    names = {"base": args.base or "", "head": "working tree"}
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({s: results[s] for s in trees}))
    print()
    print(markdown(results, {s: names[s] for s in trees}))


if __name__ == "__main__":
    main()
