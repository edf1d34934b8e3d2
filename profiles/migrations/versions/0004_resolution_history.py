"""resolution history: external scores, profile events, decision source and threshold, resolved hash

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 01:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "external_scores",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("domain", sa.String(length=64), nullable=False),
        sa.Column("mention_a", sa.String(length=400), nullable=False),
        sa.Column("mention_b", sa.String(length=400), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("scorer", sa.String(length=64), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_external_scores")),
        sa.UniqueConstraint(
            "domain",
            "mention_a",
            "mention_b",
            "scorer",
            name=op.f("uq_external_scores_domain_mention_a_mention_b_scorer"),
        ),
    )
    op.create_table(
        "profile_events",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("domain", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("profile_id", sa.String(length=40), nullable=False),
        sa.Column("before", sa.JSON(), nullable=False),
        sa.Column("after", sa.JSON(), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("reverted_by", sa.BigInteger(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_profile_events")),
    )
    op.create_index(
        op.f("ix_profile_events_domain_profile_id"), "profile_events", ["domain", "profile_id"], unique=False
    )
    with op.batch_alter_table("match_decisions") as batch:
        batch.add_column(sa.Column("source", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("threshold", sa.Float(), nullable=True))
    with op.batch_alter_table("profile_members") as batch:
        batch.add_column(sa.Column("resolved_hash", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("profile_members") as batch:
        batch.drop_column("resolved_hash")
    with op.batch_alter_table("match_decisions") as batch:
        batch.drop_column("threshold")
        batch.drop_column("source")
    op.drop_index(op.f("ix_profile_events_domain_profile_id"), table_name="profile_events")
    op.drop_table("profile_events")
    op.drop_table("external_scores")
