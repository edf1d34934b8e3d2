"""The online core of two commits on the same machine and the same store, measured alternately:
did this change make one-record `match` and resolve faster or slower?

usage: python -m benchmarks.compare_online BASE [--mentions 100000] [--rounds 2] [--work DIR]

One store is prepared with the working tree, as `make bench`'s online part prepares it
(`benchmarks.online_worker split` and `prepare`: generated travel data, seed 3, 400 objects held
back as the records that arrive online; ingest, block, 50 simulated labels, train, one batch
resolve). A `--work` folder keeps it: a later call with the same folder and size measures again
without preparing. Then, each round, BASE (any git revision, checked out into a temporary
worktree and run with this checkout's virtual environment) and the working tree take turns, the
order alternating between rounds, each running `online_worker measure` (300 matches, then 300
objects resolved with their writes, one thread) on a fresh copy of the prepared store. Prints one
line per run and a Markdown table of the medians over rounds and their ratios.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks import datasets
from benchmarks.common import ROOT, machine

CALLS = ("match", "resolve_mention", "resolve_object")


def _worker(tree: Path, kind: str, args: dict[str, Any]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.online_worker", kind, json.dumps(args)],
        cwd=tree,  # the tree's own packages come first on the path
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"online_worker {kind} in {tree} failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _prepared(work: Path, mentions: int) -> dict[str, Any]:
    """The prepared store's paths, preparing it first when the folder has none."""
    paths = {
        "home": str(work / f"home-{mentions}"),
        "mlruns": str(work / f"mlruns-{mentions}"),
        "arriving": str(work / f"arriving-{mentions}.jsonl"),
    }
    marker = work / f"prepared-{mentions}.json"
    if marker.exists():
        return paths
    files, truth = datasets.travel(mentions, work / f"travel-{mentions}", seed=3)
    stored = work / f"stored-{mentions}.jsonl"
    split = {"objects": str(files[0]), "stored": str(stored), "arriving": paths["arriving"], "held_out": 400}
    _worker(ROOT, "split", split)
    built = _worker(ROOT, "prepare", {**paths, "stored": str(stored), "truth": str(truth)})
    marker.write_text(json.dumps(built))
    print(f"prepared: {built}", flush=True)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base")
    parser.add_argument("--mentions", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--work", type=Path)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="upt-compare-online-"))
    work.mkdir(parents=True, exist_ok=True)
    paths = _prepared(work, args.mentions)
    base_tree = Path(tempfile.mkdtemp(prefix="upt-base-"))
    subprocess.run(["git", "worktree", "add", "--detach", str(base_tree), args.base], cwd=ROOT, check=True)
    runs: dict[str, list[dict[str, Any]]] = {"base": [], "head": []}
    copy = work / f"copy-{args.mentions}"
    try:
        for round_ in range(args.rounds):
            order = [("base", base_tree), ("head", ROOT)]
            for side, tree in order if round_ % 2 == 0 else order[::-1]:
                shutil.rmtree(copy, ignore_errors=True)
                shutil.copytree(paths["home"], copy)
                measured = _worker(
                    tree, "measure", {**paths, "home": str(copy), "matches": 300, "resolves": 300}
                )
                runs[side].append(measured)
                line = {c: (measured[c]["p50"], measured[c]["p99"]) for c in CALLS}
                print(json.dumps({"round": round_ + 1, "tree": side, **line}), flush=True)
    finally:
        shutil.rmtree(copy, ignore_errors=True)
        subprocess.run(["git", "worktree", "remove", "--force", str(base_tree)], cwd=ROOT, check=False)
    print(
        f"\nMachine: {machine()}. {args.mentions:,} stored travel mentions, SQLite, {args.rounds} rounds.\n"
    )
    print(
        f"| call | {args.base} p50 ms | working tree p50 ms | ratio | {args.base} p99 ms | working tree p99 ms | ratio |"
    )
    print("|---|---|---|---|---|---|---|")
    for call in CALLS:
        cells = []
        for q in ("p50", "p99"):
            base = statistics.median(r[call][q] for r in runs["base"])
            head = statistics.median(r[call][q] for r in runs["head"])
            cells.append(f"{base:.1f} | {head:.1f} | {head / base:.2f}")
        print(f"| {call.replace('_', ' ')} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
