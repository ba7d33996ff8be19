"""pass bytes stored once per content hash: pass_content; pass_version.content moves there

Revision ID: 0011_pass_content
Revises: 0010_install_tally
Create Date: 2026-11-27 11:10:00

Every import stored its upload again (700 imports of one 177 KB file: 197 MB). The bytes
now live in ``pass_content``, keyed by their SHA-256, which ``pass_version.sha256`` names.
The upgrade copies each version's bytes there (hashing them again: the stored digest is
not trusted to match), then drops ``pass_version.content``; the space is reused by later
writes (VACUUM returns it to the file system). Also an index for "the recipients who hold
this pass", read by every new version of a pass.
"""

import hashlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import passpost.db

revision: str = "0011_pass_content"
down_revision: str | None = "0010_install_tally"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CHUNK = 100


def upgrade() -> None:
    op.create_table(
        "pass_content",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("created_at", passpost.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_pass_content")),
    )
    connection = op.get_bind()
    content = sa.table(
        "pass_content",
        sa.column("sha256", sa.String),
        sa.column("content", sa.LargeBinary),
        sa.column("size", sa.Integer),
        sa.column("created_at", passpost.db.UTCDateTime(timezone=True)),
    )
    stored: set[str] = set()
    last = -1
    while True:
        rows = connection.execute(
            sa.text(
                "SELECT id, content, sha256, created_at FROM pass_version"
                " WHERE id > :last ORDER BY id LIMIT :n"
            ).columns(created_at=passpost.db.UTCDateTime(timezone=True)),
            {"last": last, "n": _CHUNK},
        ).all()
        if not rows:
            break
        for version_id, data, recorded, created_at in rows:
            data = bytes(data)
            digest = hashlib.sha256(data).hexdigest()
            if digest not in stored:
                connection.execute(
                    content.insert().values(
                        sha256=digest, content=data, size=len(data), created_at=created_at
                    )
                )
                stored.add(digest)
            if digest != recorded:
                connection.execute(
                    sa.text("UPDATE pass_version SET sha256 = :d, size = :n WHERE id = :id"),
                    {"d": digest, "n": len(data), "id": version_id},
                )
        last = rows[-1][0]
    if connection.dialect.name == "sqlite":
        # SQLite >= 3.35 drops a column in place; a batch copy would drop and re-create the
        # table, which the cascading foreign keys pointing at it must not see.
        op.execute("ALTER TABLE pass_version DROP COLUMN content")
    else:
        op.drop_column("pass_version", "content")
    op.create_index(
        "ix_pass_holder_pass_recipient", "pass_holder", ["pass_id", "recipient_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_pass_holder_pass_recipient", table_name="pass_holder")
    op.add_column("pass_version", sa.Column("content", sa.LargeBinary(), nullable=True))
    op.execute(
        "UPDATE pass_version SET content ="
        " (SELECT content FROM pass_content WHERE pass_content.sha256 = pass_version.sha256)"
    )
    op.drop_table("pass_content")
