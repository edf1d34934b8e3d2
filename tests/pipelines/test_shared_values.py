"""Which emails and phones the rules treat as shared (written for more than a few names) is a fact
about the whole domain: the store's per-value answer (`shared_contact_values`, used online) is
the batch's answer over the domain's frame (`shared_in_frame`), and a rule set asked through the
store decides as it decides over the whole frame."""

from __future__ import annotations

from pathlib import Path

import pytest

from features.frame import load_mentions
from pipelines.ingest import ingest_path
from pipelines.synthetic import GeneratorConfig, write_dataset
from profiles.resolution.rules import shared_in_frame
from profiles.settings import Settings
from profiles.store import Store, open_store
from profiles.store.reads import holders_of, shared_contact_values


def _check(store: Store, settings: Settings, tmp_path: Path) -> None:
    info = write_dataset(GeneratorConfig(persons=300, seed=4, household_rate=0.6), tmp_path / "d")
    ingest_path(store, settings, Path(info["objects_file"]))
    unshared = 0  # values no longer shared without the mention left out
    with store.reading() as conn:
        frame = load_mentions(conn, store.domain)
        for column in ("emails", "phones"):
            values = {v for items in frame[column] for v in items if v}
            long = frame[[column, "first_name", "last_name"]].explode(column).dropna(subset=[column])
            mentions_per_value = long[column].value_counts()
            named = long[(long["first_name"].fillna("") != "") | (long["last_name"].fillna("") != "")]
            spellings = named.drop_duplicates([column, "first_name", "last_name"])[column].value_counts()
            for most in (1, 2):
                expected = shared_in_frame(frame, column, most)
                assert expected and expected != values  # some are shared, some are not
                # values on more mentions than the count where the probe stops, under few names
                assert set(mentions_per_value.index[mentions_per_value > most + 1]) - expected
                # values under more spellings than `most` that are one person's (typos, nicknames)
                assert set(spellings.index[spellings > most]) - expected
                assert shared_contact_values(conn, store.domain, column, values, most) == expected
                some = set(sorted(values)[::7])
                assert shared_contact_values(conn, store.domain, column, some, most) == expected & some
            # left out of the count: one holder of each of a few shared values, in turn
            for value in sorted(shared_in_frame(frame, column, 2))[:5]:
                held = frame[frame[column].map(lambda items, v=value: v in items)]
                assert holders_of(conn, store.domain, column, value, 1000) == sorted(held["mention_pk"])
                pk = int(held["mention_pk"].iloc[-1])
                rest = shared_in_frame(frame[frame["mention_pk"] != pk], column, 2)
                asked = shared_contact_values(conn, store.domain, column, {value}, 2, without={pk})
                assert asked == rest & {value}
                unshared += not asked
    assert unshared


def test_shared_values_asked_of_the_store_are_those_of_the_whole_frame(
    tmp_path: Path, settings: Settings
) -> None:
    _check(open_store(settings), settings, tmp_path)


@pytest.mark.postgres
def test_shared_values_asked_of_postgres_are_those_of_the_whole_frame(
    pg_store: Store, settings: Settings, tmp_path: Path
) -> None:
    _check(pg_store, settings, tmp_path)
