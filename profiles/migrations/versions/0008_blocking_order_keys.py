"""blocking keys carry the mention's order key, and the string pass's windows follow it

Ties between equally near candidates now go to the smaller order key, a hash of the mention key
(`features.blocking.order`), instead of the smaller store id, which follows arrival: the same
data read in another row order gets the same candidates. The string pass reads its windows in
(name, order key, mention id) order, so the index grows the column. The stored rows get their
order keys when the keys are computed again: `pipelines.keys.KEYS_VERSION` changed, so the
domains' "keys complete" markers no longer match and `ensure_keys` refills them before the next
block or lookup.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("blocking_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("order_key", sa.BigInteger(), nullable=True))
        batch_op.drop_index(batch_op.f("ix_blocking_keys_domain_kind_key_name_mention_pk"))
        batch_op.create_index(
            batch_op.f("ix_blocking_keys_domain_kind_key_name_order_key_mention_pk"),
            ["domain", "kind", "key", "name", "order_key", "mention_pk"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("blocking_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_blocking_keys_domain_kind_key_name_order_key_mention_pk"))
        batch_op.create_index(
            batch_op.f("ix_blocking_keys_domain_kind_key_name_mention_pk"),
            ["domain", "kind", "key", "name", "mention_pk"],
            unique=False,
        )
        batch_op.drop_column("order_key")
