"""Child-process work of the online benchmark (one store or one measurement per process).

usage: python -m benchmarks.online_worker KIND ARGS_JSON   -> prints one JSON line
"""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import peak_rss_mib, reset_peak


def _settings(args: dict[str, Any]) -> Any:
    from profiles.settings import Settings

    return Settings(
        home=Path(args["home"]),
        database_url=args.get("database_url"),
        mlflow_tracking_uri=args["mlruns"],
        ingest_batch_size=1000,
    )


def split(args: dict[str, Any]) -> dict[str, Any]:
    """Hold `held_out` random objects (seeded) of a generated file out of the store: the records
    that arrive online."""
    lines = [x for x in Path(args["objects"]).read_bytes().splitlines() if x.strip()]
    rng = random.Random(args.get("seed", 11))
    held = set(rng.sample(range(len(lines)), args["held_out"]))
    Path(args["stored"]).write_bytes(b"\n".join(x for i, x in enumerate(lines) if i not in held) + b"\n")
    Path(args["arriving"]).write_bytes(b"\n".join(x for i, x in enumerate(lines) if i in held) + b"\n")
    return {"objects": len(lines), "held_out": len(held)}


def prepare(args: dict[str, Any]) -> dict[str, Any]:
    """The store the online requests run against, as a user gets it: ingest, block, 50 simulated
    labels, train, one batch resolve; each step timed."""
    from labeling.oracle import SimulatedOracle
    from pipelines.block import run_block
    from pipelines.ingest import ingest_path
    from pipelines.label import label_pairs
    from pipelines.resolve import run_resolve
    from profiles.store import open_store
    from training.train import train

    settings = _settings(args)
    store = open_store(settings)
    seconds: dict[str, float] = {}
    clock = time.perf_counter()
    ingest_path(store, settings, Path(args["stored"]))
    seconds["ingest"] = time.perf_counter() - clock
    clock = time.perf_counter()
    run_block(store, settings)
    seconds["block"] = time.perf_counter() - clock
    oracle = SimulatedOracle.from_file(Path(args["truth"]))
    clock = time.perf_counter()
    label_pairs(
        store, lambda r, p: oracle.answer(*p.keys([r])[0]), oracle.labeller, oracle.origin, 50, "uncertainty"
    )
    seconds["label"] = time.perf_counter() - clock
    clock = time.perf_counter()
    train(store, settings, "auto")
    seconds["train"] = time.perf_counter() - clock
    clock = time.perf_counter()
    report = run_resolve(store, settings)
    seconds["resolve"] = time.perf_counter() - clock
    return {
        "mentions": report.mentions,
        "profiles": report.profiles,
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
        "peak_rss_mib": peak_rss_mib(),
    }


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50": 0.0, "p99": 0.0}
    ms = np.array(values) * 1000
    return {"p50": round(float(np.percentile(ms, 50)), 2), "p99": round(float(np.percentile(ms, 99)), 2)}


def _parts(rows: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    names = sorted({k for r in rows for k in r})
    return {n: _percentiles([r.get(n, 0.0) for r in rows]) for n in names}


def measure(args: dict[str, Any]) -> dict[str, Any]:
    """One thread, in this process: the resolver started; `match` of the people of the arriving
    records (not stored; nothing written); then each arriving object resolved with its write, one
    at a time. Percentiles of whole calls and of their parts."""
    from pipelines.online import OnlineResolver
    from profiles.contract import parse_line
    from profiles.mentions import extract_mentions
    from profiles.store import open_store

    settings = _settings(args)
    store = open_store(settings)
    reset_peak()
    clock = time.perf_counter()
    resolver = OnlineResolver(store, settings)
    started = time.perf_counter() - clock
    objects = []
    for raw in Path(args["arriving"]).read_bytes().splitlines():
        try:
            objects.append(parse_line(raw, settings.max_line_bytes))
        except Exception:  # the generated set's deliberately broken lines
            continue
    people = [m.person for obj in objects for m in extract_mentions(obj) if m.person.matchable]
    people = people[: args.get("matches", 300)]
    resolver.match(people[0])  # the first call loads the champion
    match_times, match_parts, decisions = [], [], {"merge": 0, "review": 0, "no_match": 0}
    for person in people:
        clock = time.perf_counter()
        result = resolver.match(person)
        match_times.append(time.perf_counter() - clock)
        match_parts.append(result.seconds)
        decisions[result.decision] += 1
    object_times: list[float] = []
    mention_times: list[float] = []
    mention_parts: list[dict[str, float]] = []
    revisit_times: list[float] = []
    actions: dict[str, int] = {}
    # "inline": an object's time includes resolving again the mentions it changed; "queued": it
    # answers first, and the queue is worked off before the next object (timed apart), so the
    # store ends the same either way
    queued = args.get("revisit", "inline") == "queued"
    for obj in objects[: args.get("resolves", 300)]:
        clock = time.perf_counter()
        (outcome,) = resolver.resolve_objects([obj], revisit=not queued)
        object_times.append(time.perf_counter() - clock)
        if queued and any(m.queued for m in outcome.mentions):
            clock = time.perf_counter()
            resolver.revisit_pending()
            revisit_times.append(time.perf_counter() - clock)
        for mention in outcome.mentions:
            actions[mention.action] = actions.get(mention.action, 0) + 1
            if mention.seconds:
                mention_times.append(sum(mention.seconds.values()))
                mention_parts.append(mention.seconds)
    return {
        "start_s": round(started, 2),
        "match": {"calls": len(match_times), **_percentiles(match_times), "parts": _parts(match_parts)},
        "match_decisions": decisions,
        "resolve_mention": {
            "calls": len(mention_times),
            **_percentiles(mention_times),
            "parts": _parts(mention_parts),
        },
        "resolve_object": {"calls": len(object_times), **_percentiles(object_times)},
        "revisit": "queued" if queued else "inline",
        "revisits_after_object": {"calls": len(revisit_times), **_percentiles(revisit_times)},
        "actions": actions,
        "peak_rss_mib": peak_rss_mib(),
    }


def _rounded(scores: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 4) for k, v in scores.items()}


def agreement(args: dict[str, Any]) -> dict[str, Any]:
    """The demo set resolved one object at a time through the online core, against one batch
    resolve of the same objects (same model): pairwise and B-cubed F1 between the two
    assignments, the batch's taken as the truth. With `"revisit": "queued"` each object answers
    before the mentions it changed are resolved again; they wait in the queue until every object
    is in, and are then worked off (`revisit_pending`), scored before and after."""
    from pipelines.online import OnlineResolver
    from pipelines.resolve import run_resolve
    from profiles.contract import parse_line
    from profiles.store import open_store
    from profiles.store.decisions import set_info
    from profiles.store.profiles_io import assignment_rows
    from training.metrics import cluster_scores

    batch_settings = _settings({**args, "home": args["batch_home"]})
    batch = open_store(batch_settings)
    with batch.reading() as conn:
        batch_assignment = dict(assignment_rows(conn, batch.domain))
        from profiles.store.reads import store_id

    with batch.transaction() as conn:
        shared_id = store_id(conn)
    settings = _settings(args)
    store = open_store(settings)
    with store.transaction() as conn:
        set_info(conn, "store_id", shared_id)  # the same registered model
    resolver = OnlineResolver(store, settings)
    queued = args.get("revisit", "inline") == "queued"
    times = []
    for raw in Path(args["objects"]).read_bytes().splitlines():
        try:
            obj = parse_line(raw, settings.max_line_bytes)
        except Exception:
            continue
        clock = time.perf_counter()
        resolver.resolve_objects([obj], revisit=not queued)
        times.append(time.perf_counter() - clock)
    extra: dict[str, Any] = {}
    if queued:
        with store.reading() as conn:
            extra["with_the_queue_waiting"] = _rounded(
                cluster_scores(batch_assignment, dict(assignment_rows(conn, store.domain)))
            )
        clock = time.perf_counter()
        extra["worked_off"] = len(resolver.revisit_pending())
        extra["work_off_s"] = round(time.perf_counter() - clock, 2)
    with store.reading() as conn:
        online = dict(assignment_rows(conn, store.domain))
    before_batch = cluster_scores(batch_assignment, online)
    run_resolve(store, settings)
    with store.reading() as conn:
        caught_up = cluster_scores(batch_assignment, dict(assignment_rows(conn, store.domain)))
    scores = _rounded(before_batch)
    return {
        "objects": len(times),
        "mentions": len(online),
        "online_vs_batch": scores,
        "after_a_batch_run": _rounded(caught_up),
        "object_ms": _percentiles(times),
        **extra,
    }


KINDS = {"split": split, "prepare": prepare, "measure": measure, "agreement": agreement}

if __name__ == "__main__":
    reset_peak()
    kind, raw = sys.argv[1], sys.argv[2]
    print(json.dumps(KINDS[kind](json.loads(raw)), default=str))
