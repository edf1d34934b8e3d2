"""`make bench`: run the benchmarks and rewrite BENCHMARKS.md from their result files.

usage: python -m benchmarks.run [NAME ...]   (default: all; names: ingest, blocking, scale, learning, quality,
       travel_sets, travel_curve, online)
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from benchmarks import blocking, ingest, learning, online, quality, scale, travel_curve, travel_sets
from benchmarks.common import rebuild_benchmarks_md

BENCHES = {
    "ingest": ingest.run,
    "blocking": blocking.run,
    "scale": scale.run,
    "learning": learning.run,
    "quality": quality.run,
    "travel_sets": travel_sets.run,
    "travel_curve": travel_curve.run,
    "online": online.run,
}


def main(argv: list[str]) -> None:
    names = argv or list(BENCHES)
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        sys.exit(f"unknown benchmarks {unknown}; choose from {list(BENCHES)}")
    with tempfile.TemporaryDirectory(prefix="upt-bench-") as tmp:
        for name in names:
            started = time.perf_counter()
            print(f"[bench] {name} ...", flush=True)
            BENCHES[name](Path(tmp))
            print(f"[bench] {name} done in {time.perf_counter() - started:.0f} s", flush=True)
    rebuild_benchmarks_md([*BENCHES, "analysis"])  # analysis.md: measured by hand, kept
    print("[bench] BENCHMARKS.md updated")


if __name__ == "__main__":
    main(sys.argv[1:])
