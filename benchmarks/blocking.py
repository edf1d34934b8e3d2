"""Blocking and comparison benchmark (issue 4).

Per data set (Febrl3, Febrl4, generated travel data with 100,000 mentions), in fresh processes:
ingest, then `upt block`'s own function with the shipped encoder, evaluated against the truth;
the comparison vector of every candidate pair, timed (best of 7) against the same string features
scored one pair at a time in Python (the baseline, same run). Then the encoders' throughput and
single-record latency, each backend's blocking recall, and the index's build time and latency.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks import datasets
from benchmarks.common import machine, run_worker, write_section
from features.embedding.encoders import BACKENDS

TRAVEL_MENTIONS = 100_000
BACKEND_SAMPLE_MENTIONS = 20_000


def child(kind: str, **args: Any) -> dict[str, Any]:
    result = run_worker("benchmarks.blocking_worker", kind, args)
    print(
        f"[bench]   {kind} {args.get('home', '')} {args.get('encoder', args.get('backend', ''))}: done",
        flush=True,
    )
    return result


def run(workdir: Path) -> None:
    sets = {
        "febrl3": datasets.febrl("febrl3", workdir / "febrl3"),
        "febrl4": datasets.febrl("febrl4", workdir / "febrl4"),
        f"travel {TRAVEL_MENTIONS // 1000}k": datasets.travel(TRAVEL_MENTIONS, workdir / "travel"),
        "travel 20k (backend comparison)": datasets.travel(
            BACKEND_SAMPLE_MENTIONS, workdir / "travel20", seed=2
        ),
    }
    homes = {name: workdir / f"home-{i}" for i, name in enumerate(sets)}
    quality: dict[str, Any] = {}
    for name, (files, truth) in sets.items():
        child("ingest", home=homes[name], files=[str(f) for f in files])
        if "backend" not in name:
            quality[name] = child("block", home=homes[name], truth=str(truth), encoder="static")
    travel_home = homes[f"travel {TRAVEL_MENTIONS // 1000}k"]
    baseline = child("python_loop_baseline", home=travel_home, pairs=50_000)

    backends: dict[str, dict[str, Any]] = {}
    for backend in BACKENDS:
        backends[backend] = {
            "throughput": child(
                "encoders", home=travel_home, backend=backend, texts=3000 if backend == "minilm" else 20_000
            )
        }
        for name in ("febrl3", "febrl4", "travel 20k (backend comparison)"):
            result = child("block", home=homes[name], truth=str(sets[name][1]), encoder=backend)
            backends[backend][name] = {
                "recall": result["recall"],
                "transitive_recall": result["transitive_recall"],
                "embedding_recall": result["blockers"]["embedding"]["recall"],
                "candidates_per_mention": result["candidates_per_mention"],
            }
    index = child("index", home=travel_home, vectors=TRAVEL_MENTIONS)
    _write(quality, baseline, backends, index)


def _write(
    quality: dict[str, Any], baseline: dict[str, Any], backends: dict[str, Any], index: dict[str, Any]
) -> None:
    lines = [
        "## Blocking and comparison vectors (issue 4)\n",
        f"Machine: {machine()}.\n",
        "Command: `make bench` (part `blocking`). Shipped encoder: `static` (model2vec distilled from "
        "all-MiniLM-L6-v2, 256 dimensions), k = 5 neighbours, cosine floor 0.75, identifier keys over 50 mentions and name keys over 30 skipped, "
        "string pass k = 3, exact index up to 50,000 vectors then IVF (16 lists probed). "
        "`recall` is the share of true pairs that are candidates; `transitive recall` the share of true pairs "
        "joined by a path of true candidate pairs (what clustering can reach); `recall beyond a name` the "
        "recall over the true pairs that agree on something besides the name (a contact, a birth date "
        "or a near-typo of it, an identifier, a postal code or street, a booking: what the resolver "
        "wants before a model merge stands); candidates per mention = candidate pairs / mentions.\n",
        "| data set | mentions | true pairs | candidate pairs | recall | transitive recall "
        "| true pairs beyond a name | recall beyond a name | candidates per mention "
        "| reduction ratio | blocking s | peak RSS MiB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in quality.items():
        lines.append(
            f"| {name} | {r['mentions']:,} | {r['true_pairs']:,} | {r['candidate_pairs']:,} | {r['recall']} "
            f"| {r['transitive_recall']} | {r['true_pairs_beyond_name']:,} | {r['recall_beyond_name']} "
            f"| {r['candidates_per_mention']} | {r['reduction_ratio']} "
            f"| {r['block_s']} | {r['peak_rss_mib']} |"
        )
    lines += [
        "",
        "Each blocker's own contribution (true pairs it found; found by it alone):",
        "",
        "| data set | " + " | ".join(next(iter(quality.values()))["blockers"]) + " |",
        "|---|" + "---|" * len(next(iter(quality.values()))["blockers"]),
    ]
    for name, r in quality.items():
        cells = [f"{b['true_pairs_found']:,} ({b['found_by_it_alone']:,})" for b in r["blockers"].values()]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Step seconds of the blocking run: "
        + "; ".join(f"{name}: {r['step_seconds']}" for name, r in quality.items()),
        "",
    ]
    lines += [
        "### Comparison vectors\n",
        "| data set | pairs/s (whole vector, vectorized) | features | per-pair Python baseline, 7 string "
        "features (pairs/s) | ratio |",
        "|---|---|---|---|---|",
    ]
    for name, r in quality.items():
        lines.append(
            f"| {name} | {r['compare_pairs_per_s']:,} | {r['features']} | {baseline['pairs_per_s']:,} | "
            f"{r['compare_pairs_per_s'] / baseline['pairs_per_s']:.1f}x |"
        )
    lines += [
        "",
        "### Encoders\n",
        "Throughput on real mention texts of the travel data (batches of 4,096), single-record latency (median "
        "of 200), and blocking with each backend (whole pipeline, same settings):\n",
        "| backend | mentions/s | 1M mentions would take | one record ms | "
        + " | ".join(
            f"{n}: recall / transitive / embedding-only recall"
            for n in ("febrl3", "febrl4", "travel 20k (backend comparison)")
        )
        + " |",
        "|---|---|---|---|---|---|---|",
    ]
    for backend, r in backends.items():
        t = r["throughput"]
        cells = [
            f"{r[n]['recall']} / {r[n]['transitive_recall']} / {r[n]['embedding_recall']}"
            for n in ("febrl3", "febrl4", "travel 20k (backend comparison)")
        ]
        minutes = 1_000_000 / t["per_s"] / 60
        lines.append(
            f"| {backend} | {t['per_s']:,} | {minutes:.1f} min | {t['single_ms_median']} | "
            + " | ".join(cells)
            + " |"
        )
    base = backends["minilm"]["throughput"]["per_s"]
    lines += [
        "",
        "Speed relative to the full model in the same run: "
        + ", ".join(f"{b} {r['throughput']['per_s'] / base:.1f}x" for b, r in backends.items())
        + ".",
        "",
    ]
    lines += [
        "### Candidate index\n",
        f"{index['vectors']:,} real static vectors ({index['dim']} dimensions) of the travel data:\n",
        "| index | build s | one query ms | batch queries/s |",
        "|---|---|---|---|",
        f"| exact (inner product) | {index['exact_build_s']} | {index['exact_single_query_ms']} | "
        f"{index['exact_batch_queries_per_s']:,} |",
        f"| IVF, {index.get('ivf_lists', '')} lists, 16 probed (shipped) | {index['ivf_build_s']} | "
        f"{index['ivf_single_query_ms']} | {index['ivf_batch_queries_per_s']:,} |",
        f"| HNSW M=32, efSearch 128 | {index['hnsw_build_s']} | {index['hnsw_single_query_ms']} | "
        f"{index['hnsw_batch_queries_per_s']:,} |",
        "",
        f"Recall@10 against exact search: IVF {index['ivf_recall_at_10']}, HNSW {index['hnsw_recall_at_10']} "
        "(many mentions share one record text, so ties make both figures understate what is found).",
        "",
    ]
    write_section(
        "blocking",
        "\n".join(lines),
        {"quality": quality, "baseline": baseline, "backends": backends, "index": index},
    )
