"""readers add the tally deltas not folded yet: index request_tally_delta (request_id)

Revision ID: 0009_tally_delta_index
Revises: 0008_pass_templates
Create Date: 2026-11-27 09:02:00

Status pages no longer fold PostgreSQL's tally deltas themselves (a page view never
writes); they add the few not yet folded by the sweeper, by request.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009_tally_delta_index"
down_revision: str | None = "0008_pass_templates"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_request_tally_delta_request", "request_tally_delta", ["request_id"])


def downgrade() -> None:
    op.drop_index("ix_request_tally_delta_request", table_name="request_tally_delta")
