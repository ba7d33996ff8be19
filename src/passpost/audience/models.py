"""Recipients (the original API's "audience")."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, String
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
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
