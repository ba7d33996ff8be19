"""PassKit Web Service tables: device registrations, pushes, device logs.

The update clock and the update ledger that tags are made of live in ``passpost.passes.models``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from passpost.db import Base, Id, UTCDateTime, utcnow


class PushState:
    """Where one push stands."""

    PENDING = "pending"
    SENT = "sent"
    UNREGISTERED = "unregistered"  # APNs 410: the registration was deleted
    FAILED = "failed"  # permanent APNs error, or retries exhausted


class Registration(Base):
    """A device that asked to be told about updates of one pass."""

    __tablename__ = "passkit_registration"
    __table_args__ = (
        UniqueConstraint("device_library_identifier", "pass_id"),
        Index("ix_passkit_registration_pass", "pass_id"),
        Index("ix_passkit_registration_push_token", "push_token"),
        Index("ix_passkit_registration_remote_addr", "remote_addr", "created_at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    device_library_identifier: Mapped[str] = mapped_column(String(255))
    pass_id: Mapped[int] = mapped_column(ForeignKey("wallet_pass.id", ondelete="CASCADE"))
    push_token: Mapped[str] = mapped_column(String(255))
    # The client address that registered (caps registrations per address and hour).
    remote_addr: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PassPush(Base):
    """The push ledger: one row per (update, registration); the queue only carries pass ids."""

    __tablename__ = "passkit_push"
    __table_args__ = (Index("ix_passkit_push_due", "state", "pass_id", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    pass_id: Mapped[int] = mapped_column(ForeignKey("wallet_pass.id", ondelete="CASCADE"))
    update_id: Mapped[int | None] = mapped_column(
        ForeignKey("passkit_pass_update.id", ondelete="SET NULL")
    )
    # Kept even when the registration goes away: the ledger must say where a push went.
    registration_id: Mapped[int | None] = mapped_column(
        ForeignKey("passkit_registration.id", ondelete="SET NULL"), index=True
    )
    device_library_identifier: Mapped[str] = mapped_column(String(255))
    push_token: Mapped[str] = mapped_column(String(255))
    topic: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(16), default=PushState.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    apns_status: Mapped[int | None] = mapped_column(Integer)
    apns_id: Mapped[str | None] = mapped_column(String(64))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class DeviceLog(Base):
    """One message a device sent to ``POST /api/v1/log`` (for operators to read)."""

    __tablename__ = "passkit_device_log"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    message: Mapped[str] = mapped_column(Text)
    remote_addr: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(255))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class InstallKind:
    INSTALL = "install"  # a device registered for the pass
    REMOVAL = "removal"  # a device unregistered


class InstallEvent(Base):
    """A registration (install) or unregistration (removal) of a pass on a device."""

    __tablename__ = "passkit_install_event"
    # A shared pass's installs and removals are counted on this index alone; a personal
    # pass's are also kept per request in ``request_tally`` (migration 0010's triggers).
    __table_args__ = (Index("ix_passkit_install_event_pass_kind", "pass_id", "kind"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    pass_id: Mapped[int] = mapped_column(
        ForeignKey("wallet_pass.id", ondelete="CASCADE"), index=True
    )
    device_library_identifier: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
