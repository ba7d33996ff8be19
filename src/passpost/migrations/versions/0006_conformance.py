"""columns and table the original API's pages need: voice subscription, last active date,
pass certificate file name and modification, queued uploads (``/api/v1/batchinfo``)

Revision ID: 0006_conformance
Revises: 0005_registration_limits
Create Date: 2026-11-27 08:15:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import passpost.db

revision: str = "0006_conformance"
down_revision: str | None = "0005_registration_limits"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TS = passpost.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    # Existing recipients keep the original's default: subscribed.
    op.add_column(
        "recipient",
        sa.Column("voice_subscription", sa.Boolean(), nullable=False, server_default=sa.true()),
    )
    op.add_column("recipient", sa.Column("last_active_at", _TS, nullable=True))
    op.add_column("pass_certificate", sa.Column("file_name", sa.String(255), nullable=True))
    op.add_column("pass_certificate", sa.Column("updated_by", sa.String(200), nullable=True))
    op.add_column("pass_certificate", sa.Column("updated_at", _TS, nullable=True))
    op.create_table(
        "upload_batch",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("data_type", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("status_message", sa.Text(), nullable=False),
        sa.Column("file_name", sa.String(255), nullable=True),
        sa.Column("content", sa.LargeBinary(), nullable=True),
        sa.Column("imported_by", sa.String(200), nullable=True),
        sa.Column("imported_at", _TS, nullable=False),
        sa.Column("finished_at", _TS, nullable=True),
        sa.Column("lease_until", _TS, nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("created", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("errors", sa.JSON(), nullable=False),
        sa.Column("ignored_columns", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_upload_batch"),
    )
    op.create_index("ix_upload_batch_state", "upload_batch", ["state", "lease_until"])


def downgrade() -> None:
    op.drop_index("ix_upload_batch_state", table_name="upload_batch")
    op.drop_table("upload_batch")
    with op.batch_alter_table("pass_certificate") as batch:
        batch.drop_column("updated_at")
        batch.drop_column("updated_by")
        batch.drop_column("file_name")
    with op.batch_alter_table("recipient") as batch:
        batch.drop_column("last_active_at")
        batch.drop_column("voice_subscription")
