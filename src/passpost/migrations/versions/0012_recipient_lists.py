"""large requests: the recipient list stored as sent, expanded into the ledger by workers

Revision ID: 0012_recipient_lists
Revises: 0011_pass_content
Create Date: 2026-11-27 11:00:00

An import with more recipients than one chunk answers once the list is stored; workers
expand it into holders and deliveries chunk by chunk (``distribution.expansion``).
Existing requests are complete already: they get no rows here.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_recipient_lists"
down_revision: str | None = "0011_pass_content"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "request_expansion",
        sa.Column("request_id", _ID, nullable=False),
        sa.Column("pass_id", _ID, nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("expanded", sa.Integer(), nullable=False),
        sa.Column("contacts", sa.Integer(), nullable=False),
        sa.Column("owner", _ID, nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["distribution_request.id"],
            name=op.f("fk_request_expansion_request_id_distribution_request"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("request_id", name=op.f("pk_request_expansion")),
    )
    op.create_index(
        op.f("ix_request_expansion_pass_id"), "request_expansion", ["pass_id"], unique=False
    )
    op.create_table(
        "recipient_chunk",
        sa.Column("request_id", _ID, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("first_index", sa.Integer(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("entries", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["distribution_request.id"],
            name=op.f("fk_recipient_chunk_request_id_distribution_request"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("request_id", "seq", name=op.f("pk_recipient_chunk")),
    )


def downgrade() -> None:
    op.drop_table("recipient_chunk")
    op.drop_index(op.f("ix_request_expansion_pass_id"), table_name="request_expansion")
    op.drop_table("request_expansion")
