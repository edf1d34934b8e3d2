"""Blocking at 1,000,000 mentions (issue 4 targets: embedding < 3 min, blocking < 10 min).

Generated travel data with about a million matchable mentions is ingested (not timed), then
`upt block`'s own function runs once on the whole store in a fresh process: embedding, the index
(IVF above 50k vectors), k-NN, keys, the string pass, the union and the write of the pairs.
"""

from __future__ import annotations

from pathlib import Path

from benchmarks import datasets
from benchmarks.blocking import child
from benchmarks.common import machine, write_section

MENTIONS = 1_000_000


def run(workdir: Path) -> None:
    files, truth = datasets.travel(MENTIONS, workdir / "travel1m", seed=3)
    home = workdir / "home-1m"
    ingest = child("ingest", home=home, files=[str(f) for f in files])
    result = child("block", home=home, truth=str(truth), encoder="static")
    steps = result["step_seconds"]
    lines = [
        "## Blocking at a million mentions (issue 4)\n",
        f"Machine: {machine()}.\n",
        f"Command: `make bench` (part `scale`): generated travel data, {result['mentions']:,} matchable mentions "
        f"(ingest, not timed here: {ingest['wall_s']} s). One `upt block` run on the whole store, shipped settings.\n",
        "| step | seconds |",
        "|---|---|",
        *(f"| {name} | {seconds} |" for name, seconds in steps.items()),
        f"| **whole blocking run** | **{result['block_s']}** |",
        "",
        f"Embedding {result['mentions']:,} mentions took {steps['embed']} s. Recall {result['recall']}, transitive "
        f"recall {result['transitive_recall']}, {result['candidates_per_mention']} candidates per mention, "
        f"{result['candidate_pairs']:,} pairs; comparison vectors at {result['compare_pairs_per_s']:,} pairs/s; "
        f"peak RSS {result['peak_rss_mib']} MiB.\n",
    ]
    write_section("scale", "\n".join(lines), {"ingest": ingest, "block": result})
