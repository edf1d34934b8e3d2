"""Labels of mention pairs: one per pair and labeller, with who, when, where from and the
feature vector at labelling time; import/export as CSV or JSON Lines; conflicts listed."""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Connection, delete, insert, select

from profiles.errors import ValidationFailed
from profiles.store.schema import labels

ANSWERS = ("match", "non_match", "unsure")
ORIGINS = ("ui", "cli", "import", "review", "oracle")


@dataclass(frozen=True)
class Label:
    mention_a: str
    mention_b: str
    label: str
    labeller: str
    origin: str
    features: dict[str, float] | None = None

    def ordered(self) -> Label:
        """The pair with its keys in a fixed order, so (a, b) and (b, a) are one pair."""
        if self.mention_a <= self.mention_b:
            return self
        return Label(self.mention_b, self.mention_a, self.label, self.labeller, self.origin, self.features)


def _check(label: Label) -> None:
    if label.label not in ANSWERS:
        raise ValidationFailed("label", f"{label.label!r} is not one of {', '.join(ANSWERS)}")
    if label.origin not in ORIGINS:
        raise ValidationFailed("origin", f"{label.origin!r} is not one of {', '.join(ORIGINS)}")
    if label.mention_a == label.mention_b:
        raise ValidationFailed("mention_b", "a pair needs two different mentions")


def save_labels(conn: Connection, domain: str, items: Iterable[Label]) -> int:
    """Insert or replace each labeller's answer for each pair (the latest answer wins)."""
    now = dt.datetime.now(dt.UTC)
    count = 0
    for item in items:
        _check(item)
        item = item.ordered()
        conn.execute(
            delete(labels).where(
                labels.c.domain == domain,
                labels.c.mention_a == item.mention_a,
                labels.c.mention_b == item.mention_b,
                labels.c.labeller == item.labeller,
            )
        )
        clean = {k: (None if v != v else float(v)) for k, v in (item.features or {}).items()}
        conn.execute(
            insert(labels).values(
                domain=domain,
                mention_a=item.mention_a,
                mention_b=item.mention_b,
                label=item.label,
                labeller=item.labeller,
                origin=item.origin,
                features=clean or None,
                labelled_at=now,
            )
        )
        count += 1
    return count


def remove_label(conn: Connection, domain: str, mention_a: str, mention_b: str, labeller: str) -> None:
    a, b = sorted((mention_a, mention_b))
    conn.execute(
        delete(labels).where(
            labels.c.domain == domain,
            labels.c.mention_a == a,
            labels.c.mention_b == b,
            labels.c.labeller == labeller,
        )
    )


def load_labels(conn: Connection, domain: str) -> pd.DataFrame:
    rows = conn.execute(
        select(
            labels.c.mention_a,
            labels.c.mention_b,
            labels.c.label,
            labels.c.labeller,
            labels.c.origin,
            labels.c.labelled_at,
        )
        .where(labels.c.domain == domain)
        .order_by(labels.c.id)
    ).all()
    return pd.DataFrame(
        rows, columns=["mention_a", "mention_b", "label", "labeller", "origin", "labelled_at"]
    )


def training_labels(frame: pd.DataFrame) -> pd.DataFrame:
    """One decided answer per pair: `unsure` and pairs whose labellers disagree are left out."""
    decided = frame[frame["label"] != "unsure"]
    agreed = decided.groupby(["mention_a", "mention_b"])["label"].agg(
        lambda s: s.iloc[0] if s.nunique() == 1 else None
    )
    agreed = agreed.dropna().reset_index()
    agreed["y"] = (agreed["label"] == "match").astype(int)
    return agreed


def conflicts(frame: pd.DataFrame) -> pd.DataFrame:
    """Pairs that labellers answered differently (match against non-match)."""
    decided = frame[frame["label"] != "unsure"]
    counts = decided.groupby(["mention_a", "mention_b"])["label"].nunique()
    bad = counts[counts > 1].index
    return (
        decided.set_index(["mention_a", "mention_b"]).loc[bad].reset_index() if len(bad) else decided.iloc[:0]
    )


def export_labels(frame: pd.DataFrame, path: Path) -> None:
    columns = ["mention_a", "mention_b", "label", "labeller", "origin", "labelled_at"]
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".jsonl":
        with path.open("w", encoding="utf-8") as f:
            for row in frame[columns].to_dict(orient="records"):
                f.write(json.dumps(row, default=str) + "\n")
    else:
        frame[columns].to_csv(path, index=False)


def read_label_file(path: Path, labeller: str) -> list[Label]:
    """Labels from CSV or JSON Lines with `mention_a, mention_b, label` (and optional `labeller`)."""
    rows: list[dict[str, Any]]
    if path.suffix == ".jsonl":
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    else:
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    out = []
    for i, row in enumerate(rows, start=1):
        missing = [k for k in ("mention_a", "mention_b", "label") if not row.get(k)]
        if missing:
            raise ValidationFailed(f"{path.name} row {i}", f"missing {', '.join(missing)}")
        out.append(
            Label(row["mention_a"], row["mention_b"], row["label"], row.get("labeller") or labeller, "import")
        )
    return out
