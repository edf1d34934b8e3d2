"""The online core (issue 17): one record matched or resolved against a stored domain, and the
agreement of one-at-a-time online resolution with one batch run.

Per store size and database: generated travel data, `HELD_OUT` random objects held back as the
records that arrive online; the rest ingested, blocked, labelled (50 simulated answers),
trained and resolved in batch (timed, for scale). Then, in a fresh process and one thread:
`match` of each arriving record's people (nothing written) and the resolution of each arriving
object with its write, percentiles of the whole calls and of their parts.

Scales: `UPT_BENCH_ONLINE_SCALES` (default "100000,1000000"); PostgreSQL is the local server
(`UPT_BENCH_POSTGRES_URL`, default the tests' admin URL), a fresh database per run.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from benchmarks import datasets
from benchmarks.common import machine, postgres_database, run_worker, write_section

HELD_OUT = 400
ADMIN_URL = os.environ.get("UPT_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def child(kind: str, **args: Any) -> dict[str, Any]:
    result = run_worker("benchmarks.online_worker", kind, args, quiet_env=True)
    print(f"[bench]   online {kind} {args.get('home', '')}: done", flush=True)
    return result


def _latency(workdir: Path, mentions: int) -> dict[str, Any]:
    files, truth = datasets.travel(mentions, workdir / f"travel-{mentions}", seed=3)
    stored, arriving = workdir / f"stored-{mentions}.jsonl", workdir / f"arriving-{mentions}.jsonl"
    child("split", objects=str(files[0]), stored=str(stored), arriving=str(arriving), held_out=HELD_OUT)
    out: dict[str, Any] = {}
    for backend in ("sqlite", "postgresql"):
        url, drop = postgres_database() if backend == "postgresql" else (None, None)
        args = {
            "home": str(workdir / f"online-{mentions}-{backend}"),
            "database_url": url,
            "mlruns": str(workdir / f"online-{mentions}-{backend}-mlruns"),
        }
        try:
            built = child("prepare", **args, stored=str(stored), truth=str(truth))
            measured = child("measure", **args, arriving=str(arriving), matches=300, resolves=300)
            out[backend] = {"store": built, **measured}
        finally:
            if drop is not None:
                drop()
    return out


def _agreement(workdir: Path) -> dict[str, Any]:
    from pipelines.synthetic import GeneratorConfig, write_dataset

    info = write_dataset(GeneratorConfig(persons=2000, seed=7, bad_line_rate=0.005), workdir / "demo")
    mlruns = str(workdir / "demo-mlruns")
    batch = {"home": str(workdir / "demo-batch"), "mlruns": mlruns}
    child("prepare", **batch, stored=info["objects_file"], truth=info["truth_file"])
    return child(
        "agreement",
        home=str(workdir / "demo-online"),
        batch_home=batch["home"],
        mlruns=mlruns,
        objects=info["objects_file"],
    )


def _row(scale: str, backend: str, r: dict[str, Any], what: str) -> str:
    part = r[what]
    return f"| {scale} | {backend} | {what.replace('_', ' ')} | {part['calls']} | {part['p50']} | {part['p99']} |"


def _parts_table(r: dict[str, Any], what: str) -> list[str]:
    return [f"| {name} | {v['p50']} | {v['p99']} |" for name, v in r[what]["parts"].items()]


def run(workdir: Path) -> None:
    scales = [int(x) for x in os.environ.get("UPT_BENCH_ONLINE_SCALES", "100000,1000000").split(",") if x]
    agreement = _agreement(workdir)
    latency = {f"{n // 1000}k": _latency(workdir, n) for n in scales}
    lines = [
        "## The online core: one record against the store (issue 17)\n",
        f"Machine: {machine()}.\n",
        "Command: `make bench` (part `online`; `UPT_BENCH_ONLINE_SCALES` picks the store sizes). "
        f"Generated travel data; {HELD_OUT} random objects held back as the records that arrive online, "
        "the rest ingested, blocked, labelled (50 simulated answers), trained and resolved in batch. Then in a "
        "fresh process, one thread, through `pipelines.online.OnlineResolver`: `match` of the arriving records' "
        "people (nothing written) and each arriving object resolved with its write (ingest, candidates, "
        "decisions, the component's profiles), one at a time. Milliseconds.\n",
        "### Agreement with the batch (the demo set)\n",
        f"The demo set (`make demo`'s 2,000 people, {agreement['mentions']:,} mentions) resolved one object at a "
        "time, in file order, through the online core with the model a batch run of the same objects trained, "
        "against that batch run's profiles (taken as the truth):\n",
        "| | pairwise P | pairwise R | pairwise F1 | B-cubed F1 |",
        "|---|---|---|---|---|",
        "| online, one object at a time | {precision} | {recall} | **{f1}** | {b3_f1} |".format(
            **agreement["online_vs_batch"]
        ),
        "| the same store after one `upt resolve` | {precision} | {recall} | {f1} | {b3_f1} |".format(
            **agreement["after_a_batch_run"]
        ),
        "",
        f"Objects resolved one at a time: p50 {agreement['object_ms']['p50']} ms, p99 {agreement['object_ms']['p99']} ms "
        "(the store growing from empty).\n",
        "### Latency\n",
        "| stored mentions | database | call | calls | p50 ms | p99 ms |",
        "|---|---|---|---|---|---|",
    ]
    for scale, backends in latency.items():
        for backend, r in backends.items():
            for what in ("match", "resolve_mention", "resolve_object"):
                lines.append(_row(scale, backend, r, what))
    lines.append("")
    for scale, backends in latency.items():
        for backend, r in backends.items():
            store = r["store"]
            lines += [
                f"**{scale}, {backend}**: {store['mentions']:,} mentions in {store['profiles']:,} profiles "
                f"(batch steps, seconds: {store['seconds']}); resolver start {r['start_s']} s; match decisions "
                f"{r['match_decisions']}; resolve actions {r['actions']}; peak RSS {r['peak_rss_mib']} MiB.\n",
                "| part of `match` | p50 ms | p99 ms |",
                "|---|---|---|",
                *_parts_table(r, "match"),
                "",
                "| part of resolving one mention | p50 ms | p99 ms |",
                "|---|---|---|",
                *_parts_table(r, "resolve_mention"),
                "",
            ]
    write_section("online", "\n".join(lines), {"agreement": agreement, "latency": latency})
