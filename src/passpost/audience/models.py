"""Recipients (the original API's "audience")."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Index, Integer, LargeBinary, String, Text, true
from sqlalchemy.orm import Mapped, mapped_column

from passpost.db import Base, Id, UTCDateTime, utcnow


class Recipient(Base):
    """One person who can receive passes by e-mail and/or SMS."""

    __tablename__ = "recipient"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    first_name: Mapped[str | None] = mapped_column(String(200))
    last_name: Mapped[str | None] = mapped_column(String(200))
    # Stored lower-cased; unique so that CSV import can upsert by e-mail.
    email: Mapped[str | None] = mapped_column(String(320), unique=True)
    # E.164 when it could be normalised, else as given (sends to it are then rejected).
    mobile_number: Mapped[str | None] = mapped_column(String(40), index=True)
    state: Mapped[str | None] = mapped_column(String(100))
    country: Mapped[str | None] = mapped_column(String(100))
    sms_subscription: Mapped[bool] = mapped_column(Boolean, default=True)
    email_subscription: Mapped[bool] = mapped_column(Boolean, default=True)
    push_subscription: Mapped[bool] = mapped_column(Boolean, default=True)
    # Kept for the original API's clients; passpost sends no voice SMS.
    voice_subscription: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    last_active_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class UploadBatch(Base):
    """One uploaded file imported by a worker (``/api/v1/batchinfo``): its state and errors.

    The file itself is kept in ``content`` until the import has run, so a worker killed
    mid-import leaves a batch that the sweeper queues again.
    """

    __tablename__ = "upload_batch"
    __table_args__ = (Index("ix_upload_batch_state", "state", "lease_until"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    data_type: Mapped[str] = mapped_column(String(32), default="AUDIENCE_MEMBERS")
    state: Mapped[str] = mapped_column(String(16), default="queued")  # queued|done|failed
    status_message: Mapped[str] = mapped_column(Text, default="")
    file_name: Mapped[str | None] = mapped_column(String(255))
    content: Mapped[bytes | None] = mapped_column(LargeBinary)
    imported_by: Mapped[str | None] = mapped_column(String(200))
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    # [{"row", "errorCode", "message"}], at most csv_import.MAX_REPORTED_ERRORS of them.
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    ignored_columns: Mapped[list[str]] = mapped_column(JSON, default=list)
