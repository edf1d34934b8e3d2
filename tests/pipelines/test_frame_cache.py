"""The parsed-mentions cache: reused while the stored mentions are the same, rebuilt as soon as
one is added, changed or removed, and never trusted when it is damaged or from another version."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import features.frame
from features.frame import load_mentions
from pipelines.ingest import ingest_jsonl
from pipelines.privacy import erase
from profiles.settings import Settings
from profiles.store import Store
from tests.pipelines.helpers import guest, lines


def _ingest(store: Store, settings: Settings, tmp_path: Path, name: str, *objects: dict) -> None:
    path = tmp_path / f"{name}.jsonl"
    path.write_bytes(lines(*objects))
    ingest_jsonl(store, settings, path)


def _load(store: Store, settings: Settings, cache: bool = True) -> pd.DataFrame:
    with store.reading() as conn:
        return load_mentions(conn, store.domain, cache=settings.frame_cache_path() if cache else None)


def _mtime(settings: Settings) -> int:
    return settings.frame_cache_path().stat().st_mtime_ns


@pytest.fixture
def two_guests(store: Store, settings: Settings, tmp_path: Path) -> Store:
    _ingest(
        store,
        settings,
        tmp_path,
        "first",
        guest("G1", first_name="Ana", last_name="Garcia", emails=[{"address": "ana@example.com"}]),
        guest("G2", first_name="Luis", last_name="Perez", phones=[{"number": "+34 612 345 678"}]),
    )
    return store


def test_a_kept_frame_equals_a_fresh_load_and_is_reused(two_guests: Store, settings: Settings) -> None:
    first = _load(two_guests, settings)
    assert settings.frame_cache_path().exists()
    stamp = _mtime(settings)
    again = _load(two_guests, settings)
    pd.testing.assert_frame_equal(again, _load(two_guests, settings, cache=False))
    pd.testing.assert_frame_equal(again, first)
    assert _mtime(settings) == stamp  # read, not rewritten


def test_a_changed_added_or_erased_mention_is_never_served_from_the_cache(
    two_guests: Store, settings: Settings, tmp_path: Path
) -> None:
    _load(two_guests, settings)
    # a changed mention (same key, new content) keeps its place but not its cached values
    _ingest(
        two_guests,
        settings,
        tmp_path,
        "changed",
        guest(
            "G1",
            "2024-02-01T00:00:00Z",
            first_name="Ana",
            last_name="Garcia",
            emails=[{"address": "ana@new.example"}],
        ),
    )
    frame = _load(two_guests, settings)
    assert ("ana@new.example",) in frame["emails"].tolist()
    pd.testing.assert_frame_equal(frame, _load(two_guests, settings, cache=False))
    _ingest(two_guests, settings, tmp_path, "added", guest("G3", first_name="Eva", last_name="Lind"))
    assert len(_load(two_guests, settings)) == 3
    key = frame.loc[frame["first_name"] == "luis", "mention_key"].iloc[0]
    erase(two_guests, settings, "dpo", mention_keys=[key])
    assert not settings.frame_cache_path().exists()  # erasure removes the kept copy of the person
    after = _load(two_guests, settings)
    assert key not in after["mention_key"].tolist() and len(after) == 2


def test_a_damaged_or_foreign_cache_is_rebuilt(
    two_guests: Store, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = _load(two_guests, settings, cache=False)
    path = settings.frame_cache_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not a pickle")
    pd.testing.assert_frame_equal(_load(two_guests, settings), expected)
    path.write_bytes(path.read_bytes()[:100])  # cut short, as by a full disk
    pd.testing.assert_frame_equal(_load(two_guests, settings), expected)
    # a frame kept by another version of the code is not read, even for the same mentions
    stamp = _mtime(settings)
    monkeypatch.setattr(features.frame, "FRAME_CACHE_VERSION", features.frame.FRAME_CACHE_VERSION + 1)
    pd.testing.assert_frame_equal(_load(two_guests, settings), expected)
    assert _mtime(settings) != stamp


def test_a_home_where_the_cache_cannot_be_written_still_loads(two_guests: Store, settings: Settings) -> None:
    expected = _load(two_guests, settings, cache=False)
    blocker = settings.frame_cache_path().parent
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("a file where the cache folder would go")
    pd.testing.assert_frame_equal(_load(two_guests, settings), expected)
    assert blocker.is_file()


def _counting_parser(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record how many mentions each parse of normalized mentions handles."""
    parsed: list[int] = []
    parse = features.frame.frame_from_normalized

    def counted(items):  # type: ignore[no-untyped-def]
        rows = list(items)
        parsed.append(len(rows))
        return parse(rows)

    monkeypatch.setattr(features.frame, "frame_from_normalized", counted)
    return parsed


def test_only_new_and_changed_mentions_are_parsed_again(
    store: Store, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    people = [guest(f"G{i}", first_name=f"Name{i}", last_name="Lind") for i in range(8)]
    _ingest(store, settings, tmp_path, "first", *people)
    _load(store, settings)
    _ingest(
        store,
        settings,
        tmp_path,
        "second",
        guest("G3", "2024-02-01T00:00:00Z", first_name="Changed", last_name="Lind"),
        guest("G9", first_name="Added", last_name="Lind"),
    )
    parsed = _counting_parser(monkeypatch)
    frame = _load(store, settings)
    assert sum(parsed) == 2  # the changed and the added mention, not all nine
    monkeypatch.undo()
    pd.testing.assert_frame_equal(frame, _load(store, settings, cache=False))
    assert "changed" in frame["first_name"].tolist() and len(frame) == 9


def test_a_file_ingest_leaves_the_frame_ready(
    store: Store, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipelines.ingest import ingest_path

    path = tmp_path / "guests.jsonl"
    path.write_bytes(lines(guest("G1", first_name="Ana", last_name="Garcia"), guest("G2", first_name="Eva")))
    ingest_path(store, settings, path)
    parsed = _counting_parser(monkeypatch)
    frame = _load(store, settings)
    assert parsed == [] and len(frame) == 2  # block and resolve find it parsed already


def test_building_frames_never_switches_the_garbage_collector(
    two_guests: Store, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The collector is process-wide: a frame built on one thread must not pause it for all."""
    import gc

    def refuse() -> None:
        raise AssertionError("gc.disable() called")

    monkeypatch.setattr(gc, "disable", refuse)
    monkeypatch.setattr(gc, "freeze", refuse)
    assert len(_load(two_guests, settings, cache=False)) == 2
    assert len(_load(two_guests, settings)) == 2 and len(_load(two_guests, settings)) == 2
