"""a request's recipients paginated by keyset: index (request_id, id) on pass_holder

Revision ID: 0003_holder_page_index
Revises: 0002_request_tally
Create Date: 2026-11-27 08:15:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003_holder_page_index"
down_revision: str | None = "0002_request_tally"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_pass_holder_request_page", "pass_holder", ["request_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_pass_holder_request_page", table_name="pass_holder")
