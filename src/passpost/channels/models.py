"""The stored channel configuration (``/api/v1/mailconfig``, ``/api/v1/smsconfig``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from passpost.db import Base, Id, UTCDateTime, utcnow


class ChannelConfig(Base):
    """One row per channel (``EMAIL``/``SMS``); it overrides the environment while it exists.

    ``properties`` holds the plain settings; ``secrets`` is a Fernet token of a JSON object
    (passwords, auth tokens), decrypted only when a sender is built.
    """

    __tablename__ = "channel_config"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), unique=True)
    provider: Mapped[str] = mapped_column(String(40))
    properties: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    secrets: Mapped[str | None] = mapped_column(Text)
    updated_by: Mapped[str | None] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
