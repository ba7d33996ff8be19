"""a request keeps its pass's validation warnings

Revision ID: 0004_request_warnings
Revises: 0003_holder_page_index
Create Date: 2026-11-27 08:05:00

Under the ``warn`` policy an import succeeds with findings the caller must see later, in
``GET /api/v1/requests/{id}``: they are stored with the request (JSON, NULL when none).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_request_warnings"
down_revision: str | None = "0003_holder_page_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("distribution_request") as batch:
        batch.add_column(sa.Column("validation_warnings", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("distribution_request") as batch:
        batch.drop_column("validation_warnings")
