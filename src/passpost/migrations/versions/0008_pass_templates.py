"""pass templates and their images

Revision ID: 0008_pass_templates
Revises: 0007_personal_passes
Create Date: 2026-11-27 08:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import passpost.db

revision: str = "0008_pass_templates"
down_revision: str | None = "0007_personal_passes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "pass_template",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=True),
        sa.Column("created_at", passpost.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", passpost.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pass_template")),
        sa.UniqueConstraint("name", name=op.f("uq_pass_template_name")),
    )
    op.create_table(
        "pass_template_image",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("template_id", _ID, nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", passpost.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["pass_template.id"],
            name=op.f("fk_pass_template_image_template_id_pass_template"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pass_template_image")),
    )
    op.create_index(
        op.f("ix_pass_template_image_template_id"), "pass_template_image", ["template_id"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_pass_template_image_template_id"), table_name="pass_template_image")
    op.drop_table("pass_template_image")
    op.drop_table("pass_template")
