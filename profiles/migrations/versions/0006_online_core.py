"""online core: blocking keys kept at ingest, profile change sequence, embeddings by update time

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05 00:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Key = sa.String(400).with_variant(sa.String(400, collation="C"), "postgresql")
Name = sa.String(401).with_variant(sa.String(401, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "blocking_keys",
        sa.Column("mention_pk", Id, nullable=False),
        sa.Column("domain", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.Integer(), nullable=False),
        sa.Column("key", Key, nullable=False),
        sa.Column("name", Name, nullable=True),
        sa.ForeignKeyConstraint(
            ["mention_pk"],
            ["mentions.id"],
            name=op.f("fk_blocking_keys_mention_pk_mentions"),
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        op.f("ix_blocking_keys_domain_kind_key_name_mention_pk"),
        "blocking_keys",
        ["domain", "kind", "key", "name", "mention_pk"],
        unique=False,
    )
    op.create_index(op.f("ix_blocking_keys_mention_pk"), "blocking_keys", ["mention_pk"], unique=False)
    with op.batch_alter_table("profiles", schema=None) as batch_op:
        batch_op.add_column(sa.Column("change_seq", sa.BigInteger(), server_default="0", nullable=False))
        batch_op.create_index(
            batch_op.f("ix_profiles_domain_change_seq"), ["domain", "change_seq"], unique=False
        )
    with op.batch_alter_table("profile_members", schema=None) as batch_op:
        batch_op.alter_column(
            "resolved_hash",
            existing_type=sa.String(length=64),
            type_=sa.String(length=80),
            existing_nullable=True,
        )
    op.create_index(
        op.f("ix_external_scores_domain_mention_b"), "external_scores", ["domain", "mention_b"], unique=False
    )
    op.create_index(
        op.f("ix_review_queue_domain_mention_a_mention_b"),
        "review_queue",
        ["domain", "mention_a", "mention_b"],
        unique=False,
    )
    op.create_index(
        op.f("ix_embeddings_domain_encoder_updated_at"),
        "embeddings",
        ["domain", "encoder", "updated_at"],
        unique=False,
    )


def downgrade() -> None:
    with op.batch_alter_table("profile_members", schema=None) as batch_op:
        batch_op.alter_column(
            "resolved_hash",
            existing_type=sa.String(length=80),
            type_=sa.String(length=64),
            existing_nullable=True,
        )
    op.drop_index(op.f("ix_embeddings_domain_encoder_updated_at"), table_name="embeddings")
    op.drop_index(op.f("ix_review_queue_domain_mention_a_mention_b"), table_name="review_queue")
    op.drop_index(op.f("ix_external_scores_domain_mention_b"), table_name="external_scores")
    with op.batch_alter_table("profiles", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_profiles_domain_change_seq"))
        batch_op.drop_column("change_seq")
    op.drop_index(op.f("ix_blocking_keys_mention_pk"), table_name="blocking_keys")
    op.drop_index(op.f("ix_blocking_keys_domain_kind_key_name_mention_pk"), table_name="blocking_keys")
    op.drop_table("blocking_keys")
