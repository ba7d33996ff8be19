"""what bounds device registrations: a pass's recipient count, the registering address

Revision ID: 0005_registration_limits
Revises: 0004_request_warnings
Create Date: 2026-11-27 08:30:00

A pass's authentication token is shared by all its holders, so anyone holding one could
register thousands of fake devices (each update then queues that many pushes). A pass now
accepts a number of registrations proportional to its recipients (``wallet_pass.
recipient_count``, backfilled from the holders), and an address a bounded number of new
registrations an hour (``passkit_registration.remote_addr``; NULL for older rows).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_registration_limits"
down_revision: str | None = "0004_request_warnings"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("wallet_pass") as batch:
        batch.add_column(
            sa.Column("recipient_count", sa.Integer(), server_default="0", nullable=False)
        )
    op.execute(
        "UPDATE wallet_pass SET recipient_count = (SELECT COUNT(DISTINCT h.recipient_id) "
        "FROM pass_holder h WHERE h.pass_id = wallet_pass.id)"
    )
    with op.batch_alter_table("passkit_registration") as batch:
        batch.add_column(sa.Column("remote_addr", sa.String(length=64), nullable=True))
    op.create_index(
        "ix_passkit_registration_remote_addr",
        "passkit_registration",
        ["remote_addr", "created_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_passkit_registration_remote_addr", table_name="passkit_registration")
    with op.batch_alter_table("passkit_registration") as batch:
        batch.drop_column("remote_addr")
    with op.batch_alter_table("wallet_pass") as batch:
        batch.drop_column("recipient_count")
