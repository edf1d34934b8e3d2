"""The batch path of two commits on the same machine, timed alternately: is this change slower?

usage: python -m benchmarks.compare_commits BASE [--rounds 3] [--mentions 100000] [--work DIR]

BASE (any git revision) is checked out into a temporary worktree; both it and the working tree
run the documented command line with this checkout's virtual environment (so a BASE whose
dependencies differ needs them installed here too). Per tree, in a fresh store of the same
generated travel data (seed 2, as the quality bench): `upt ingest` and `upt block` timed, 50
simulated labels and `upt train`; then, alternating the trees' order each round, `upt resolve`
on a copy of the store as ingested (it blocks first) + `upt export`, each timed run scored.
Prints one JSON line per run and a Markdown table with the medians and their ratio. One run
moves by 20-40% on a shared machine; the alternation and the medians are what make the ratio
worth reading. The quality figure is one label session per tree: active learning's 50
questions depend on the candidate pairs, so a small change of blocking changes which questions
are asked (see the analysis).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import datasets
from benchmarks.common import ROOT, machine
from training.metrics import cluster_scores

LABELS = 50


def upt_in(tree: Path, home: Path, mlruns: Path, *args: str, settings: dict[str, str] | None = None) -> str:
    """`upt ARGS` as the command line of `tree` (a checkout), on the store `home` and the MLflow
    store `mlruns`, with this checkout's virtual environment (and `settings`, more UPT_ variables);
    its standard output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("UPT_")}
    env.update({"UPT_HOME": str(home), "UPT_MLFLOW_TRACKING_URI": str(mlruns), "PYTHONPATH": str(tree)})
    env.update(settings or {})
    done = subprocess.run(
        [sys.executable, "-c", "from pipelines.cli import run; run()", *args],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"upt {' '.join(args)} in {tree} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def _scores(assignment: Path, truth: Path) -> dict[str, float]:
    with assignment.open() as f:
        assigned = {r["mention_key"]: r["profile_id"] for r in csv.DictReader(f)}
    with truth.open() as f:
        expected = {r["mention_key"]: r["person_id"] for r in csv.DictReader(f)}
    scores = cluster_scores(expected, assigned)
    return {"f1": round(scores["f1"], 4), "b3_f1": round(scores["b3_f1"], 4)}


def _timed_upt(tree: Path, home: Path, mlruns: Path, *args: str) -> tuple[str, float]:
    started = time.perf_counter()
    out = upt_in(tree, home, mlruns, *args)
    return out, time.perf_counter() - started


def compare(base: str, rounds: int, mentions: int, work: Path) -> dict[str, Any]:
    """Set-up and timed rounds of BASE and the working tree; see the module docstring."""
    revision = subprocess.run(
        ["git", "rev-parse", "--short", base], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    worktree = work / "base-tree"
    subprocess.run(["git", "worktree", "add", "--detach", str(worktree), revision], cwd=ROOT, check=True)
    trees = {f"base {revision}": worktree, "working tree": ROOT}
    try:
        files, truth = datasets.travel(mentions, work / "travel", seed=2)
        setup: dict[str, dict[str, float]] = {}
        for n, (name, tree) in enumerate(trees.items()):
            home, mlruns = work / f"home-{n}", work / f"mlruns-{n}"
            _, ingest_s = _timed_upt(tree, home, mlruns, "ingest", str(files[0]), "-q")
            shutil.copytree(home, work / f"ingested-{n}")
            _, block_s = _timed_upt(tree, home, mlruns, "block", "-q")
            upt_in(tree, home, mlruns, "label", "--oracle", str(truth), "--budget", str(LABELS), "--json")
            upt_in(tree, home, mlruns, "train", "--json")
            setup[name] = {"ingest_s": round(ingest_s, 1), "block_s": round(block_s, 1)}
            print(json.dumps({"tree": name, **setup[name]}), flush=True)
        runs: list[dict[str, Any]] = []
        for r in range(rounds):
            order = list(enumerate(trees.items()))
            for n, (name, tree) in order if r % 2 == 0 else order[::-1]:
                home, mlruns, out = work / f"timed-{n}", work / f"mlruns-{n}", work / f"assignment-{n}.csv"
                shutil.rmtree(home, ignore_errors=True)
                shutil.copytree(work / f"ingested-{n}", home)
                report, resolve_s = _timed_upt(tree, home, mlruns, "resolve", "--json")
                _, export_s = _timed_upt(tree, home, mlruns, "export", "--mentions", str(out))
                seconds = round(resolve_s + export_s, 1)
                run = {"round": r + 1, "tree": name, "resolve_and_export_s": seconds, **_scores(out, truth)}
                run["steps_s"] = json.loads(report)["seconds"]
                runs.append(run)
                print(json.dumps(run), flush=True)
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(worktree)], cwd=ROOT, check=False)
    medians = {
        name: round(statistics.median(r["resolve_and_export_s"] for r in runs if r["tree"] == name), 2)
        for name in trees
    }
    return {"machine": machine(), "mentions": mentions, "setup": setup, "runs": runs, "medians": medians}


def markdown(result: dict[str, Any]) -> str:
    """The comparison as a Markdown table, for BENCHMARKS.md's analysis part."""
    names = list(result["setup"])
    lines = [
        f"Machine: {result['machine']}. Travel data, {result['mentions']:,} mentions (seed 2).\n",
        "| tree | ingest s | block s | resolve + export s, each round | median | F1 | B-cubed F1 |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in names:
        runs = [r for r in result["runs"] if r["tree"] == name]
        lines.append(
            f"| {name} | {result['setup'][name]['ingest_s']} | {result['setup'][name]['block_s']} | "
            f"{', '.join(str(r['resolve_and_export_s']) for r in runs)} | {result['medians'][name]} | "
            f"{runs[-1]['f1']} | {runs[-1]['b3_f1']} |"
        )
    base, new = (result["medians"][n] for n in names)
    lines.append(f"\nWorking tree / base, medians of resolve + export: **{new / base:.3f}**.")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", help="the git revision to compare the working tree with")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--mentions", type=int, default=100_000)
    parser.add_argument("--work", type=Path, help="a folder for the stores (default: a temporary one)")
    args = parser.parse_args()
    if args.work is not None:
        args.work.mkdir(parents=True, exist_ok=True)
        result = compare(args.base, args.rounds, args.mentions, args.work)
    else:
        with tempfile.TemporaryDirectory(prefix="upt-compare-") as tmp:
            result = compare(args.base, args.rounds, args.mentions, Path(tmp))
    print(markdown(result))


if __name__ == "__main__":
    main()
