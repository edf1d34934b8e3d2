"""The anchor tools, run on the same data as UPT: Splink (DuckDB, unsupervised, its documented
Fellegi-Sunter recipe; and `splink-full`, the configuration of Splink's FEBRL demos with term
frequencies, every identifier and connected components at 0.5, as issue 21 specifies), recordlinkage (logistic regression on UPT's labels, and its unsupervised
ECM), dedupe (UPT's labels, a bounded training sample).

Every tool gets the same input: UPT's normalized mention table (one row per matchable mention:
names, birth date, first email and phone, street, city, postal code, country, first document),
so the tools compete on matching, not on parsing the contract. Each runs in its own process
(`run_measured`), which reports wall time and peak memory; the output is a mention -> cluster
assignment scored exactly like UPT's.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.frame import FLAT_COLUMNS


def write_records(home: Path, out: Path) -> Path:
    """The UPT store's matchable mentions as the anchors' input table (Parquet)."""
    from features.frame import flat_person_table, load_mentions
    from profiles.settings import Settings
    from profiles.store import open_store

    store = open_store(Settings(home=home))
    with store.reading() as conn:
        frame = load_mentions(conn, store.domain)
    table = flat_person_table(frame).rename(columns={"mention_key": "unique_id"})
    # the first loyalty id: a deterministic key Splink's users would block and compare on
    table["loyalty"] = frame["loyalty"].map(lambda t: t[0] if t else None)
    table = table.reset_index(drop=True)
    table.to_parquet(out, index=False)
    return out


def _clusters(keys: list[str], pairs: list[tuple[str, str]]) -> dict[str, str]:
    parent = {k: k for k in keys}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[ra] = rb
    return {k: find(k) for k in keys}


def _splink_linker(df: pd.DataFrame, comparisons: list[Any], rules: list[Any]) -> Any:
    """A Splink linker (DuckDB, deduplication) over the flat mention table."""
    from splink import DuckDBAPI, Linker, SettingsCreator

    settings = SettingsCreator(
        link_type="dedupe_only", comparisons=comparisons, blocking_rules_to_generate_predictions=rules
    )
    return Linker(DuckDBAPI().register(df), settings)


def _splink_clusters(linker: Any, predict_at: float, cluster_at: float, assignment: Path) -> dict[str, Any]:
    """Pairs predicted at `predict_at`, connected at `cluster_at`, written as an assignment."""
    predictions = linker.inference.predict(threshold_match_probability=predict_at)
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
        predictions, cluster_at
    ).as_pandas_dataframe()
    clusters[["unique_id", "cluster_id"]].rename(
        columns={"unique_id": "mention_key", "cluster_id": "profile_id"}
    ).to_csv(assignment, index=False)
    return {"pairs_predicted": len(predictions.as_pandas_dataframe())}


def run_splink(records: Path, assignment: Path) -> dict[str, Any]:
    """Splink on the flat mention table, its documented recipe: names, birth date, email,
    phone, address and document compared; u by 2 million random pairs, m by EM on names and on
    birth date; predictions at 0.5, clusters at 0.9."""
    import splink.comparison_library as cl
    from splink import block_on

    df = pd.read_parquet(records)
    used = [c for c in FLAT_COLUMNS if df[c].notna().mean() > 0.01]
    comparisons = {
        "first_name": cl.NameComparison("first_name"),
        "last_name": cl.NameComparison("last_name"),
        "dob": cl.DateOfBirthComparison("dob", input_is_string=True),
        "email": cl.EmailComparison("email"),
        "phone": cl.ExactMatch("phone"),
        "street": cl.LevenshteinAtThresholds("street", 2),
        "city": cl.ExactMatch("city"),
        "postal_code": cl.ExactMatch("postal_code"),
        "country": cl.ExactMatch("country"),
        "document": cl.LevenshteinAtThresholds("document", 2),
    }
    rules = [block_on("first_name", "last_name"), block_on("last_name", "dob"), block_on("first_name", "dob")]
    rules += [block_on(c) for c in ("email", "phone", "document") if c in used]
    rules += [block_on("postal_code", "first_name")] if "postal_code" in used else []
    linker = _splink_linker(df, [comparisons[c] for c in used], rules)
    deterministic = [block_on("first_name", "last_name", "dob")]
    deterministic += [block_on("email")] if "email" in used else []
    linker.training.estimate_probability_two_random_records_match(deterministic, recall=0.7)
    linker.training.estimate_u_using_random_sampling(max_pairs=2e6)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("first_name", "last_name"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("dob"))
    return _splink_clusters(linker, 0.5, 0.9, assignment)


# Splink's own recipe, as its FEBRL3/FEBRL4 demos and documentation configure it (and as issue 21
# asks for a fair anchor): what a Splink user would write for these columns.
SPLINK_U_PAIRS = 1e7
SPLINK_CLUSTER_AT = 0.5


def run_splink_full(records: Path, assignment: Path) -> dict[str, Any]:
    """Splink 4/5 on the flat mention table: prediction blocking on names (both orders), birth
    date, email, phone, surname + postal code, loyalty id and document; names compared with
    term-frequency adjustments; the prior from deterministic rules, u from 10 million random
    pairs, m by EM blocked on birth date and on email; connected components at 0.5."""
    import splink.comparison_library as cl
    from splink import block_on

    df = pd.read_parquet(records)
    if "loyalty" not in df:  # a table written before the column existed
        df["loyalty"] = None
    used = [c for c in (*FLAT_COLUMNS, "loyalty") if df[c].notna().mean() > 0.01]
    comparisons = {
        "first_name": cl.NameComparison("first_name").configure(term_frequency_adjustments=True),
        "last_name": cl.NameComparison("last_name").configure(term_frequency_adjustments=True),
        "dob": cl.DateOfBirthComparison("dob", input_is_string=True),
        "email": cl.EmailComparison("email"),
        "phone": cl.DamerauLevenshteinAtThresholds("phone", [1, 2]),
        "street": cl.JaroWinklerAtThresholds("street"),
        "city": cl.JaroWinklerAtThresholds("city"),
        "postal_code": cl.JaroWinklerAtThresholds("postal_code"),
        "country": cl.ExactMatch("country"),
        "document": cl.ExactMatch("document"),
        "loyalty": cl.ExactMatch("loyalty"),
    }
    rules: list[Any] = [block_on("first_name", "last_name")]
    rules += ["l.first_name = r.last_name and l.last_name = r.first_name"]  # swapped names
    rules += [block_on("dob")] if "dob" in used else []
    rules += [block_on(c) for c in ("email", "phone", "loyalty", "document") if c in used]
    rules += [block_on("last_name", "postal_code")] if "postal_code" in used else []
    linker = _splink_linker(df, [comparisons[c] for c in used], rules)
    deterministic = [block_on("first_name", "last_name", "dob")]
    deterministic += [block_on(c) for c in ("email", "loyalty", "document") if c in used]
    linker.training.estimate_probability_two_random_records_match(deterministic, recall=0.7)
    linker.training.estimate_u_using_random_sampling(max_pairs=SPLINK_U_PAIRS, seed=0)
    for rule in ("dob", "email"):
        if rule in used:
            linker.training.estimate_parameters_using_expectation_maximisation(block_on(rule))
    return _splink_clusters(linker, SPLINK_CLUSTER_AT, SPLINK_CLUSTER_AT, assignment)


def _recordlinkage_features(df: pd.DataFrame) -> tuple[pd.MultiIndex, pd.DataFrame]:
    import recordlinkage as rl

    index = rl.Index()
    index.block(["last_name"])
    index.block(["dob"])
    index.sortedneighbourhood("first_name", block_on=["postal_code"]) if df[
        "postal_code"
    ].notna().any() else None
    for column in ("email", "phone", "document"):
        if df[column].notna().any():
            index.block([column])
    pairs = index.index(df)
    compare = rl.Compare()
    compare.string("first_name", "first_name", method="jarowinkler", threshold=0.85, label="first_name")
    compare.string("last_name", "last_name", method="jarowinkler", threshold=0.85, label="last_name")
    compare.exact("dob", "dob", label="dob")
    compare.string("street", "street", method="levenshtein", threshold=0.8, label="street")
    compare.exact("postal_code", "postal_code", label="postal_code")
    compare.exact("city", "city", label="city")
    for column in ("email", "phone", "document"):
        if df[column].notna().any():
            compare.exact(column, column, label=column)
    return pairs, compare.compute(pairs, df)


def run_recordlinkage(records: Path, labels: Path, assignment: Path, method: str) -> dict[str, Any]:
    import recordlinkage as rl

    df = pd.read_parquet(records).fillna(np.nan)
    df.index = pd.Index(df["unique_id"])
    pairs, features = _recordlinkage_features(df)
    if method == "logistic":
        known = pd.read_csv(labels)
        known = known[known["label"].isin(["match", "non_match"])]
        index = pd.MultiIndex.from_arrays([known["mention_a"], known["mention_b"]])
        swapped = pd.MultiIndex.from_arrays([known["mention_b"], known["mention_a"]])
        rows = features.index.isin(index) | features.index.isin(swapped)
        labelled = features[rows]
        keyed = dict(
            zip(zip(known["mention_a"], known["mention_b"], strict=True), known["label"], strict=True)
        )
        y = [keyed.get((a, b), keyed.get((b, a))) == "match" for a, b in labelled.index]
        matches = labelled.index[np.array(y, bool)]
        model = rl.LogisticRegressionClassifier()
        model.fit(labelled, matches)
        found = model.predict(features)
        extra = {"labelled_pairs_among_candidates": len(labelled)}
    else:
        model = rl.ECMClassifier(binarize=0.5)
        found = model.fit_predict(features)
        extra = {}
    cluster = _clusters(df["unique_id"].tolist(), list(found))
    pd.DataFrame({"mention_key": list(cluster), "profile_id": list(cluster.values())}).to_csv(
        assignment, index=False
    )
    return {"candidate_pairs": len(pairs), "matched_pairs": len(found), **extra}


def run_dedupe(records: Path, labels: Path, assignment: Path, sample_size: int = 1500) -> dict[str, Any]:
    import dedupe

    from labeling.dedupe_learner import dedupe_fields

    df = pd.read_parquet(records)
    used = [c for c in FLAT_COLUMNS if df[c].notna().mean() > 0.01]
    data = {
        row["unique_id"]: {c: (row[c] if isinstance(row[c], str) and row[c] else None) for c in used}
        for row in df.to_dict("records")
    }
    fields = dedupe_fields(used)
    known = pd.read_csv(labels)
    examples: dict[str, list[Any]] = {"match": [], "distinct": []}
    for a, b, label in zip(known["mention_a"], known["mention_b"], known["label"], strict=True):
        if a in data and b in data and label in ("match", "non_match"):
            examples["match" if label == "match" else "distinct"].append([data[a], data[b]])
    deduper = dedupe.Dedupe(fields, num_cores=1)
    # The labels go in as dedupe's own training file, so its learner knows the pairs.
    deduper.prepare_training(data, training_file=io.StringIO(json.dumps(examples)), sample_size=sample_size)
    deduper.train()
    clusters = list(deduper.partition(data, threshold=0.5))
    out = {}
    for i, (ids, _) in enumerate(clusters):
        for k in ids:
            out[k] = f"c{i}"
    pd.DataFrame({"mention_key": list(out), "profile_id": list(out.values())}).to_csv(assignment, index=False)
    return {"clusters": len(clusters)}


def child_code(tool: str, records: Path, labels: Path, assignment: Path) -> str:
    """Python run by `run_measured` for one tool (its own process, so memory is its own)."""
    call = {
        "splink": f"run_splink({str(records)!r}, {str(assignment)!r})",
        "splink-full": f"run_splink_full({str(records)!r}, {str(assignment)!r})",
        "recordlinkage-logistic": f"run_recordlinkage({str(records)!r}, {str(labels)!r}, {str(assignment)!r}, 'logistic')",
        "recordlinkage-ecm": f"run_recordlinkage({str(records)!r}, {str(labels)!r}, {str(assignment)!r}, 'ecm')",
        "dedupe": f"run_dedupe({str(records)!r}, {str(labels)!r}, {str(assignment)!r})",
    }[tool]
    return (
        "import logging, warnings\nwarnings.simplefilter('ignore')\nlogging.disable(logging.WARNING)\n"
        "from pathlib import Path\n"
        "from benchmarks.anchors import run_splink, run_splink_full, run_recordlinkage, run_dedupe\n"
        f"result = {call}\n"
    )


def scores(assignment: Path, truth: Path) -> dict[str, float]:
    """Pairwise and B-cubed scores of an exported assignment (`mention_key,profile_id`) against a
    truth file (`mention_key,person_id`), to four digits; every value read as the exact text (a
    key "NA" stays a key), as `shared/tools/score.py` reads them."""
    import csv

    from training.metrics import cluster_scores

    with assignment.open(newline="") as f:
        assigned = {r["mention_key"]: r["profile_id"] for r in csv.DictReader(f)}
    with truth.open(newline="") as f:
        expected = {r["mention_key"]: r["person_id"] for r in csv.DictReader(f)}
    return {k: round(v, 4) for k, v in cluster_scores(expected, assigned).items()}


if (
    __name__ == "__main__"
):  # pragma: no cover - manual use: python -m benchmarks.anchors TOOL HOME TRUTH LABELS
    import sys

    tool, home, truth, labels = sys.argv[1:5]
    work = Path(home).parent
    records = write_records(Path(home), work / "records.parquet")
    assignment = work / f"assignment-{tool}.csv"
    from benchmarks.common import run_measured

    measured = run_measured(child_code(tool, records, Path(labels), assignment))
    print(json.dumps({**measured, **scores(assignment, Path(truth))}))
