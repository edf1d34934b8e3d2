"""A simulated labeller that answers from a ground-truth file, for benchmarks and tests only.

It is never used by a real labelling path: `upt label --oracle FILE` names it on screen.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from profiles.errors import NotFound, ValidationFailed


def read_truth(path: Path) -> pd.DataFrame:
    """A ground-truth file `mention_key,person_id` (more columns are ignored)."""
    try:
        truth = pd.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise NotFound(f"no truth file {path}") from None
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ValidationFailed(str(path), f"is not a CSV file with a header: {exc}") from None
    missing = {"mention_key", "person_id"} - set(truth.columns)
    if missing:
        raise ValidationFailed(str(path), f"lacks columns {sorted(missing)}; it needs mention_key,person_id")
    return truth[["mention_key", "person_id"]]


class SimulatedOracle:
    labeller = "simulated-oracle"
    origin = "oracle"

    def __init__(self, truth: pd.DataFrame) -> None:
        self.person = dict(zip(truth["mention_key"], truth["person_id"], strict=True))

    @classmethod
    def from_file(cls, path: Path) -> SimulatedOracle:
        return cls(read_truth(path))

    def answer(self, mention_a: str, mention_b: str) -> str:
        a, b = self.person.get(mention_a), self.person.get(mention_b)
        if a is None or b is None:
            return "unsure"
        return "match" if a == b else "non_match"
