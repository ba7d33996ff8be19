"""A stored pass template and the images uploaded with it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from passpost.db import Base, Id, UTCDateTime, utcnow


class PassTemplate(Base):
    """The original API's pass template: a name and its payload (``passContent`` …) as JSON."""

    __tablename__ = "pass_template"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    payload: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PassTemplateImage(Base):
    """An image uploaded with a template; the payload refers to it by ``imageId``."""

    __tablename__ = "pass_template_image"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    template_id: Mapped[int] = mapped_column(
        ForeignKey("pass_template.id", ondelete="CASCADE"), index=True
    )
    content: Mapped[bytes] = mapped_column(LargeBinary)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
