"""Golden records: one value per field of a profile, chosen by a configurable survivorship rule
and traceable to the mentions it came from.

Rules per field: `most_frequent` (ties go to the most recent), `most_recent` (the value of the
most recently modified mention that has one), `most_complete` (the longest value: "Jonathan" over
"Jon"), `source_priority` (the value of the most trusted source that has one, then frequency).
Multi-valued fields (emails, phones, loyalty ids, documents) keep every distinct value as well.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from profiles.errors import ConfigError

STRATEGIES = ("most_frequent", "most_recent", "most_complete", "source_priority")
MAX_SOURCES = 20  # mention keys listed per golden value; the count is always exact


@dataclass(frozen=True)
class Survivorship:
    fields: tuple[str, ...]
    rules: Mapping[str, str] = field(default_factory=dict)
    source_priority: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name, rule in self.rules.items():
            if name not in self.fields:
                raise ConfigError(
                    f"survivorship.{name}: not a golden-record field; fields: {list(self.fields)}"
                )
            if rule not in STRATEGIES:
                raise ConfigError(f"survivorship.{name}: {rule!r} is not one of {STRATEGIES}")
            if rule == "source_priority" and not self.source_priority:
                raise ConfigError(f"survivorship.{name}: source_priority needs the setting source_priority")

    def rule(self, name: str) -> str:
        return self.rules.get(name, "most_frequent")


def _values(item: Any) -> tuple[Any, ...]:
    values = item if isinstance(item, tuple | list) else (item,)
    return tuple(v for v in values if v not in (None, ""))


def _column_values(column: list[Any]) -> list[tuple[Any, ...]]:
    """`_values` of every item, with the common cases (a plain string, a clean tuple) kept cheap."""
    out: list[tuple[Any, ...]] = []
    for item in column:
        if type(item) is str:
            out.append((item,) if item else ())
        elif type(item) is tuple and "" not in item and None not in item:
            out.append(item)
        else:
            out.append(_values(item))
    return out


def _column_is_list(column: list[Any]) -> list[bool] | bool:
    """Per item whether it is multi-valued; a single bool when the whole column agrees."""
    kinds = set(map(type, column))
    if not kinds & {tuple, list}:
        return False
    if kinds <= {tuple, list}:
        return True
    return [isinstance(item, tuple | list) for item in column]


def _choose(rule: str, candidates: Sequence[tuple[Any, str, str, int]], priority: Sequence[str]) -> Any:
    """candidates: (value, modified_at, source, position) per occurrence."""
    first = candidates[0][0]
    if all(c[0] == first for c in candidates):  # the mentions agree (the usual case): any rule picks it
        return first
    counts = Counter(c[0] for c in candidates)
    latest: dict[Any, tuple[str, int]] = {}
    for value, at, _, position in candidates:
        seen = latest.get(value)
        if seen is None or (at, position) > seen:
            latest[value] = (at, position)
    best_source: dict[Any, int] = {}
    if rule == "source_priority":
        rank = {source: i for i, source in enumerate(priority)}
        for value, _, source, _ in candidates:
            best_source[value] = min(best_source.get(value, len(rank)), rank.get(source, len(rank)))

    def key(value: Any) -> tuple[Any, ...]:
        if rule == "most_recent":
            return (latest[value], counts[value])
        if rule == "most_complete":
            return (len(str(value)), counts[value], latest[value])
        if rule == "source_priority":
            return (-best_source[value], counts[value], latest[value])
        return (counts[value], latest[value])

    return max(counts, key=key)


def golden_record(frame: pd.DataFrame, survivorship: Survivorship) -> dict[str, Any]:
    """The golden record of one profile's mentions (columns mention_key, source, modified_at and
    the survivorship fields): per field its value, the rule that chose it, and where it came from."""
    return _golden(_Columns(frame, survivorship), list(range(len(frame))), survivorship)


def golden_records(frame: pd.DataFrame, by: str, survivorship: Survivorship) -> dict[str, dict[str, Any]]:
    """The golden record of every group of `frame` (grouped by column `by`, e.g. profile_id), the
    same as `golden_record` per group but reading the columns once instead of once per profile."""
    columns = _Columns(frame, survivorship)
    groups: dict[Any, list[int]] = {}
    for row, key in enumerate(frame[by].tolist()):
        groups.setdefault(key, []).append(row)
    return {str(key): _golden(columns, rows, survivorship) for key, rows in groups.items()}


class _Columns:
    """The columns survivorship reads, as plain lists (positional)."""

    def __init__(self, frame: pd.DataFrame, survivorship: Survivorship) -> None:
        n = len(frame)
        self.keys = frame["mention_key"].tolist()
        self.sources = frame["source"].tolist() if "source" in frame else [""] * n
        self.times = [str(t or "") for t in frame["modified_at"]] if "modified_at" in frame else [""] * n
        self.fields = {name: frame[name].tolist() for name in survivorship.fields if name in frame}
        self.values = {name: _column_values(column) for name, column in self.fields.items()}
        self.is_list = {name: _column_is_list(column) for name, column in self.fields.items()}
        self.rules = {name: survivorship.rule(name) for name in self.fields}

    def listed(self, name: str, rows: list[int]) -> bool:
        """Whether any of these rows holds field `name` as several values."""
        flags = self.is_list[name]
        return flags if isinstance(flags, bool) else any(flags[r] for r in rows)


def _single(columns: _Columns, row: int, survivorship: Survivorship) -> dict[str, Any]:
    """`_golden` of a one-mention profile (most profiles): every rule ties on count, time and
    source, so it keeps the first value, except most_complete, which keeps the (first) longest."""
    out: dict[str, Any] = {}
    key = columns.keys[row]
    for name, values in columns.values.items():
        own = values[row]
        if not own:
            continue
        rule = columns.rules[name]
        value = max(own, key=lambda v: len(str(v))) if rule == "most_complete" else own[0]
        entry = _entry(value, rule, [key])
        if columns.listed(name, [row]):
            entry["values"] = list(own) if len(own) == 1 else [v for v, _ in Counter(own).most_common()]
        out[name] = entry
    return out


def _golden(columns: _Columns, rows: list[int], survivorship: Survivorship) -> dict[str, Any]:
    if len(rows) == 1:
        return _single(columns, rows[0], survivorship)
    out: dict[str, Any] = {}
    for name, values_of in columns.values.items():
        rule = columns.rules[name]
        per_row = [values_of[r] for r in rows]
        held = [(r, values) for r, values in zip(rows, per_row, strict=True) if values]
        if not held:
            continue
        first = held[0][1][0]
        if all(v == first for _, values in held for v in values):
            # the members that have a value agree (most fields of most profiles): every rule
            # picks it, every holder holds it; no candidates to weigh
            out[name] = _entry(first, rule, [columns.keys[r] for r, _ in held])
            if columns.listed(name, rows):
                out[name]["values"] = [first]
            continue
        candidates = [
            (value, columns.times[r], columns.sources[r], i)
            for i, (r, values) in enumerate(zip(rows, per_row, strict=True))
            for value in values
        ]
        value = _choose(rule, candidates, survivorship.source_priority)
        holders = [columns.keys[r] for r, values in zip(rows, per_row, strict=True) if value in values]
        out[name] = _entry(value, rule, holders)
        if columns.listed(name, rows):
            counts = Counter(v for values in per_row for v in values)
            out[name]["values"] = [v for v, _ in counts.most_common()]
    return out


def _entry(value: Any, rule: str, holders: list[str]) -> dict[str, Any]:
    """A golden value, the rule that chose it, and the mentions that hold it."""
    return {"value": value, "rule": rule, "from": holders[:MAX_SOURCES], "support": len(holders)}
