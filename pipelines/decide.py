"""The decision policy: one decision per candidate pair, the same for one online record and for a
batch of millions (`decide`).

In order: a rule level if one fires (`profiles.resolution.rules`; a `link` level only where the
scores would not merge the pair), else the imported score if the pair has one, else the champion
model against its thresholds; a model merge with nothing but the name in common goes to review,
and so does one of two first names with no birth date, loyalty id or document in common;
co-travellers, and pairs with conflicting documents or birth dates that nothing merged, become
cannot-links (`APART`). Which emails and phones the rules treat as shared (written for several
people) is a fact about the whole domain: the batch counts it over
the domain's frame, an online call asks the store (`SharedValues`), and both give the same answer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from features.comparisons import (
    CONTACT_EVIDENCE,
    agrees_beyond_name,
    another_person,
)
from features.normalize.phones import phone_suffix
from models.bundle import Bundle
from profiles.resolution.rules import ExclusionContext, RuleSet, SharedValues

APART = "apart"  # a cannot-link: co-travellers, conflicting documents or birth dates, a "no" from a person


@dataclass
class PairsToDecide:
    """The pairs a run decides, as mention ids (a < b), with their embedding cosine and, where
    another system scored them, the imported score (NaN where none) and its scorer ("")."""

    a: np.ndarray
    b: np.ndarray
    cosine: np.ndarray
    external: np.ndarray
    scorer: np.ndarray

    @classmethod
    def of(cls, a: np.ndarray, b: np.ndarray, cosine: np.ndarray) -> PairsToDecide:
        n = len(a)
        return cls(a, b, cosine, np.full(n, np.nan), np.full(n, "", dtype=object))

    def __len__(self) -> int:
        return len(self.a)


def with_imported_scores(
    a: np.ndarray,
    b: np.ndarray,
    cosine: np.ndarray,
    external: pd.DataFrame,
    pk_of: dict[str, int],
    dirty: np.ndarray,
    cosine_of: Callable[[np.ndarray, np.ndarray], np.ndarray] | None,
) -> PairsToDecide:
    """The candidate pairs (a < b) with the imported scores (`external`: mention_a, mention_b,
    score, scorer; the latest import of a pair) of the pairs that touch a `dirty` mention; an
    imported pair that blocking did not propose is decided too (with its cosine from `cosine_of`;
    without one, only candidate pairs take imported scores)."""
    ext_score = np.full(len(a), np.nan)
    ext_scorer = np.full(len(a), "", dtype=object)
    if len(external):
        ea = np.array([pk_of.get(k, -1) for k in external["mention_a"]], np.int64)
        eb = np.array([pk_of.get(k, -1) for k in external["mention_b"]], np.int64)
        known = (ea >= 0) & (eb >= 0) & (ea != eb)
        lo, hi = np.minimum(ea, eb)[known], np.maximum(ea, eb)[known]
        score = external["score"].to_numpy(np.float64)[known]
        scorer = external["scorer"].to_numpy(object)[known]
        mine = np.isin(lo, dirty) | np.isin(hi, dirty)
        lo, hi, score, scorer = lo[mine], hi[mine], score[mine], scorer[mine]
        where = {(x, y): i for i, (x, y) in enumerate(zip(a.tolist(), b.tolist(), strict=True))}
        extra = []
        for x, y, s, name in zip(lo.tolist(), hi.tolist(), score.tolist(), scorer.tolist(), strict=True):
            i = where.get((x, y))
            if i is None:
                extra.append((x, y, s, name))
            else:
                ext_score[i], ext_scorer[i] = s, name
        if extra and cosine_of is not None:
            xa = np.array([e[0] for e in extra], np.int64)
            xb = np.array([e[1] for e in extra], np.int64)
            a, b = np.concatenate([a, xa]), np.concatenate([b, xb])
            cosine = np.concatenate([cosine, cosine_of(xa, xb)])
            ext_score = np.concatenate([ext_score, [e[2] for e in extra]])
            ext_scorer = np.concatenate([ext_scorer, np.array([e[3] for e in extra], dtype=object)])
    return PairsToDecide(a, b, cosine, ext_score, ext_scorer)


def contact_evidence(
    context: ExclusionContext, a: np.ndarray, b: np.ndarray, booking: Mapping[int, tuple[str, ...]]
) -> list[list[tuple[str, str] | None]]:
    """Per pair, the contact values behind its contact features, as the stored values whose
    sharing the domain can be asked about (`RuleSet.any_personal`): an email or phone both hold,
    a booking contact one's booking carries and the other holds, one both bookings carry. None
    stands for a value that cannot be asked about (a phone held only as national digits, a
    booking's phone), and for a pair whose features fired on values not found here: as before
    this check, such evidence counts."""
    emails, phones = context.values_of("emails"), context.values_of("phones")
    digits = context.values_of("phone_digits") if "phone_digits" in context.mentions else {}
    owned: dict[int, dict[str, tuple[str, str] | None]] = {}  # a mention is in many pairs

    def own(pk: int) -> dict[str, tuple[str, str] | None]:
        if pk in owned:
            return owned[pk]
        out: dict[str, tuple[str, str] | None] = {e: ("emails", e) for e in emails[pk] if e}
        for number in phones[pk]:
            suffix = phone_suffix(number) if number else None
            if suffix:
                out.setdefault(suffix, ("phones", number))
        for number in digits.get(pk) or ():
            suffix = phone_suffix(number) if number else None
            if suffix:
                out.setdefault(suffix, None)
        owned[pk] = out
        return out

    evidence: list[list[tuple[str, str] | None]] = []
    for x, y in zip(a.tolist(), b.tolist(), strict=True):
        own_x, own_y = own(x), own(y)
        booked_x, booked_y = set(booking.get(x, ())), set(booking.get(y, ()))
        found: list[tuple[str, str] | None] = []
        for value in own_x.keys() & own_y.keys():
            found += [own_x[value], own_y[value]]
        found += [own_y[v] for v in booked_x & own_y.keys()]
        found += [own_x[v] for v in booked_y & own_x.keys()]
        for value in booked_x & booked_y:
            held = own_x.get(value) or own_y.get(value)
            found.append(held or (("emails", value) if "@" in value else None))
        evidence.append(found or [None])
    return evidence


@dataclass
class Decided:
    """One row per pair: a, b, decision, source (rule | external | model), score, probability,
    rule, actor, threshold; and what the rules and the guards on model merges did."""

    decisions: pd.DataFrame
    rule_hits: dict[str, int] = field(default_factory=dict)
    name_only_to_review: int = 0
    other_first_name_to_review: int = 0


def decide(
    features: pd.DataFrame,
    pairs: PairsToDecide,
    bundle: Bundle,
    version: str,
    rules: RuleSet,
    mentions: pd.DataFrame,
    shared: SharedValues | None = None,
    booking: Mapping[int, tuple[str, ...]] | None = None,
) -> Decided:
    """The decision of every pair (`features` row i is pair i: its comparison vector).

    `mentions` is a frame holding at least both sides of every pair; `shared` answers which of
    their emails and phones are written for too many people in the whole domain (without it,
    `mentions` must be the whole domain's frame); `booking`, the contacts of the bookings each
    mention is on (`features.comparisons.booking_contacts_by_mention`)."""
    n = len(features)
    p = bundle.model.predict_proba(features) if n else np.zeros(0)
    has_ext = ~np.isnan(pairs.external)
    score = np.where(has_ext, pairs.external, p)
    decision = bundle.thresholds.decide(score).astype(object)
    source = np.where(has_ext, "external", "model").astype(object)
    actor = np.array(
        [f"scorer:{x}" if e else f"model:{version}" for x, e in zip(pairs.scorer, has_ext, strict=True)],
        dtype=object,
    )
    rule = np.full(n, None, dtype=object)
    threshold = np.where(decision == "merge", bundle.thresholds.merge, bundle.thresholds.review)
    context = rules.exclusions(mentions, shared)
    level, action = (
        rules.apply(features, mentions, shared, context)
        if n
        else (np.zeros(0, np.int32), np.zeros(0, object))
    )
    hits = {rules.rule_name(i): int((level == i).sum()) for i in np.unique(level[level >= 0]).tolist()}
    # A link is a floor, not a ceiling: it sends to review a pair the scores would not merge, and
    # leaves a merge of the scores standing (a guest and an airline profile with one phone, one
    # birth date and one name, scored 0.99, went to review because the phone-and-birth-date rule
    # fired first).
    fired = (level >= 0) & ((action == "merge") | (decision != "merge"))
    decision[fired] = np.where(action[fired] == "merge", "merge", "review")
    source[fired], actor[fired] = "rule", "rules"
    rule[fired] = [rules.rule_name(i) for i in level[fired].tolist()]
    threshold = np.where(fired, np.nan, threshold)
    # A name is no identity: a model merge needs one more thing in common (a contact, a birth
    # date, an identifier, an address, a booking); on names alone a person decides. At 100,000
    # travel mentions the model merged hundreds of name-only "james smith" mentions into one.
    # Imported scores are left alone: their system may have seen evidence we do not hold.
    model_merge = (decision == "merge") & (source == "model")
    beyond = agrees_beyond_name(features)
    weak = model_merge & ~beyond
    # A contact written for many people (a family or a desk address) proves nothing about one of
    # them: a merge whose only evidence besides the name is such a contact is a name-only merge.
    # At 20,000 travel mentions one family address on dozens of bookings chained 87 mentions of
    # 13 people into one profile through the guests and passengers it had booked for.
    on_contacts = np.flatnonzero(model_merge & beyond & ~agrees_beyond_name(features, CONTACT_EVIDENCE))
    if len(on_contacts):
        a = features["mention_a"].to_numpy(np.int64)[on_contacts]
        b = features["mention_b"].to_numpy(np.int64)[on_contacts]
        evidence = contact_evidence(context, a, b, booking or {})
        weak[on_contacts[~rules.any_personal(evidence, context)]] = True
    # Two first names that disagree (not a typo, not a nickname) are two people of one family
    # unless something only one person holds says otherwise: a family shares contacts, an address
    # and bookings. A model that learned from 50 labels to trust who booked merged a household's
    # members through them (20,000 travel mentions: pairwise F1 0.73 on one labelling seed, 0.84
    # and 0.87 on the next two); with this check 0.84, 0.87, 0.84.
    other_person = model_merge & ~weak & another_person(features)
    weak |= other_person
    decision[weak] = "review"
    companions = features["travelled_together"].to_numpy() == 1
    conflict = (features["document_conflict"].to_numpy() == 1) | (features["dob_conflict"].to_numpy() == 1)
    decision[companions | (conflict & (decision == "no_match"))] = APART
    table = pd.DataFrame(
        {
            "a": pairs.a,
            "b": pairs.b,
            "decision": decision,
            "source": source,
            "score": score,
            "probability": p,
            "rule": rule,
            "actor": actor,
            "threshold": threshold,
        }
    )
    return Decided(table, hits, int((weak & ~other_person).sum()), int(other_person.sum()))
