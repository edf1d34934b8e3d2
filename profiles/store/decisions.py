"""Match decisions, external scores and profile events in the store.

`match_decisions` is a history: a row is added whenever a pair's decision changes, so the latest
row of a pair is its current decision and the earlier ones say how it got there.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import pandas as pd
from sqlalchemy import Connection, delete, func, insert, select, update

from profiles.errors import NotFound
from profiles.store.db import bulk_insert, driver_time, indexes_deferred, rows_in
from profiles.store.schema import external_scores, match_decisions, profile_events, store_info

CHUNK = 20_000
DECISION_COLUMNS = ["mention_a", "mention_b", "decision", "source", "score", "rule", "actor", "model_version"]


def current_decisions(conn: Connection, domain: str) -> pd.DataFrame:
    """The latest decision of every decided pair (mention keys, a < b)."""
    latest = (
        select(func.max(match_decisions.c.id))
        .where(match_decisions.c.domain == domain)
        .group_by(match_decisions.c.mention_a, match_decisions.c.mention_b)
    )
    rows = conn.execute(
        select(*(match_decisions.c[c] for c in DECISION_COLUMNS)).where(match_decisions.c.id.in_(latest))
    ).all()
    return pd.DataFrame(rows, columns=DECISION_COLUMNS)


def manual_decision(
    mention_a: str,
    mention_b: str,
    decision: str,
    actor: str,
    score: float | None = None,
    model_version: str | None = None,
) -> dict[str, Any]:
    """A person's decision on a pair (keys in mention-id order): later runs never override it."""
    return {
        "mention_a": mention_a,
        "mention_b": mention_b,
        "decision": decision,
        "source": "manual",
        "score": score,
        "rule": None,
        "actor": actor,
        "model_version": model_version,
        "threshold": None,
    }


RECORDED = (*DECISION_COLUMNS, "threshold")


DecisionColumns = dict[str, list[Any]]  # RECORDED column -> one value per decision


def record_decisions(conn: Connection, domain: str, rows: list[dict[str, Any]]) -> int:
    """Append decisions, given as rows, to the history."""
    return record_decision_columns(conn, domain, {c: [r.get(c) for r in rows] for c in RECORDED})


def record_decision_columns(conn: Connection, domain: str, columns: DecisionColumns) -> int:
    """Append decisions, given column by column, to the history: a full batch run writes hundreds
    of thousands at once, and columns reach the driver without a dict per decision."""
    n = len(columns["mention_a"])
    stamp = driver_time(conn, dt.datetime.now(dt.UTC))
    with indexes_deferred(conn, match_decisions, n):
        return bulk_insert(
            conn,
            match_decisions,
            ("domain", "decided_at", *RECORDED),
            zip([domain] * n, [stamp] * n, *(columns.get(c, [None] * n) for c in RECORDED), strict=True),
        )


def rows_touching(conn: Connection, table: Any, domain: str, keys: Iterable[str]) -> list[dict[str, Any]]:
    """Rows of a pair table (mention_a, mention_b keys) that name any of these mentions."""
    keys = list(keys)
    names = [c.name for c in table.columns]
    at = names.index("id")
    found: dict[Any, tuple[Any, ...]] = {}
    for start in range(0, len(keys), 500):
        part = keys[start : start + 500]
        # one probe per side (an OR of the two made SQLite scan the whole table)
        for side in (table.c.mention_a, table.c.mention_b):
            for r in conn.execute(select(table).where(table.c.domain == domain, side.in_(part))):
                found[r[at]] = tuple(r)
    return [dict(zip(names, found[i], strict=True)) for i in sorted(found)]


def decision_history(conn: Connection, domain: str, keys: Iterable[str]) -> list[dict[str, Any]]:
    """Every decision that touched any of these mentions, oldest first."""
    unique = {r["id"]: r for r in rows_touching(conn, match_decisions, domain, keys)}
    return [unique[i] for i in sorted(unique)]


def save_external_scores(conn: Connection, domain: str, rows: list[dict[str, Any]]) -> int:
    """Store (replace) imported pair scores, one per pair and scorer."""
    now = dt.datetime.now(dt.UTC)
    for start in range(0, len(rows), CHUNK):
        part = rows[start : start + CHUNK]
        for r in part:
            conn.execute(
                delete(external_scores).where(
                    external_scores.c.domain == domain,
                    external_scores.c.mention_a == r["mention_a"],
                    external_scores.c.mention_b == r["mention_b"],
                    external_scores.c.scorer == r["scorer"],
                )
            )
        conn.execute(insert(external_scores), [{**r, "domain": domain, "imported_at": now} for r in part])
    return len(rows)


# `imported_at` as the driver hands it: it only orders the imports of one pair
_SCORES_TOUCHING_SQL = tuple(
    "SELECT mention_a, mention_b, score, scorer, imported_at, id FROM external_scores "
    f"WHERE domain = {{q}} AND {side} IN ({{marks}})"
    for side in ("mention_a", "mention_b")
)


def load_external_scores(conn: Connection, domain: str, keys: Iterable[str] | None = None) -> pd.DataFrame:
    """Imported scores (mention keys, score, scorer) of the domain, or of the pairs that name any
    of these mentions; the latest import of a pair wins."""
    columns = (
        external_scores.c.mention_a,
        external_scores.c.mention_b,
        external_scores.c.score,
        external_scores.c.scorer,
        external_scores.c.imported_at,
        external_scores.c.id,
    )
    query = select(*columns).where(external_scores.c.domain == domain)
    rows: list[tuple[Any, ...]]
    if keys is None:
        rows = [tuple(r) for r in conn.execute(query)]
    else:
        wanted = sorted(set(keys))
        found = {
            row[5]: row
            for template in _SCORES_TOUCHING_SQL
            for row in rows_in(conn, template, wanted, (domain,))
        }
        rows = list(found.values())
    if not rows:  # the common case online; a frame and its deduplication cost half a millisecond
        return _NO_SCORES.copy()
    rows.sort(key=lambda r: (r[4], r[5]))
    frame = pd.DataFrame([r[:4] for r in rows], columns=_SCORE_COLUMNS)
    return frame.drop_duplicates(["mention_a", "mention_b"], keep="last")


_SCORE_COLUMNS = ["mention_a", "mention_b", "score", "scorer"]
_NO_SCORES = pd.DataFrame([], columns=_SCORE_COLUMNS)


def record_event(
    conn: Connection,
    domain: str,
    kind: str,
    profile_id: str,
    before: dict[str, Any],
    after: dict[str, Any],
    actor: str,
    reason: str,
) -> int:
    result = conn.execute(
        insert(profile_events).values(
            domain=domain,
            kind=kind,
            profile_id=profile_id,
            before=before,
            after=after,
            actor=actor,
            reason=reason,
            at=dt.datetime.now(dt.UTC),
        )
    )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def get_event(conn: Connection, domain: str, event_id: int) -> dict[str, Any]:
    row = conn.execute(
        select(profile_events).where(profile_events.c.domain == domain, profile_events.c.id == event_id)
    ).first()
    if row is None:
        raise NotFound(f"no profile event {event_id} in domain {domain!r} (see `upt profiles history`)")
    return dict(row._mapping)


def profile_events_of(conn: Connection, domain: str, profile_id: str) -> list[dict[str, Any]]:
    """Events of a profile: those about it and those that name it before or after."""
    rows = conn.execute(
        select(profile_events).where(profile_events.c.domain == domain).order_by(profile_events.c.id)
    )
    return [
        dict(r._mapping)
        for r in rows
        if r.profile_id == profile_id
        or profile_id in (r.before or {}).get("members", {})
        or profile_id in (r.after or {}).get("members", {})
    ]


def mark_reverted(conn: Connection, event_id: int, by: int) -> None:
    conn.execute(update(profile_events).where(profile_events.c.id == event_id).values(reverted_by=by))


def get_info(conn: Connection, key: str) -> str | None:
    return conn.execute(select(store_info.c.value).where(store_info.c.key == key)).scalar()


def set_info(conn: Connection, key: str, value: str) -> None:
    conn.execute(delete(store_info).where(store_info.c.key == key))
    conn.execute(insert(store_info).values(key=key, value=value))


def decision_rows_touching(conn: Connection, domain: str, keys: Iterable[str]) -> dict[int, tuple[Any, ...]]:
    """Every stored decision (id -> the `DECISION_COLUMNS` values) of a pair that names any of
    these mentions, as the driver reads them."""
    wanted = sorted(set(keys))
    found: dict[int, tuple[Any, ...]] = {}
    for template in _DECISIONS_TOUCHING_SQL:
        found.update((row[0], row[1:]) for row in rows_in(conn, template, wanted, (domain,)))
    return found


_DECISIONS_TOUCHING_SQL = tuple(
    f"SELECT id, {', '.join(DECISION_COLUMNS)} FROM match_decisions "
    f"WHERE domain = {{q}} AND {side} IN ({{marks}})"
    for side in ("mention_a", "mention_b")
)


def latest_rows(rows: dict[int, tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The latest (highest id) of `decision_rows_touching`'s rows for each pair."""
    latest: dict[tuple[str, str], tuple[Any, ...]] = {}
    for i in sorted(rows):
        latest[(rows[i][0], rows[i][1])] = rows[i]
    return list(latest.values())


def latest_decisions(rows: dict[int, tuple[Any, ...]]) -> pd.DataFrame:
    """`latest_rows` as a frame with the columns of `current_decisions`."""
    return pd.DataFrame(latest_rows(rows), columns=DECISION_COLUMNS)
