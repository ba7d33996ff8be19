"""personal passes: templates, one pass per holder, install events, change jobs

Revision ID: 0007_personal_passes
Revises: 0006_conformance
Create Date: 2026-11-27 07:40:00

Plain ADD COLUMNs, no batch mode: on SQLite a batch rebuild drops ``wallet_pass``, and with
foreign keys on that drop would cascade into every version, holder and registration.
The new id columns therefore carry indexes but no foreign-key constraints.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import passpost.db

revision: str = "0007_personal_passes"
down_revision: str | None = "0006_conformance"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.add_column(
        "wallet_pass",
        sa.Column("kind", sa.String(length=16), nullable=False, server_default="pass"),
    )
    op.add_column("wallet_pass", sa.Column("template_pass_id", _ID, nullable=True))
    op.create_index(op.f("ix_wallet_pass_template_pass_id"), "wallet_pass", ["template_pass_id"])
    op.add_column("pass_holder", sa.Column("serial_number", sa.String(length=255), nullable=True))
    op.add_column("pass_holder", sa.Column("personal_values", sa.Text(), nullable=True))
    op.add_column("pass_holder", sa.Column("personal_pass_id", _ID, nullable=True))
    op.create_index(op.f("ix_pass_holder_serial_number"), "pass_holder", ["serial_number"])
    op.create_index(op.f("ix_pass_holder_personal_pass_id"), "pass_holder", ["personal_pass_id"])
    op.create_table(
        "passkit_install_event",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("pass_id", _ID, nullable=False),
        sa.Column("device_library_identifier", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("at", passpost.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["pass_id"],
            ["wallet_pass.id"],
            name=op.f("fk_passkit_install_event_pass_id_wallet_pass"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_passkit_install_event")),
    )
    op.create_index(op.f("ix_passkit_install_event_pass_id"), "passkit_install_event", ["pass_id"])
    op.create_table(
        "pass_change_job",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("request_id", _ID, nullable=False),
        sa.Column("changes", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("cursor", _ID, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=True),
        sa.Column("created_at", passpost.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", passpost.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", passpost.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["distribution_request.id"],
            name=op.f("fk_pass_change_job_request_id_distribution_request"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pass_change_job")),
    )
    op.create_index(op.f("ix_pass_change_job_request_id"), "pass_change_job", ["request_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_pass_change_job_request_id"), table_name="pass_change_job")
    op.drop_table("pass_change_job")
    op.drop_index(op.f("ix_passkit_install_event_pass_id"), table_name="passkit_install_event")
    op.drop_table("passkit_install_event")
    op.drop_index(op.f("ix_pass_holder_personal_pass_id"), table_name="pass_holder")
    op.drop_index(op.f("ix_pass_holder_serial_number"), table_name="pass_holder")
    op.drop_column("pass_holder", "personal_pass_id")
    op.drop_column("pass_holder", "personal_values")
    op.drop_column("pass_holder", "serial_number")
    op.drop_index(op.f("ix_wallet_pass_template_pass_id"), table_name="wallet_pass")
    op.drop_column("wallet_pass", "template_pass_id")
    op.drop_column("wallet_pass", "kind")
