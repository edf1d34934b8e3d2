"""The revisit queue: mentions whose decisions an online arrival changed without touching them,
waiting to be resolved again (`pipelines.online`).

Queued in the arrival's own transaction, so none is lost between the arrival's commit and the
revisit; taken off in the transaction that resolves the mention again, or by a batch
`upt resolve`, which decides every pair they could change. A mention erased meanwhile leaves
the queue with it (the foreign key cascades).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import Connection, delete, func, select

from profiles.store.db import bulk_insert, driver_time
from profiles.store.schema import revisit_queue


def queue_revisits(conn: Connection, domain: str, pks: Iterable[int]) -> int:
    """Queue these mentions to be resolved again (each once per call)."""
    stamp = driver_time(conn, dt.datetime.now(dt.UTC))
    return bulk_insert(
        conn,
        revisit_queue,
        ("domain", "mention_pk", "queued_at"),
        ((domain, pk, stamp) for pk in sorted({int(pk) for pk in pks})),
    )


def pending_revisits(conn: Connection, domain: str, limit: int | None = None) -> list[int]:
    """The waiting mentions (store ids), the longest waiting first, each once."""
    query = (
        select(revisit_queue.c.mention_pk)
        .where(revisit_queue.c.domain == domain)
        .group_by(revisit_queue.c.mention_pk)
        .order_by(func.min(revisit_queue.c.id))
    )
    if limit is not None:
        query = query.limit(limit)
    return [int(pk) for pk in conn.execute(query).scalars()]


def waiting_revisits(conn: Connection, domain: str) -> int:
    """How many mentions wait to be resolved again."""
    query = select(func.count(func.distinct(revisit_queue.c.mention_pk))).where(
        revisit_queue.c.domain == domain
    )
    return int(conn.execute(query).scalar_one())


def queued_ids(conn: Connection, domain: str, pk: int) -> list[int]:
    """The queue rows of one mention, as this transaction sees them: resolving it again takes
    off exactly these (an arrival that queues it later, or commits later, stays queued)."""
    query = select(revisit_queue.c.id).where(
        revisit_queue.c.domain == domain, revisit_queue.c.mention_pk == pk
    )
    return [int(i) for i in conn.execute(query).scalars()]


def take_off(conn: Connection, ids: list[int]) -> None:
    """Delete these queue rows (`queued_ids`)."""
    if ids:
        conn.execute(delete(revisit_queue).where(revisit_queue.c.id.in_(ids)))


def last_queued(conn: Connection, domain: str) -> int:
    """The latest queue id of the domain (0 when none waits)."""
    latest = conn.execute(select(func.max(revisit_queue.c.id)).where(revisit_queue.c.domain == domain))
    return int(latest.scalar() or 0)


def clear_revisits(conn: Connection, domain: str, up_to: int) -> int:
    """Take off every mention queued up to queue id `up_to`: a batch run read the store with
    the domain locked (no online write half done) and decided them as a full run would."""
    done = conn.execute(
        delete(revisit_queue).where(revisit_queue.c.domain == domain, revisit_queue.c.id <= up_to)
    )
    return int(done.rowcount or 0)
