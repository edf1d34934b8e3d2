"""Who may write a domain's profiles at the same time.

On SQLite there is one writer: every writing transaction takes the write lock at its start
(`Store.transaction`), so nothing here needs doing. On PostgreSQL:
- a domain lock (a transaction-scoped advisory lock): online writers take it shared, so they run
  side by side; a batch run's write, and the moment it reads the state it starts from, take it
  exclusive, so no online write is half done while the batch looks;
- online writers lock the existing profiles they change (`SELECT ... FOR UPDATE`) and check that
  their change sequence is the one they read: a profile changed meanwhile means the writer read a
  stale component, and it starts again (`Conflict`).
Every lock waits at most `write_wait_seconds`, then `StoreBusy`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from sqlalchemy import Connection, func, select
from sqlalchemy.exc import OperationalError

from profiles.errors import StoreBusy
from profiles.store.schema import profiles


def _advisory_key(domain: str) -> int:
    return int.from_bytes(
        hashlib.blake2b(f"upt:{domain}".encode(), digest_size=8).digest(), "big", signed=True
    )


def domain_lock(conn: Connection, domain: str, exclusive: bool, wait_seconds: float) -> None:
    """Hold the domain's write lock until the transaction ends (PostgreSQL; SQLite: a no-op)."""
    if conn.dialect.name != "postgresql":
        return
    conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{int(wait_seconds * 1000)}ms'")
    function = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
    try:
        conn.exec_driver_sql(f"SELECT {function}(%s)", (_advisory_key(domain),))
    except OperationalError as exc:
        raise StoreBusy(f"domain {domain!r} stayed locked by another writer; try again") from exc


def lock_profiles(conn: Connection, domain: str, ids: Iterable[str]) -> dict[str, int]:
    """The change sequence of these profiles, locked against other writers until the transaction
    ends (in id order, so two writers never wait on each other in a circle)."""
    wanted = sorted(set(ids))
    out: dict[str, int] = {}
    for start in range(0, len(wanted), 500):
        query = (  # by id alone: ids are unique across domains; a domain condition widened the plan
            select(profiles.c.id, profiles.c.change_seq)
            .where(profiles.c.id.in_(wanted[start : start + 500]))
            .order_by(profiles.c.id)
        )
        if conn.dialect.name == "postgresql":
            # NO KEY UPDATE: other writers' foreign-key checks (a member row naming the profile)
            # take KEY SHARE, which this does not block
            query = query.with_for_update(key_share=True)
        try:
            out.update({pid: int(seq) for pid, seq in conn.execute(query)})
        except OperationalError as exc:
            raise StoreBusy("a profile stayed locked by another writer; try again") from exc
    return out


def max_change_seq(conn: Connection, domain: str) -> int:
    return int(
        conn.execute(
            select(func.coalesce(func.max(profiles.c.change_seq), 0)).where(profiles.c.domain == domain)
        ).scalar_one()
    )


def changed_since(conn: Connection, domain: str, seq: int) -> list[str]:
    """Profiles changed after the change sequence value `seq`."""
    return list(
        conn.execute(
            select(profiles.c.id).where(profiles.c.domain == domain, profiles.c.change_seq > seq)
        ).scalars()
    )


def lock_mentions(conn: Connection, domain: str, pks: Iterable[int]) -> None:
    """Lock these mentions' rows against other writers until the transaction ends (PostgreSQL;
    in id order): two writers whose components share a mention that has no profile yet would
    otherwise both give it one."""
    if conn.dialect.name != "postgresql":
        return
    from profiles.store.schema import mentions

    wanted = sorted({int(pk) for pk in pks})
    for start in range(0, len(wanted), 500):
        try:
            conn.execute(
                select(mentions.c.id)
                .where(mentions.c.domain == domain, mentions.c.id.in_(wanted[start : start + 500]))
                .order_by(mentions.c.id)
                .with_for_update(key_share=True)
            ).all()
        except OperationalError as exc:
            raise StoreBusy("a mention stayed locked by another writer; try again") from exc
