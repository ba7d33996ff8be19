"""The pass and its versions, and the update clock that orders new versions.

How "serials since a tag" never loses an update (SPEC §8):

* ``passkit_update_clock`` holds one counter per pass type. ``passes.clock.record_update``
  bumps it with ``UPDATE … RETURNING`` inside the import transaction, so the counter row stays
  locked until that transaction commits or rolls back. Two imports of the same pass type
  therefore take their sequence numbers *in commit order*: a reader can never see
  sequence N+1 committed while N is still in flight (on SQLite writers are serialised
  anyway). The tag handed to a device is the committed counter value read *before* the
  serials are queried, so every later commit has a larger number.
* Sequence numbers are integers, not timestamps: many updates within one second (or one
  microsecond) stay distinct, and clock skew between processes is irrelevant.
* ``Last-Modified`` is second-resolution (HTTP dates), so each version of a pass gets a
  ``last_modified`` strictly greater, in whole seconds, than the previous one; otherwise a
  device holding v1 could be told ``304`` for a v2 made in the same second.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Connection,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    bindparam,
    event,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, column_property, mapped_column

from passpost.db import Base, Id, UTCDateTime, utcnow


class PassKind:
    """What a ``WalletPass`` row is."""

    SHARED = "pass"  # one pass, the same file for every recipient
    TEMPLATE = "template"  # a pass with placeholders: never served itself (SPEC §11)
    PERSONAL = "personal"  # one holder's pass, built from a template


class WalletPass(Base):
    """A pass, identified by passTypeIdentifier + serialNumber; its bytes live in versions."""

    __tablename__ = "wallet_pass"
    __table_args__ = (UniqueConstraint("pass_type_identifier", "serial_number"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    pass_type_identifier: Mapped[str] = mapped_column(String(255))
    serial_number: Mapped[str] = mapped_column(String(255))
    team_identifier: Mapped[str] = mapped_column(String(64))
    # Kept stable across versions when passpost re-signs; else the uploaded pass's own.
    authentication_token: Mapped[str | None] = mapped_column(String(255))
    updatable: Mapped[bool] = mapped_column(Boolean, default=False)
    voided: Mapped[bool] = mapped_column(Boolean, default=False)
    # Known recipients of the pass over all its requests: bounds its device registrations.
    recipient_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    latest_version_id: Mapped[int | None] = mapped_column(Id)
    kind: Mapped[str] = mapped_column(String(16), default=PassKind.SHARED, server_default="pass")
    # A personal pass's template (no FK: see migration 0007).
    template_pass_id: Mapped[int | None] = mapped_column(Id, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PassContent(Base):
    """The bytes of pass versions, stored once per SHA-256 (the same file imported 700 times
    is stored once). Written by ``store_content``; never changed, never deleted."""

    __tablename__ = "pass_content"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    content: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PassVersion(Base):
    """One imported (and possibly re-signed) version of a pass: the exact bytes served.

    ``content`` reads the bytes from ``pass_content`` by ``sha256``. A new version is
    given its bytes as ``content``; the insert stores them there unless they already are
    and sets ``sha256`` and ``size`` (``_store_version_content``).
    """

    __tablename__ = "pass_version"
    __table_args__ = (UniqueConstraint("pass_id", "version"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    pass_id: Mapped[int] = mapped_column(ForeignKey("wallet_pass.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    pass_json: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    content: Mapped[bytes] = column_property(
        select(PassContent.content).where(PassContent.sha256 == sha256).scalar_subquery()
    )


_STORED = select(PassContent.sha256).where(PassContent.sha256 == bindparam("sha256"))


def store_content(connection: Connection, content: bytes) -> str:
    """Store ``content`` in ``pass_content`` unless it is there already; its SHA-256."""
    digest = hashlib.sha256(content).hexdigest()
    # Looked up first: an INSERT that turns out a duplicate still copies the bytes.
    if connection.execute(_STORED, {"sha256": digest}).first() is not None:
        return digest
    insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    connection.execute(
        insert(PassContent)
        .values(sha256=digest, content=content, size=len(content), created_at=utcnow())
        .on_conflict_do_nothing(index_elements=["sha256"])
    )
    return digest


@event.listens_for(PassVersion, "before_insert")
def _store_version_content(_mapper: Any, connection: Connection, version: PassVersion) -> None:
    content = version.__dict__.get("content")
    if content is None:
        raise ValueError("a new PassVersion needs its content")
    version.sha256 = store_content(connection, content)
    version.size = len(content)


class UpdateClock(Base):
    """One monotonically increasing counter per pass type; its row lock orders commits."""

    __tablename__ = "passkit_update_clock"

    pass_type_identifier: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


class PassUpdate(Base):
    """One new version of a pass becoming visible to devices (the first version too)."""

    __tablename__ = "passkit_pass_update"
    __table_args__ = (
        UniqueConstraint("pass_type_identifier", "seq"),
        Index("ix_passkit_pass_update_pass_seq", "pass_id", "seq"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    pass_id: Mapped[int] = mapped_column(ForeignKey("wallet_pass.id", ondelete="CASCADE"))
    version_id: Mapped[int] = mapped_column(ForeignKey("pass_version.id", ondelete="CASCADE"))
    pass_type_identifier: Mapped[str] = mapped_column(String(255))
    seq: Mapped[int] = mapped_column(BigInteger)
    # Whole seconds, strictly increasing per pass: what Last-Modified / If-Modified-Since use.
    last_modified: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
