"""revisit queue: the mentions an online arrival changed the decisions of, waiting to be resolved again

An online resolve used to resolve those mentions again before it answered, so one arrival could
take a second. It now queues them in its own transaction; they are resolved again right after
the object by default, later by `OnlineResolver.revisit_pending` (a caller that answers first),
or by the next `upt resolve`, which decides them as a full run would and takes them off.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 19:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "revisit_queue",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("domain", sa.String(length=64), nullable=False),
        sa.Column("mention_pk", Id, nullable=False),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["mention_pk"],
            ["mentions.id"],
            name=op.f("fk_revisit_queue_mention_pk_mentions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_revisit_queue")),
    )
    op.create_index(op.f("ix_revisit_queue_domain_id"), "revisit_queue", ["domain", "id"], unique=False)
    op.create_index(op.f("ix_revisit_queue_mention_pk"), "revisit_queue", ["mention_pk"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_revisit_queue_mention_pk"), table_name="revisit_queue")
    op.drop_index(op.f("ix_revisit_queue_domain_id"), table_name="revisit_queue")
    op.drop_table("revisit_queue")
