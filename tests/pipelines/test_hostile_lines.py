"""Hostile JSON Lines input: every class of line that `json.loads` or the store cannot take is
rejected alone, with a reason, and every valid object around it is stored exactly once."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from pipelines.ingest import ingest_jsonl
from profiles.settings import Settings
from profiles.store import Store
from profiles.store.schema import objects, rejected

_counter = itertools.count()
NAMES = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=12
)


def valid(tag: str, first: str = "Ana", last: str = "Garcia") -> dict:
    return {
        "object_type": "guest_profile",
        "source": "pms",
        "id": f"V-{tag}",
        "modified_at": "2024-01-01T00:00:00Z",
        "data": {"traveller": {"first_name": first, "last_name": last}},
    }


def _with(tag: str, inner: str) -> bytes:
    """A guest profile whose free-form preferences hold `inner` (raw JSON text)."""
    head = json.dumps(valid(f"H-{tag}"))[:-2]  # without the closing braces of data and the object
    return (head + f', "preferences": {inner}}}}}').encode()


def _person(tag: str, first_name_json: str) -> bytes:
    head = '{"object_type": "guest_profile", "source": "pms", "id": "H-' + tag + '", '
    body = '"modified_at": "2024-01-01T00:00:00Z", "data": {"traveller": {"first_name": '
    return (head + body + first_name_json + "}}}").encode()


# Each maker turns a unique tag (so that no two hostile lines are the same bytes) and a drawn
# size into one hostile line.
HOSTILE: dict[str, Callable[[str, int], bytes]] = {
    "deep arrays": lambda t, n: _with(t, '{"x": ' + "[" * (65 + n * 37) + "]" * (65 + n * 37) + "}"),
    "deep objects": lambda t, n: _with(t, '{"a": ' * (70 + n) + "1" + "}" * (70 + n)),
    "huge integer": lambda t, n: _with(t, '{"x": 1' + "7" * (19 + n * 411) + "}"),
    "integer past 64 bits": lambda t, n: _with(t, '{"x": -9223372036854775809}'),
    "float overflow": lambda t, n: _with(t, '{"x": 1e' + str(400 + n) + "}"),
    "NaN": lambda t, n: _with(t, '{"x": NaN}'),
    "Infinity": lambda t, n: _with(t, '{"x": -Infinity}'),
    "duplicate key": lambda t, n: _person(t, '"Ana", "first_name": "Eva"'),
    "lone surrogate": lambda t, n: _person(t, '"An\\ud800a"' if n % 2 else '"\\udfff"'),
    "NUL escape": lambda t, n: _person(t, '"A\\u0000na"'),
    "NUL byte": lambda t, n: _person(t, '"Ana"')[:-1] + b"\x00}",
    "byte-order mark": lambda t, n: b"\xef\xbb\xbf" + json.dumps(valid(f"B-{t}")).encode(),
    "top-level scalar": lambda t, n: [
        str(10**9 + next(_counter)).encode(),
        json.dumps(f"s-{t}").encode(),
        b"null" + b" " * next(_counter),  # JSON allows the spaces; they keep each line unique
    ][n % 3],
    "top-level array": lambda t, n: json.dumps([valid(f"A-{t}")]).encode(),
    "100k-character key": lambda t, n: _with(t, '{"%s": 1}' % ("k" * 100_000)),
    "over-long first name": lambda t, n: _person(t, json.dumps("x" * (201 + n))),
    # cut before the id, two lines would be the same bytes, which the rejection store keeps once
    # (counted twice): the spaces keep each line unique
    "cut short": lambda t, n: json.dumps(valid(f"C-{t}")).encode()[: 20 + n % 40] + b" " * next(_counter),
}


@st.composite
def files(draw: st.DrawFn) -> tuple[list[bytes], list[dict], list[bytes]]:
    """(lines as written, the valid objects among them, the hostile lines among them)."""
    run = next(_counter)
    items: list[tuple[str, bytes]] = []
    for i in range(draw(st.integers(1, 8))):
        first = draw(NAMES)
        obj = valid(f"{run}-{i}", first=first)
        text = json.dumps(obj, ensure_ascii=draw(st.booleans()))  # escaped or raw non-ASCII
        items.append(("valid", text.encode()))
    kinds = draw(st.lists(st.sampled_from(sorted(HOSTILE)), min_size=1, max_size=8))
    for j, kind in enumerate(kinds):
        items.append(("hostile", HOSTILE[kind](f"{run}-{j}", draw(st.integers(0, 30)))))
    order = draw(st.permutations(range(len(items))))
    endings = [draw(st.sampled_from([b"\n", b"\r\n"])) for _ in items]
    if draw(st.booleans()):
        endings[-1] = b""  # the last line ends without a newline
    lines = [items[k][1] + end for k, end in zip(order, endings, strict=True)]
    good = [json.loads(body) for kind, body in items if kind == "valid"]
    bad = [body for kind, body in items if kind == "hostile"]
    return lines, good, bad


@pytest.mark.slow
@hypothesis_settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(drawn=files())
def test_hostile_lines_are_rejected_alone_and_valid_objects_stored_once(
    drawn: tuple[list[bytes], list[dict], list[bytes]], store: Store, settings: Settings, tmp_path: Path
) -> None:
    lines, good, bad = drawn
    path = tmp_path / f"mixed-{next(_counter)}.jsonl"
    path.write_bytes(b"".join(lines))
    result = ingest_jsonl(store, settings.model_copy(update={"ingest_batch_size": 5}), path)
    with store.reading() as conn:
        stored = dict(
            conn.execute(
                select(objects.c.object_id, func.count())
                .where(objects.c.object_id.in_([o["id"] for o in good]))
                .group_by(objects.c.object_id)
            ).all()
        )
        kept = conn.execute(
            select(rejected.c.raw, rejected.c.field, rejected.c.reason).where(rejected.c.origin == str(path))
        ).all()
    assert stored == {o["id"]: 1 for o in good}
    assert result.inserted == len(good)
    assert sorted(bytes(r.raw) for r in kept) == sorted(bad)
    assert all(r.reason for r in kept)


def test_each_hostile_class_says_why(store: Store, settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "classes.jsonl"
    bodies = {kind: make(f"c-{i}", 1) for i, (kind, make) in enumerate(sorted(HOSTILE.items()))}
    path.write_bytes(b"\n".join([json.dumps(valid("first")).encode(), *bodies.values()]))
    result = ingest_jsonl(store, settings, path)
    assert (result.inserted, result.rejected) == (1, len(HOSTILE))
    with store.reading() as conn:
        reasons = {bytes(r.raw): r.reason for r in conn.execute(select(rejected.c.raw, rejected.c.reason))}
    why = {kind: reasons[body] for kind, body in bodies.items()}
    assert "nested deeper" in why["deep arrays"] and "nested deeper" in why["deep objects"]
    assert "characters" in why["huge integer"] and "64-bit" in why["integer past 64 bits"]
    assert "too large" in why["float overflow"] and "NaN" in why["NaN"] and "Infinity" in why["Infinity"]
    assert "twice" in why["duplicate key"] and "surrogate" in why["lone surrogate"]
    assert "NUL" in why["NUL escape"] and "byte-order mark" in why["byte-order mark"]
    assert "JSON object" in why["top-level scalar"] and "JSON object" in why["top-level array"]
    assert "key of 100,000 characters" in why["100k-character key"]
    assert "200 characters" in why["over-long first name"]


@pytest.mark.postgres
def test_hostile_classes_on_postgres_leave_the_rest_of_the_batch_stored(
    pg_store: Store, settings: Settings, tmp_path: Path
) -> None:
    """PostgreSQL refuses NUL characters, surrogates and NaN in JSON and over-long values in sized
    columns: one such value must not roll back the batch around it."""
    path = tmp_path / "pg.jsonl"
    hostile = [make(f"pg-{i}", 2) for i, make in enumerate(HOSTILE.values())]
    good = [json.dumps(valid(f"pg-{i}", first="Zoë", last="Ñúñez")).encode() for i in range(5)]
    path.write_bytes(b"\n".join(good[:2] + hostile + good[2:]) + b"\n")
    pg_settings = settings.model_copy(update={"domain": pg_store.domain, "ingest_batch_size": 1000})
    result = ingest_jsonl(pg_store, pg_settings, path)
    assert (result.inserted, result.rejected) == (5, len(HOSTILE))
