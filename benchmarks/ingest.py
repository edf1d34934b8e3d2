"""Ingest throughput on SQLite and PostgreSQL, and memory against file size.

100,000 generated objects are ingested by `upt ingest`'s own function in a fresh process; a
quarter-size file shows whether peak memory grows with the file (it must not: files are
streamed). The baseline in the same run is plain `json.loads` of every line of the file.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from benchmarks.common import machine, postgres_database, run_measured, write_section

OBJECTS = 100_000


def _make_file(workdir: Path, objects: int) -> Path:
    from pipelines.synthetic import GeneratorConfig, generate

    path = workdir / f"objects-{objects}.jsonl"
    if not path.exists():
        with path.open("w", encoding="utf-8") as f:
            for line, _ in itertools.islice(generate(GeneratorConfig(persons=objects // 3, seed=1)), objects):
                f.write(line + "\n")
    return path


def _ingest(path: Path, env: dict[str, str]) -> dict[str, Any]:
    code = (
        "from pathlib import Path\nfrom pipelines.ingest import ingest_jsonl\n"
        "from profiles.settings import Settings\nfrom profiles.store import open_store\n"
        "s = Settings()\nstore = open_store(s)\n"
        f"t = time.perf_counter()\nr = ingest_jsonl(store, s, Path({str(path)!r}))\n"
        "result = dict(vars(r), ingest_s=round(time.perf_counter() - t, 2))\n"
    )
    return run_measured(code, env)


def _json_baseline(path: Path) -> dict[str, Any]:
    code = (
        f"import json\nt = time.perf_counter()\nn = sum(1 for line in open({str(path)!r}, 'rb') if json.loads(line))\n"
        "result = {'lines': n, 'parse_s': round(time.perf_counter() - t, 2)}\n"
    )
    return run_measured(code)


def run(workdir: Path) -> None:
    big, small = _make_file(workdir, OBJECTS), _make_file(workdir, OBJECTS // 4)
    baseline = _json_baseline(big)
    rows: dict[str, dict[str, Any]] = {}
    home = workdir / "sqlite-home"
    for label, path in (("sqlite 25k", small), ("sqlite 100k", big)):
        target = home / label.replace(" ", "-")
        rows[label] = _ingest(path, {"UPT_HOME": str(target)})
    rows["sqlite 100k re-ingest (no-op)"] = _ingest(big, {"UPT_HOME": str(home / "sqlite-100k")})
    url, drop = postgres_database()
    try:
        rows["postgresql 100k"] = _ingest(
            big, {"UPT_HOME": str(workdir / "pg-home"), "UPT_DATABASE_URL": url}
        )
        rows["postgresql 100k re-ingest (no-op)"] = _ingest(
            big, {"UPT_HOME": str(workdir / "pg-home"), "UPT_DATABASE_URL": url}
        )
    finally:
        drop()
    base_rate = baseline["lines"] / baseline["parse_s"]
    lines = [
        "## Ingest (issue 3)\n",
        f"Machine: {machine()}.\n",
        f"Command: `make bench` (part `ingest`): {OBJECTS:,} generated contract objects (seeded), ingested with "
        "the function behind `upt ingest` in a fresh process per row; batch size 1,000 objects per transaction.\n",
        f"Baseline in the same run: `json.loads` of every line of the same file: {base_rate:,.0f} lines/s.\n",
        "| run | objects in file | new | unchanged | seconds | objects/s | ratio to json.loads | peak RSS MiB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, r in rows.items():
        n = OBJECTS // 4 if "25k" in label else OBJECTS
        rate = n / r["ingest_s"]
        lines.append(
            f"| {label} | {n:,} | {r['inserted']:,} | {r['unchanged']:,} | {r['ingest_s']} | {rate:,.0f} | "
            f"1/{base_rate / rate:,.0f} | {r['peak_rss_mib']} |"
        )
    growth = rows["sqlite 100k"]["peak_rss_mib"] / rows["sqlite 25k"]["peak_rss_mib"]
    lines.append(
        f"\nMemory against file size: a 4x larger file peaks at {growth:.2f}x the memory (streamed in "
        "batches; flat means about 1.0).\n"
    )
    write_section("ingest", "\n".join(lines), {"baseline": baseline, "runs": rows})
