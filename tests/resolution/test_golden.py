"""Golden-record survivorship: each rule, traceability, configuration errors."""

from __future__ import annotations

import pandas as pd
import pytest

from profiles.errors import ConfigError
from profiles.resolution.golden import Survivorship, golden_record, golden_records

FIELDS = ("name_original", "emails", "city")


def frame() -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "mention_key": "pms/1",
                "source": "pms",
                "modified_at": "2026-01-01",
                "name_original": "Jon Smith",
                "emails": ("jon@x.com",),
                "city": "London",
            },
            {
                "mention_key": "pss/2",
                "source": "pss",
                "modified_at": "2026-03-01",
                "name_original": "SMITH/JON MR",
                "emails": ("jon@x.com", "j.smith@work.com"),
                "city": "Leeds",
            },
            {
                "mention_key": "web/3",
                "source": "web",
                "modified_at": "2026-02-01",
                "name_original": "Jonathan Smith",
                "emails": (),
                "city": "London",
            },
        ]
    )


def test_default_is_most_frequent_with_sources_and_all_values() -> None:
    golden = golden_record(frame(), Survivorship(FIELDS))
    assert golden["city"] == {
        "value": "London",
        "rule": "most_frequent",
        "from": ["pms/1", "web/3"],
        "support": 2,
    }
    assert golden["emails"]["value"] == "jon@x.com"
    assert golden["emails"]["values"] == ["jon@x.com", "j.smith@work.com"]


def test_most_recent_most_complete_and_source_priority() -> None:
    rules = {"city": "most_recent", "name_original": "most_complete", "emails": "source_priority"}
    golden = golden_record(frame(), Survivorship(FIELDS, rules, ("pss", "pms")))
    assert golden["city"]["value"] == "Leeds" and golden["city"]["from"] == ["pss/2"]
    assert golden["name_original"]["value"] == "Jonathan Smith"
    assert golden["emails"]["value"] in {"jon@x.com", "j.smith@work.com"}
    assert golden["emails"]["rule"] == "source_priority"
    # source priority picks the trusted source's value even when another is more frequent
    golden = golden_record(frame(), Survivorship(FIELDS, {"city": "source_priority"}, ("pss",)))
    assert golden["city"]["value"] == "Leeds"


def test_fields_without_values_are_left_out() -> None:
    empty = frame().assign(city="")
    assert "city" not in golden_record(empty, Survivorship(FIELDS))


@pytest.mark.parametrize(
    ("rules", "priority", "message"),
    [
        ({"city": "loudest"}, (), "survivorship.city"),
        ({"shoe_size": "most_recent"}, (), "shoe_size"),
        ({"city": "source_priority"}, (), "source_priority"),
    ],
)
def test_bad_survivorship_names_the_field(
    rules: dict[str, str], priority: tuple[str, ...], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        Survivorship(FIELDS, rules, priority)


def test_all_profiles_at_once_equal_one_profile_at_a_time() -> None:
    import random

    rng = random.Random(5)
    rows = []
    for i in range(300):
        rows.append(
            {
                "profile_id": f"p{rng.randrange(150)}",  # many singletons, some groups
                "mention_key": f"m{i}",
                "source": rng.choice(["pms", "pss", "web"]),
                "modified_at": f"2026-0{rng.randrange(1, 10)}-01",
                "name_original": rng.choice(["Ann Lee", "Anne Lee", "", "A LEE"]),
                "emails": tuple(rng.sample(["a@x.com", "bb@y.com", "c@z.com"], rng.randrange(0, 4))),
                "city": rng.choice(["Leeds", "York", ""]),
            }
        )
    table = pd.DataFrame(rows)
    for rule in ("most_frequent", "most_recent", "most_complete", "source_priority"):
        how = Survivorship(FIELDS, {"name_original": rule, "city": rule, "emails": rule}, ("pss", "pms"))
        together = golden_records(table, "profile_id", how)
        one_by_one = {
            str(pid): golden_record(group.reset_index(drop=True), how)
            for pid, group in table.groupby("profile_id", sort=False)
        }
        assert together == one_by_one


def test_one_mention_shortcut_chooses_what_the_general_rule_chooses() -> None:
    from profiles.resolution.golden import _choose, _values

    row = {
        "mention_key": "m1",
        "source": "pss",
        "modified_at": "2026-01-01",
        "name_original": "Ann Lee",
        "emails": ("a@x.com", "longer.address@y.com", "b@z.com"),
        "city": "Leeds",
    }
    for rule in ("most_frequent", "most_recent", "most_complete", "source_priority"):
        how = Survivorship(FIELDS, {"emails": rule}, ("pms", "pss"))
        record = golden_record(pd.DataFrame([row]), how)
        candidates = [(v, row["modified_at"], row["source"], 0) for v in _values(row["emails"])]
        assert record["emails"]["value"] == _choose(rule, candidates, how.source_priority)
        assert record["emails"]["values"] == list(row["emails"]) and record["emails"]["support"] == 1
