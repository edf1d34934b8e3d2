"""Deterministic rule levels, declared in a versioned YAML file and run before the model.

Levels are tried in order, like Amazon Connect Customer Profiles' matching rules; the first level
whose conditions hold (and that no `unless` condition or exclusion vetoes) decides the pair:
`merge` makes a clustering edge, `link` sends the pair to the review queue. Conditions read the
pair's comparison vector, so a rule sees exactly what the model sees; exclusions read the mentions
(generic desk emails, contact values shared by several people, household signals).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from profiles.errors import ConfigError
from profiles.resolution.people import is_shared

DEFAULT_RULES = Path(__file__).with_name("rules.yaml")
ACTIONS = ("merge", "link")
EXCLUSIONS = ("generic_email", "shared_email", "shared_phone", "household")
_OPS: dict[str, Callable[[Any, Any], Any]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "!=": operator.ne,
    "==": operator.eq,
    ">": operator.gt,
    "<": operator.lt,
}
_CONDITION = re.compile(r"^\s*(>=|<=|!=|==|>|<)?\s*(-?\d+(?:\.\d+)?)\s*$")


@dataclass(frozen=True)
class Condition:
    feature: str
    op: str
    value: float

    def holds(self, features: Mapping[str, np.ndarray]) -> np.ndarray:
        """Where the condition holds, over feature columns (float64 arrays by name)."""
        column = features[self.feature]
        with np.errstate(invalid="ignore"):
            return np.asarray(_OPS[self.op](column, self.value)) & ~np.isnan(column)


@dataclass(frozen=True)
class Rule:
    name: str
    action: str
    when: tuple[tuple[Condition, ...], ...]  # any of these groups, each all of its conditions
    unless: tuple[Condition, ...] = ()
    exclude: tuple[str, ...] = ()

    def candidates(self, features: Mapping[str, np.ndarray], n: int) -> np.ndarray:
        """Of `n` pairs (`features`: float64 columns by name), those the conditions select,
        before exclusions (which need the mentions)."""
        hit = np.zeros(n, bool)
        for group in self.when:
            ok = np.ones(n, bool)
            for condition in group:
                ok &= condition.holds(features)
            hit |= ok
        for condition in self.unless:
            hit &= ~condition.holds(features)
        return hit


@dataclass(frozen=True)
class RuleSet:
    version: str
    levels: tuple[Rule, ...]
    generic_email_local_parts: frozenset[str] = frozenset()
    shared_value_max_names: int = 2
    source: str = ""

    def features_needed(self) -> set[str]:
        return {c.feature for rule in self.levels for c in (*[c for g in rule.when for c in g], *rule.unless)}

    def exclusions(self, mentions: pd.DataFrame, shared: SharedValues | None = None) -> ExclusionContext:
        """What the exclusions read about the domain, asked once and kept (for `apply` and
        `any_personal` of one run or request)."""
        return ExclusionContext(self, mentions, shared)

    def apply(
        self,
        features: pd.DataFrame,
        mentions: pd.DataFrame,
        shared: SharedValues | None = None,
        context: ExclusionContext | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(level index or -1, action) of every pair of `features` (columns mention_a, mention_b +
        the comparison vector); `mentions` is the frame indexed by mention id. `shared` tells which
        emails or phones are written for too many people across the whole domain; without it they
        are counted over `mentions` (which then must be the whole domain)."""
        needed = self.features_needed()
        missing = needed - set(features.columns)
        if missing:
            raise ConfigError(f"rules {self.source}: unknown features {sorted(missing)}")
        n = len(features)
        level = np.full(n, -1, np.int32)
        # each column read once (a pandas column read costs tens of microseconds, a rule set
        # reads a dozen, and an online call has a handful of pairs)
        wanted = needed | set(HOUSEHOLD_FEATURES)
        columns = {f: features[f].to_numpy(np.float64) for f in wanted if f in features.columns}
        context = context or ExclusionContext(self, mentions, shared)
        for i, rule in enumerate(self.levels):
            hit = rule.candidates(columns, n) & (level < 0)
            rows = np.flatnonzero(hit)
            if len(rows) and rule.exclude:
                a = features["mention_a"].to_numpy()[rows]
                b = features["mention_b"].to_numpy()[rows]
                vetoed = np.zeros(len(rows), bool)
                for name in rule.exclude:
                    vetoed |= context.vetoes(name, a, b, {f: v[rows] for f, v in columns.items()})
                rows = rows[~vetoed]
            level[rows] = i
        action = np.array([""] + [r.action for r in self.levels], dtype=object)[level + 1]
        return level, action

    def rule_name(self, level: int) -> str:
        return f"{self.version}/{self.levels[level].name}"

    def any_personal(
        self, evidence: Sequence[Sequence[tuple[str, str] | None]], context: ExclusionContext
    ) -> np.ndarray:
        """Per pair, whether any of its contact evidence is personal: each item a stored contact
        value (column "emails" or "phones", value) that is not written for more than
        `shared_value_max_names` people, or None for a value whose sharing cannot be asked (which
        counts as personal). Every value is asked once (`context`: `exclusions`)."""
        asked: dict[str, set[str]] = {}
        for items in evidence:
            for item in items:
                if item is not None:
                    asked.setdefault(item[0], set()).add(item[1])
        common = {column: context.shared_values(column, values) for column, values in asked.items()}
        return np.array(
            [any(item is None or item[1] not in common[item[0]] for item in items) for items in evidence],
            dtype=bool,
        )


HOUSEHOLD_FEATURES = ("first_jw", "first_nickname_eq", "dob_conflict")  # what the household veto reads

# (column, values, most names) -> those of `values` written for more people
SharedValues = Callable[[str, set[str], int], set[str]]


def shared_in_frame(frame: pd.DataFrame, column: str, max_names: int) -> set[str]:
    """Values of a multi-valued column (emails, phones) written on mentions of more than
    `max_names` people in `frame`, or of two people of one name told apart by their birth dates:
    distinct names that are one person's spellings count once and a mention without a name
    counts for nobody (`profiles.resolution.people.is_shared`)."""
    wanted = [column, "first_name", "last_name", "date_of_birth"]
    if "first_name_canonical" in frame:
        wanted.append("first_name_canonical")
    long = frame[wanted].explode(column).dropna(subset=[column])
    long = long[long[column] != ""]
    first, last = long["first_name"].fillna(""), long["last_name"].fillna("")
    named = long[(first != "") | (last != "")].assign(
        first_name=first, last_name=last, date_of_birth=long["date_of_birth"].fillna("")
    )
    spellings = named.drop_duplicates([column, "first_name", "last_name"])
    counts = spellings.groupby(column).size()
    dates = named[named["date_of_birth"] != ""].drop_duplicates([column, "date_of_birth"])
    dated = dates.groupby(column).size()
    # Most values are written under one spelling and one birth date at most; only values under
    # more spellings, or more dates, are counted as people.
    asked = set(counts.index[counts > max_names]) | set(dated.index[dated > 1])
    many = named[named[column].isin(asked)].drop_duplicates(
        [column, "first_name", "last_name", "date_of_birth"]
    )
    shared = set()
    for value, rows in many.groupby(column, sort=True):
        canonical = rows["first_name_canonical"] if "first_name_canonical" in rows else [()] * len(rows)
        entries = (
            (f, la, frozenset(c or ()), d)
            for f, la, c, d in zip(
                rows["first_name"], rows["last_name"], canonical, rows["date_of_birth"], strict=True
            )
        )
        if is_shared(entries, max_names):
            shared.add(value)
    return shared


def made_shared_holders(frame: pd.DataFrame, new: np.ndarray, max_names: int) -> np.ndarray:
    """The mentions of `frame` (the whole domain) holding an email or phone that the `new`
    mentions (ids) made shared: written for at most `max_names` people without them, for more
    with them. The decisions of those holders rested on the value as a personal one."""
    is_new = frame["mention_pk"].isin(new).to_numpy(bool)
    out: set[int] = set()
    for column in ("emails", "phones"):
        brought = {v for items in frame[column].to_numpy(object)[is_new] for v in items if v}
        if not brought:
            continue
        holds = frame[column].map(lambda items, wanted=brought: not wanted.isdisjoint(items)).to_numpy(bool)
        holders = frame[holds]
        now = shared_in_frame(holders, column, max_names) & brought
        if not now:
            continue
        made = now - shared_in_frame(holders[~is_new[holds]], column, max_names)
        if made:
            hit = holders[column].map(lambda items, wanted=made: not wanted.isdisjoint(items)).to_numpy(bool)
            out.update(holders["mention_pk"].to_numpy(np.int64)[hit].tolist())
    return np.array(sorted(out - set(np.asarray(new).tolist())), np.int64)


@dataclass
class ExclusionContext:
    """What a rule set's exclusions read about the domain for one run or request: the mentions'
    values, and which contact values are written for too many people (counted over `mentions`,
    or asked of `shared`, each value once)."""

    rules: RuleSet
    mentions: pd.DataFrame
    shared: SharedValues | None = None
    _shared: dict[str, set[str]] = field(default_factory=dict)
    _asked: dict[str, set[str]] = field(default_factory=dict)
    _by_pk: dict[str, dict[int, Any]] = field(default_factory=dict)

    def shared_values(self, column: str, among: set[str]) -> set[str]:
        """Those of `among` (values of a multi-valued column) written for too many people
        (`profiles.resolution.people`). Without a `shared` source the whole frame is counted
        once; with one, only values not asked before are asked (a veto reads only the values both
        sides hold, so an online call asks about a few values, not every contact of every
        candidate)."""
        limit = self.rules.shared_value_max_names
        if self.shared is None:
            if column not in self._shared:
                self._shared[column] = shared_in_frame(self.mentions, column, limit)
            return self._shared[column] & among
        known = self._shared.setdefault(column, set())
        asked = self._asked.setdefault(column, set())
        new = among - asked
        if new:
            known |= self.shared(column, new, limit)
            asked |= new
        return known & among

    def values_of(self, column: str) -> dict[int, Any]:
        """mention id -> the column's values, read once (pandas' `.at` per pair was slow)."""
        if column not in self._by_pk:
            self._by_pk[column] = dict(
                zip(self.mentions.index.tolist(), self.mentions[column].tolist(), strict=True)
            )
        return self._by_pk[column]

    def personal_emails(self, pk: int) -> set[str]:
        """The mention's emails less the desk addresses (reservations@, info@, ...)."""
        generic = self.rules.generic_email_local_parts
        return {v for v in self.values_of("emails")[pk] if v.rpartition("@")[0] not in generic}

    def vetoes(
        self, name: str, a: np.ndarray, b: np.ndarray, features: Mapping[str, np.ndarray]
    ) -> np.ndarray:
        if name == "household":
            # Same household, different people: names or birth dates that disagree.
            first = features["first_jw"]
            nickname = features["first_nickname_eq"] == 1
            return ((first < 0.85) & ~nickname) | (features["dob_conflict"] == 1)
        pairs = list(zip(a.tolist(), b.tolist(), strict=True))
        if name == "generic_email":
            return np.array(
                [not (self.personal_emails(x) & self.personal_emails(y)) for x, y in pairs], dtype=bool
            )
        # shared_email, shared_phone: (x's values - shared) & (y's values - shared) = (x's & y's) - shared
        column = "phones" if name == "shared_phone" else "emails"
        values = self.values_of(column)
        common = [set(values[x]) & set(values[y]) for x, y in pairs]
        shared = self.shared_values(column, {v for c in common for v in c if v})
        return np.array([not (c - shared) for c in common], dtype=bool)


def _condition(feature: str, spec: Any, where: str) -> Condition:
    if isinstance(spec, bool) or not isinstance(spec, int | float | str):
        raise ConfigError(f"{where}.{feature}: a number or a comparison like '>=0.9', not {spec!r}")
    if isinstance(spec, int | float):
        return Condition(feature, "==", float(spec))
    match = _CONDITION.match(spec)
    if not match:
        raise ConfigError(f"{where}.{feature}: cannot read condition {spec!r} (e.g. '>=0.9', '<1', 1)")
    return Condition(feature, match.group(1) or "==", float(match.group(2)))


def _conditions(spec: Any, where: str) -> tuple[Condition, ...]:
    if spec is None:
        return ()
    if not isinstance(spec, Mapping) or not spec:
        raise ConfigError(f"{where}: a mapping of feature: condition")
    return tuple(_condition(str(k), v, where) for k, v in spec.items())


def _rule(spec: Any, where: str) -> Rule:
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{where}: a rule is a mapping with name, action, when")
    name = str(spec.get("name") or "")
    if not name:
        raise ConfigError(f"{where}.name: missing")
    action = spec.get("action")
    if action not in ACTIONS:
        raise ConfigError(f"{where}.action: {action!r} is not one of {ACTIONS}")
    when = spec.get("when")
    groups: Sequence[Any] = when if isinstance(when, list) else [when]
    if when is None or not groups:
        raise ConfigError(f"{where}.when: missing")
    exclude = tuple(str(x) for x in spec.get("exclude") or ())
    unknown = set(exclude) - set(EXCLUSIONS)
    if unknown:
        raise ConfigError(f"{where}.exclude: unknown {sorted(unknown)}; known: {list(EXCLUSIONS)}")
    return Rule(
        name=name,
        action=action,
        when=tuple(_conditions(g, f"{where}.when[{i}]") for i, g in enumerate(groups)),
        unless=tuple(
            c
            for item in (spec.get("unless") or {}).items()
            for c in _conditions(dict([item]), f"{where}.unless")
        ),
        exclude=exclude,
    )


def load_rules(path: Path | None = None) -> RuleSet:
    """The rule set of a YAML file (default: the one shipped with UPT), validated field by field."""
    path = path or DEFAULT_RULES
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"rules file {path}: {exc}") from None
    if not isinstance(data, Mapping) or not data.get("version"):
        raise ConfigError(f"rules file {path}: needs a top-level 'version' and 'levels'")
    levels = data.get("levels") or []
    if not isinstance(levels, list):
        raise ConfigError(f"rules file {path}: 'levels' must be a list")
    rules = tuple(_rule(spec, f"levels[{i}]") for i, spec in enumerate(levels))
    names = [r.name for r in rules]
    if len(set(names)) != len(names):
        raise ConfigError(f"rules file {path}: rule names must be unique")
    exclusions = data.get("exclusions") or {}
    return RuleSet(
        version=str(data["version"]),
        levels=rules,
        generic_email_local_parts=frozenset(
            str(x).lower() for x in exclusions.get("generic_email_local_parts") or ()
        ),
        shared_value_max_names=int(exclusions.get("shared_value_max_names", 2)),
        source=str(path),
    )
