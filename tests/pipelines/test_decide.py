"""The decision policy's guard on what a model merge rests on: a name alone goes to review, and so
does a name plus a contact written for many people (a family or desk address), whichever feature
the contact shows up in (the same email, or who booked a trip)."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import numpy as np
import pandas as pd
import pytest

from features.comparisons import MentionArrays, booking_contacts_by_mention, compare
from models.bundle import Bundle, Thresholds
from models.classifiers import Matcher
from pipelines.decide import Decided, PairsToDecide, decide
from profiles.resolution.rules import RuleSet, load_rules, shared_in_frame
from tests.features.people import frame_of, interactions_of


class _Sure:
    """A model sure of every pair: what the guard lets through is all that merges."""

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        return np.full(len(features), 0.99)


PEOPLE = (
    {"first_name": "Ana", "last_name": "Garcia", "emails": [{"address": "family@x.com"}]},  # 1
    {"first_name": "Ana", "last_name": "Garcia"},  # 2: a passenger booked from the family address
    {"first_name": "Luis", "last_name": "Garcia", "emails": [{"address": "family@x.com"}]},  # 3
    {"first_name": "Eva", "last_name": "Garcia", "emails": [{"address": "family@x.com"}]},  # 4
    {"first_name": "Ana", "last_name": "Garcia", "emails": [{"address": "ana@x.com"}]},  # 5
    {"first_name": "Ana", "last_name": "Garcia"},  # 6: a passenger booked from Ana's own address
    {"first_name": "Ana", "last_name": "Garcia"},  # 7: booked from the family address too
    {"first_name": "Ana", "last_name": "Garcia", "phones": [{"number": "+34 612 345 678"}]},  # 8
    {"first_name": "Ana", "last_name": "Garcia", "phones": [{"number": "+34 612 345 678"}]},  # 9
)
PAIRS = [(1, 2), (5, 6), (2, 7), (1, 4), (1, 5), (8, 9)]
#                 family  own    family  family  name   phone
EXPECTED = ["review", "merge", "review", "review", "review", "merge"]


@pytest.mark.parametrize("asked_of", ["frame", "store"])
def test_a_merge_on_a_contact_written_for_many_people_goes_to_review(asked_of: str) -> None:
    frame = frame_of(*PEOPLE)
    travel = interactions_of(
        [(2, "pss/PNR1", "passenger"), (6, "pss/PNR2", "passenger"), (7, "pss/PNR3", "passenger")],
        contacts={"pss/PNR1": ("family@x.com",), "pss/PNR2": ("ana@x.com",), "pss/PNR3": ("family@x.com",)},
    )
    a, b = np.array([p[0] for p in PAIRS]), np.array([p[1] for p in PAIRS])
    features = compare(MentionArrays.build(frame, travel), a, b, np.full(len(a), 0.5))
    assert features["booker_contact_eq"].tolist()[:2] == [1, 1] and features.loc[2, "same_booker"] == 1
    rules = RuleSet(version="test", levels=(), shared_value_max_names=2)
    asked: list[tuple[str, set[str]]] = []

    def store(column: str, values: set[str], most: int) -> set[str]:
        asked.append((column, set(values)))  # the online path: only the values at stake are asked
        return shared_in_frame(frame, column, most) & values

    outcome = decide(
        features,
        PairsToDecide.of(a, b, np.full(len(a), 0.5)),
        Bundle(cast(Matcher, _Sure()), Thresholds(merge=0.9, review=0.5)),
        "v1",
        rules,
        frame,
        store if asked_of == "store" else None,
        booking_contacts_by_mention(travel),
    )
    assert outcome.decisions["decision"].tolist() == EXPECTED
    assert outcome.name_only_to_review == 4
    if asked_of == "store":
        assert {v for _, values in asked for v in values} <= {"family@x.com", "ana@x.com", "+34612345678"}


class _Unsure:
    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        return np.full(len(features), 0.1)


@pytest.mark.parametrize(
    ("model", "expected"), [(_Sure(), ("merge", "model")), (_Unsure(), ("review", "rule"))]
)
def test_a_link_rule_is_a_floor_not_a_ceiling(
    tmp_path: Path, model: object, expected: tuple[str, str]
) -> None:
    """A `link` level sends to review a pair the model would not merge, and leaves the model's
    merge of a pair standing (with a birth date and a phone in common, a guest and an airline
    profile had gone to review though the model was sure)."""
    path = tmp_path / "rules.yaml"
    path.write_text(
        'version: "t"\nlevels:\n  - name: same_phone\n    action: link\n    when: {phone_exact: 1}\n',
        encoding="utf-8",
    )
    frame = frame_of(*PEOPLE)
    a, b = np.array([8]), np.array([9])
    features = compare(MentionArrays.build(frame, None), a, b, np.full(1, 0.5))
    outcome = decide(
        features,
        PairsToDecide.of(a, b, np.full(1, 0.5)),
        Bundle(cast(Matcher, model), Thresholds(merge=0.9, review=0.05)),
        "v1",
        load_rules(path),
        frame,
    )
    row = outcome.decisions.iloc[0]
    assert (row["decision"], row["source"]) == expected
    assert outcome.rule_hits == {"t/same_phone": 1}


def _decided_by_a_sure_model(frame: pd.DataFrame, pairs: list[tuple[int, int]]) -> Decided:
    """The decisions on `pairs` of a model sure of every pair, with no rules: the guards decide."""
    a, b = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
    features = compare(MentionArrays.build(frame, None), a, b, np.full(len(a), 0.5))
    return decide(
        features,
        PairsToDecide.of(a, b, np.full(len(a), 0.5)),
        Bundle(cast(Matcher, _Sure()), Thresholds(merge=0.9, review=0.5)),
        "v1",
        RuleSet(version="test", levels=(), shared_value_max_names=5),
        frame,
    )


def test_a_merge_of_two_first_names_needs_what_one_person_holds() -> None:
    """Two members of one family share contacts, an address and bookings; with another first name
    (not a typo, not a nickname) a model merge needs a birth date, loyalty id or document too."""
    home = {"line1": "Calle Mayor 3", "city": "Madrid", "postal_code": "28013", "country": "ES"}
    phone = [{"number": "+34 612 345 678"}]
    frame = frame_of(
        {"first_name": "Ana", "last_name": "Garcia", "phones": phone, "addresses": [home]},
        {"first_name": "Luis", "last_name": "Garcia", "phones": phone, "addresses": [home]},
        {"first_name": "Ana", "last_name": "Garcia", "phones": phone, "date_of_birth": "1980-02-03"},
        {"first_name": "Luisa", "last_name": "Garcia", "phones": phone, "date_of_birth": "1980-02-03"},
        {"first_name": "Pepe", "last_name": "Garcia", "phones": phone, "addresses": [home]},
        {"first_name": "Jose", "last_name": "Garcia", "phones": phone, "addresses": [home]},
        {"first_name": "Ana", "last_name": "Garcia", "phones": phone, "addresses": [home]},
        {"first_name": "Garcia", "last_name": "Ana", "phones": phone, "addresses": [home]},
    )
    outcome = _decided_by_a_sure_model(frame, [(1, 2), (3, 4), (5, 6), (7, 8)])
    #              Ana/Luis   same birth date   Pepe is a nickname of Jose   written the other way
    assert outcome.decisions["decision"].tolist() == ["review", "merge", "merge", "merge"]
    assert outcome.other_first_name_to_review == 1 and outcome.name_only_to_review == 0


def test_a_session_whose_email_names_another_family_member_goes_to_review() -> None:
    """A web session carries an email and no name; booked trips tie it to their travellers. Where
    the email names someone else of the family ('marie.gall' for Jeannot Le Gall), a model merge
    needs what one person holds, as for two first names."""
    email = [{"address": "marie.gall@orange.fr"}]
    phone = [{"number": "+33 6 12 90 74 29"}]  # something besides the name: the name-only guard passes
    frame = frame_of(
        {"first_name": "Jeannot", "last_name": "Le Gall", "phones": phone},
        {"emails": email, "phones": phone},
        {"first_name": "Marie", "last_name": "Le Gall", "phones": phone},
        {"emails": email, "phones": phone},
        {"first_name": "Jeannot", "last_name": "Le Gall", "phones": phone, "date_of_birth": "1950-01-02"},
        {"emails": email, "phones": phone, "date_of_birth": "1950-01-02"},
    )
    outcome = _decided_by_a_sure_model(frame, [(1, 2), (3, 4), (5, 6)])
    assert outcome.decisions["decision"].tolist() == ["review", "merge", "merge"]
    assert outcome.other_first_name_to_review == 1 and outcome.name_only_to_review == 0
