"""exports kept for erasure; decisions looked up by either mention

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 23:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "exports",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("domain", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("path", sa.String(length=1000), nullable=False),
        sa.Column("written_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exports")),
        sa.UniqueConstraint("domain", "kind", "path", name=op.f("uq_exports_domain_kind_path")),
    )
    op.create_index(
        op.f("ix_match_decisions_domain_mention_b"), "match_decisions", ["domain", "mention_b"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_match_decisions_domain_mention_b"), table_name="match_decisions")
    op.drop_table("exports")
