"""The stored blocking keys (`blocking_keys`), kept equal to what batch blocking computes.

Every write that changes a mention or its object's travel (ingest, replay, erasure) refreshes the
keys of the mentions it touched, in its own transaction. A domain whose keys are known complete
carries a marker (`store_info` key `blocking_keys:<domain>`, the key format's version); a store
made by an earlier UPT, or one whose keys were never kept, is filled once by `ensure_keys` before
the first online lookup or batch block.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
from sqlalchemy import Connection, func, select

from features.blocking.keys import mention_keys
from features.blocking.order import order_keys
from features.frame import load_interactions, load_mentions, load_mentions_by_ids
from profiles.settings import Settings
from profiles.store import Store
from profiles.store.decisions import get_info, set_info
from profiles.store.keys import clear_keys, replace_keys
from profiles.store.schema import mentions, objects

# Bump when `mention_keys` derives other rows for the same mentions: stores are filled afresh.
# 2: every row carries its mention's order key (migration 0008).
# 3: every mention with an address keeps a row of its home (`Blocker.HOME`).
KEYS_VERSION = "3"


def _marker(domain: str) -> str:
    return f"blocking_keys:{domain}"


def refresh_keys(conn: Connection, domain: str, mention_pks: Iterable[int]) -> int:
    """Recompute and store the keys of these mentions (those no longer stored lose theirs)."""
    pks = sorted({int(pk) for pk in mention_pks})
    if not pks:
        return 0
    frame = load_mentions_by_ids(conn, domain, pks)
    rows = mention_keys(frame, load_interactions(conn, domain, mention_pks=pks))
    return replace_keys(conn, domain, pks, with_order_keys(rows, frame))


def with_order_keys(rows: pd.DataFrame, frame: pd.DataFrame) -> pd.DataFrame:
    """Key rows (`mention_keys`) with each mention's order key (`features.blocking.order`)."""
    orders = dict(zip(frame["mention_pk"].tolist(), order_keys(frame["mention_key"]).tolist(), strict=True))
    return rows.assign(order_key=rows["mention_pk"].map(orders).astype(np.int64))


def mentions_of_objects(
    conn: Connection, domain: str, object_keys: Sequence[tuple[str, str, str]]
) -> list[int]:
    """The stored mention ids of these objects (source, object type, object id)."""
    out: list[int] = []
    wanted = set(object_keys)
    for start in range(0, len(object_keys), 300):
        part = object_keys[start : start + 300]
        rows = conn.execute(
            select(mentions.c.id, objects.c.source, objects.c.object_type, objects.c.object_id)
            .join(objects, objects.c.id == mentions.c.object_pk)
            .where(
                objects.c.domain == domain,
                objects.c.source.in_(sorted({k[0] for k in part})),
                objects.c.object_type.in_(sorted({k[1] for k in part})),
                objects.c.object_id.in_(sorted({k[2] for k in part})),
            )
        ).all()
        out += [r[0] for r in rows if (r[1], r[2], r[3]) in wanted]
    return out


def mentions_of_object_pks(conn: Connection, domain: str, object_pks: Iterable[int]) -> list[int]:
    ids = sorted(set(object_pks))
    return [
        r[0]
        for start in range(0, len(ids), 500)
        for r in conn.execute(
            select(mentions.c.id).where(
                mentions.c.domain == domain, mentions.c.object_pk.in_(ids[start : start + 500])
            )
        )
    ]


def keys_complete(conn: Connection, domain: str) -> bool:
    return get_info(conn, _marker(domain)) == KEYS_VERSION


def mark_complete_if_empty(store: Store) -> None:
    """Before a domain's first write: it holds no mention, so the keys every write keeps from now
    on are all of them."""
    with store.transaction() as conn:
        if keys_complete(conn, store.domain):
            return
        count = conn.execute(
            select(func.count()).select_from(mentions).where(mentions.c.domain == store.domain)
        ).scalar_one()
        if count == 0:
            set_info(conn, _marker(store.domain), KEYS_VERSION)


def ensure_keys(store: Store, settings: Settings) -> bool:
    """Fill the domain's keys from its mentions if they are not known complete (a store made by an
    earlier version). True when it filled them."""
    with store.reading() as conn:
        if keys_complete(conn, store.domain):
            return False
    with store.transaction() as conn:
        frame = load_mentions(conn, store.domain, cache=settings.frame_cache_path(store.domain))
        rows = mention_keys(frame, load_interactions(conn, store.domain))
        clear_keys(conn, store.domain)
        replace_keys(conn, store.domain, [], with_order_keys(rows, frame))
        set_info(conn, _marker(store.domain), KEYS_VERSION)
    return True
