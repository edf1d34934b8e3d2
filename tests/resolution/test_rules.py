"""Deterministic rule levels: parsing with field-naming errors, order, unless, exclusions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from profiles.errors import ConfigError
from profiles.resolution.rules import DEFAULT_RULES, load_rules

FEATURES = [
    "loyalty_eq",
    "document_eq",
    "email_exact",
    "phone_exact",
    "dob_exact",
    "first_jw",
    "last_jw",
    "first_nickname_eq",
    "document_conflict",
    "dob_conflict",
    "travelled_together",
    "loyalty_conflict",
    "booked_from_home",
    "same_booker_home",
    "phone_suffix_eq",
]
# features a pair lacks unless a test gives them: no phone on one side is no phone conflict
MISSING_UNLESS_GIVEN = {"phone_suffix_eq"}


def pairs(*rows: dict[str, float]) -> pd.DataFrame:
    frame = pd.DataFrame(
        [
            {name: row.get(name, np.nan if name in MISSING_UNLESS_GIVEN else 0.0) for name in FEATURES}
            for row in rows
        ],
        dtype=float,
    )
    frame.insert(0, "mention_b", [2 * i + 2 for i in range(len(rows))])
    frame.insert(0, "mention_a", [2 * i + 1 for i in range(len(rows))])
    return frame


def mentions(
    emails: dict[int, tuple[str, ...]],
    names: dict[int, str] | None = None,
    born: dict[int, str] | None = None,
) -> pd.DataFrame:
    names, born = names or {}, born or {}
    rows = []
    for pk in sorted(emails):
        first, _, last = names.get(pk, "ana garcia").partition(" ")
        rows.append(
            {
                "first_name": first,
                "last_name": last,
                "date_of_birth": born.get(pk, ""),
                "emails": emails[pk],
                "phones": (),
            }
        )
    return pd.DataFrame(rows, index=sorted(emails))


def test_the_shipped_rules_load_with_a_version_and_both_actions() -> None:
    rules = load_rules()
    assert rules.version and rules.source == str(DEFAULT_RULES)
    assert {r.action for r in rules.levels} == {"merge", "link"}
    assert "reservations" in rules.generic_email_local_parts


def test_first_level_that_holds_decides_and_unless_vetoes() -> None:
    rules = load_rules()
    features = pairs(
        {"loyalty_eq": 1, "document_eq": 1, "first_jw": 1},  # loyalty level first
        {"document_eq": 1, "first_jw": 1},
        {"document_eq": 1, "dob_conflict": 1, "first_jw": 1},  # vetoed by unless
        {"phone_exact": 1, "dob_exact": 1, "first_jw": 1},  # link only
        {"email_exact": 0.0, "first_jw": 1},  # nothing
    )
    frame = mentions({pk: () for pk in range(1, 11)})
    frame.loc[[7, 8], "phones"] = pd.Series([("+34600111222",), ("+34600111222",)], index=[7, 8])
    level, action = rules.apply(features, frame)
    names = [rules.levels[i].name if i >= 0 else None for i in level]
    assert names == ["same_loyalty_id", "same_document", None, "same_phone_same_birth_date", None]
    assert list(action) == ["merge", "merge", "", "link", ""]


def test_a_name_and_a_birth_date_together_merge_and_neither_alone() -> None:
    rules = load_rules()
    features = pairs(
        {"dob_exact": 1, "first_jw": 1, "last_jw": 1},
        {"dob_exact": 1, "first_jw": 0.5, "first_nickname_eq": 1, "last_jw": 0.95},  # a nickname
        {"dob_exact": 1, "first_jw": 0.6, "last_jw": 1},  # twins: another first name
        {"dob_exact": 0, "first_jw": 1, "last_jw": 1},  # the name alone
        {"dob_exact": 1, "first_jw": 1, "last_jw": 1, "travelled_together": 1},  # co-travellers
    )
    level, action = rules.apply(features, mentions({pk: () for pk in range(1, 11)}))
    names = [rules.levels[i].name if i >= 0 else None for i in level]
    assert names == ["same_name_same_birth_date"] * 2 + [None] * 3
    assert list(action[:2]) == ["merge", "merge"]


def test_a_name_on_a_trip_booked_from_the_others_home_merges() -> None:
    rules = load_rules()
    features = pairs(
        {"booked_from_home": 1, "first_jw": 1, "last_jw": 1},
        {"booked_from_home": 1, "first_jw": 0.6, "last_jw": 1},  # another member of the family
        {"booked_from_home": 1, "first_jw": 1, "last_jw": 1, "dob_conflict": 1},  # father and son
        {"booked_from_home": 0, "first_jw": 1, "last_jw": 1},
    )
    level, _ = rules.apply(features, mentions({pk: () for pk in range(1, 9)}))
    names = [rules.levels[i].name if i >= 0 else None for i in level]
    assert names == ["same_name_booked_from_home", None, None, None]


def test_one_name_on_two_trips_booked_from_one_home_merges() -> None:
    rules = load_rules()
    features = pairs(
        {"same_booker_home": 1, "first_jw": 1, "last_jw": 1},
        {"same_booker_home": 1, "first_jw": 0.6, "last_jw": 1},  # two members of the household
        {"same_booker_home": 1, "first_jw": 1, "last_jw": 1, "travelled_together": 1},  # namesakes
        {"same_booker_home": 1, "first_jw": 1, "last_jw": 1, "dob_conflict": 1},  # father and son
        {"same_booker_home": 0, "first_jw": 1, "last_jw": 1},
    )
    level, _ = rules.apply(features, mentions({pk: () for pk in range(1, 11)}))
    names = [rules.levels[i].name if i >= 0 else None for i in level]
    assert names == ["same_name_booked_from_home", None, None, None, None]


def test_a_missing_value_never_satisfies_a_condition() -> None:
    rules = load_rules()
    features = pairs({"document_eq": np.nan, "first_jw": 1})
    assert rules.apply(features, mentions({1: (), 2: ()}))[0].tolist() == [-1]


def test_email_rule_skips_generic_and_shared_emails_and_households() -> None:
    rules = load_rules()
    same = {"email_exact": 1, "first_jw": 1, "last_jw": 1}
    features = pairs(same, same, same, {**same, "first_jw": 0.5})
    frame = mentions(
        {
            1: ("ana.garcia@x.com",),
            2: ("ana.garcia@x.com",),
            3: ("reservations@hotel.com",),
            4: ("reservations@hotel.com",),
            5: ("desk@corp.com",),
            6: ("desk@corp.com",),
            7: ("ana@home.es",),
            8: ("ana@home.es",),
            # desk@corp.com is written for three different people: shared
            9: ("desk@corp.com",),
            10: ("desk@corp.com",),
        },
        names={9: "luis perez", 10: "marta ruiz"},
    )
    names = [rules.levels[i].name if i >= 0 else None for i in rules.apply(features, frame)[0]]
    assert names == ["same_email_same_name", None, None, None]


def test_a_phone_conflict_or_an_email_of_two_namesakes_stops_the_contact_rules() -> None:
    """Two John Smiths holding one guessed address, or two mobiles that share nothing: the email
    or the booking contact does not tell these people apart, so no rule merges on it (the model
    still weighs the pair)."""
    rules = load_rules()
    same = {"email_exact": 1, "first_jw": 1, "last_jw": 1}
    features = pairs(
        same,
        {**same, "phone_suffix_eq": 0},  # both hold phones, none in common
        {**same, "phone_suffix_eq": 1},
        same,  # john.smith@x.com: two John Smiths, born 1961 and 1988
        {"booked_from_home": 1, "first_jw": 1, "last_jw": 1, "phone_suffix_eq": 0},
    )
    frame = mentions(
        {pk: ("ana.garcia@x.com",) for pk in range(1, 7)}
        | {7: ("john.smith@x.com",), 8: ("john.smith@x.com",), 11: ("john.smith@x.com",)}
        | {9: (), 10: ()},
        names={7: "john smith", 8: "john smith", 11: "john smith"},
        born={7: "1961-03-04", 11: "1988-10-12"},
    )
    names = [rules.levels[i].name if i >= 0 else None for i in rules.apply(features, frame)[0]]
    assert names == ["same_email_same_name", None, "same_email_same_name", None, None]


def test_a_shared_values_source_is_asked_only_about_values_both_sides_hold() -> None:
    """Online, `shared` asks the store; a veto reads only the values a pair has in common, so
    only those of pairs a rule would fire on are asked, and the levels are the whole frame's."""
    from profiles.resolution.rules import shared_in_frame

    rules = load_rules()
    same = {"email_exact": 1, "first_jw": 1, "last_jw": 1}
    features = pairs(same, same, same, {**same, "first_jw": 0.5})
    frame = mentions(
        {
            1: ("ana.garcia@x.com", "ana@old.es"),
            2: ("ana.garcia@x.com",),
            3: ("desk@corp.com", "luis@x.com"),
            4: ("desk@corp.com",),
            5: ("marta@y.com",),
            6: ("marta@y.com",),
            7: ("ana@home.es",),
            8: ("ana@home.es",),
            9: ("desk@corp.com",),
            10: ("desk@corp.com",),
        },
        names={9: "luis perez", 10: "marta ruiz"},
    )
    asked: list[tuple[str, set[str]]] = []

    def shared(column: str, values: set[str], most: int) -> set[str]:
        asked.append((column, set(values)))
        return shared_in_frame(frame, column, most) & values

    online = rules.apply(features, frame, shared)[0]
    assert online.tolist() == rules.apply(features, frame)[0].tolist()
    assert [rules.levels[i].name if i >= 0 else None for i in online] == [
        "same_email_same_name",
        None,  # desk@corp.com: three names
        "same_email_same_name",
        None,  # the names differ: no rule fires, nothing asked
    ]
    emails = set().union(*(v for c, v in asked if c == "emails"))
    assert emails == {"ana.garcia@x.com", "desk@corp.com", "marta@y.com"}


def test_nickname_alternative_of_the_email_rule() -> None:
    rules = load_rules()
    features = pairs({"email_exact": 1, "first_jw": 0.5, "last_jw": 1, "first_nickname_eq": 1})
    frame = mentions({1: ("bob@x.com",), 2: ("bob@x.com",)})
    assert rules.levels[rules.apply(features, frame)[0][0]].name == "same_email_same_name"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("levels: []", "version"),
        ("version: 1\nlevels: [{name: a, action: explode, when: {email_exact: 1}}]", "levels[0].action"),
        ("version: 1\nlevels: [{name: a, action: merge}]", "levels[0].when"),
        ("version: 1\nlevels: [{name: a, action: merge, when: {email_exact: 'about'}}]", "email_exact"),
        ("version: 1\nlevels: [{name: a, action: merge, when: {x: 1}, exclude: [vip]}]", "exclude"),
        (
            "version: 1\nlevels: [{name: a, action: merge, when: {x: 1}}, {name: a, action: link, when: {x: 1}}]",
            "unique",
        ),
    ],
)
def test_bad_rule_files_name_the_place(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_rules(path)


def test_unknown_feature_is_reported_when_applied(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("version: 1\nlevels: [{name: a, action: merge, when: {no_such_feature: '>=0.5'}}]")
    with pytest.raises(ConfigError, match="no_such_feature"):
        load_rules(path).apply(pairs({}), mentions({1: (), 2: ()}))
