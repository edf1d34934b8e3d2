"""hotel bookings carry their holder's email and phone as the booking's contacts

A hotel booking's interactions now hold `contact_emails` / `contact_phones` (the holder's), as an
air booking's hold its contact block (`profiles.mentions.extract_mentions`); a store ingested by
an earlier UPT gets them from the stored payloads here, since ingesting the same objects again
changes nothing. The stored blocking keys include booking contacts, so the domains' "keys
complete" markers are dropped: the keys are computed again before the next block or lookup
(`pipelines.keys.ensure_keys`).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 06:00:00
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHUNK = 5_000

_objects = sa.table(
    "objects",
    sa.column("id", sa.BigInteger()),
    sa.column("object_type", sa.String()),
    sa.column("payload", sa.JSON()),
)
_interactions = sa.table(
    "interactions",
    sa.column("id", sa.BigInteger()),
    sa.column("object_pk", sa.BigInteger()),
    sa.column("kind", sa.String()),
    sa.column("attributes", sa.JSON()),
)
_store_info = sa.table("store_info", sa.column("key", sa.String()))


def _holder_contacts(payload: Any) -> tuple[list[str], list[str]]:
    holder = (payload or {}).get("holder") or {}  # the payload is the object's `data`
    emails = [e["address"] for e in holder.get("emails") or [] if isinstance(e, dict) and e.get("address")]
    phones = [p["number"] for p in holder.get("phones") or [] if isinstance(p, dict) and p.get("number")]
    return emails, phones


def upgrade() -> None:
    conn = op.get_bind()
    last = 0
    while True:
        rows = conn.execute(
            sa.select(_interactions.c.id, _interactions.c.attributes, _objects.c.payload)
            .join(_objects, _objects.c.id == _interactions.c.object_pk)
            .where(
                _interactions.c.kind == "hotel_stay",
                _objects.c.object_type == "hotel_booking",
                _interactions.c.id > last,
            )
            .order_by(_interactions.c.id)
            .limit(CHUNK)
        ).all()
        if not rows:
            break
        last = rows[-1][0]
        updates = []
        for pk, attributes, payload in rows:
            attributes = dict(attributes or {})
            if "contact_emails" in attributes:
                continue
            emails, phones = _holder_contacts(payload)
            updates.append(
                {"pk": pk, "attributes": {**attributes, "contact_emails": emails, "contact_phones": phones}}
            )
        if updates:
            conn.execute(
                _interactions.update()
                .where(_interactions.c.id == sa.bindparam("pk"))
                .values(attributes=sa.bindparam("attributes", type_=sa.JSON())),
                updates,
            )
    conn.execute(_store_info.delete().where(_store_info.c.key.like("blocking_keys:%")))


def downgrade() -> None:
    # The contacts stay: an earlier UPT reads interactions' attributes and ignores what it does
    # not know (its blocking then takes them as travel keys, as it does an air booking's).
    pass
