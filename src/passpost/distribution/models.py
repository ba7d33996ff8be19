"""Distribution requests, pass holders and the delivery ledger (SPEC §3).

The pass and its versions live in ``passpost.passes.models``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from passpost.db import Base, Id, UTCDateTime, utcnow


class DeliveryState:
    """The original API's channel status vocabulary."""

    INITIAL = "initial"
    QUEUED = "queued"
    SUBMITTED = "submitted"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    OPENED = "opened"
    NOT_ATTEMPTED = "not attempted"

    PENDING = frozenset({INITIAL, QUEUED})
    FINAL = frozenset(
        {SUBMITTED, DELIVERED, UNDELIVERED, REJECTED, CANCELLED, OPENED, NOT_ATTEMPTED}
    )


class Channel:
    EMAIL = "EMAIL"
    SMS = "SMS"
    ALL = (EMAIL, SMS)


class DistributionRequest(Base):
    """One import (or update) call: what to send, to whom, when."""

    __tablename__ = "distribution_request"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    pass_id: Mapped[int] = mapped_column(ForeignKey("wallet_pass.id"), index=True)
    pass_version_id: Mapped[int] = mapped_column(ForeignKey("pass_version.id"))
    kind: Mapped[str] = mapped_column(String(16), default="issue")  # issue | update
    priority: Mapped[bool] = mapped_column(Boolean, default=False)
    start_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # passIntegrationConfig as sent (JSON text): the message templates per channel.
    integration_config: Mapped[str] = mapped_column(Text)
    # The pass's validation warnings (JSON list of findings), shown in the request's details.
    validation_warnings: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PassHolder(Base):
    """One recipient's pass in one request (the original API's ``passRequests`` entry).

    Carries the personal download link: only the token's SHA-256 is stored.
    """

    __tablename__ = "pass_holder"
    # A request's recipients page by page (keyset on id), whatever the request's size.
    # "Who holds this pass" (every new version asks): read from the index alone.
    __table_args__ = (
        Index("ix_pass_holder_request_page", "request_id", "id"),
        Index("ix_pass_holder_pass_recipient", "pass_id", "recipient_id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    request_id: Mapped[int] = mapped_column(
        ForeignKey("distribution_request.id", ondelete="CASCADE"), index=True
    )
    pass_id: Mapped[int] = mapped_column(ForeignKey("wallet_pass.id"), index=True)
    recipient_id: Mapped[int | None] = mapped_column(
        ForeignKey("recipient.id", ondelete="SET NULL"), index=True
    )
    audience_id: Mapped[str] = mapped_column(String(64))  # as the client gave it
    # Which template this holder is sent: "issue" (new to the pass) or "update".
    notification: Mapped[str] = mapped_column(String(8), default="issue")
    link_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The token itself, encrypted at rest, so a retried send rebuilds the same link.
    link_token_enc: Mapped[str] = mapped_column(Text)
    # Personal passes (SPEC §11): the holder's serial and placeholder values, set by the
    # import; the pass itself is built at the first download (no FK: see migration 0007).
    serial_number: Mapped[str | None] = mapped_column(String(255), index=True)
    personal_values: Mapped[str | None] = mapped_column(Text)
    personal_pass_id: Mapped[int | None] = mapped_column(Id, index=True)
    opened_count: Mapped[int] = mapped_column(Integer, default=0)
    first_opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Delivery(Base):
    """The ledger: one row per (request, recipient, channel). The source of truth."""

    __tablename__ = "delivery"
    __table_args__ = (
        Index("ix_delivery_due", "state", "priority", "next_attempt_at"),
        Index("ix_delivery_request_state", "request_id", "channel", "state"),
        Index("ix_delivery_lease", "state", "lease_until"),
        # The status page's first/last send and its sends in flight, without a scan.
        Index("ix_delivery_request_submitted", "request_id", "submitted_at"),
        Index("ix_delivery_request_lease", "request_id", "lease_until"),
        UniqueConstraint("holder_id", "channel"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    request_id: Mapped[int] = mapped_column(
        ForeignKey("distribution_request.id", ondelete="CASCADE")
    )
    holder_id: Mapped[int] = mapped_column(ForeignKey("pass_holder.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(8))
    state: Mapped[str] = mapped_column(String(16), default=DeliveryState.QUEUED)
    priority: Mapped[bool] = mapped_column(Boolean, default=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The queue task that owns this row now; a re-queue gives it a new one, so a stale
    # duplicate task finds nothing to claim.
    batch_id: Mapped[int | None] = mapped_column(Id, index=True)
    last_error: Mapped[str | None] = mapped_column(Text)
    provider_message_id: Mapped[str | None] = mapped_column(String(255), index=True)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class EarlyReceipt(Base):
    """A delivery receipt that arrived before its send's outcome was recorded.

    SMSCs answer submit_sm and send the receipt within milliseconds, while a batch records
    its outcomes when all of its sends are done; the receipt waits here until then.
    """

    __tablename__ = "early_receipt"

    provider_message_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    delivered: Mapped[bool] = mapped_column(Boolean)
    detail: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RequestTally(Base):
    """Counts per (request, channel, state), kept by database triggers on the ledger.

    The status pages read these instead of counting a request's deliveries: a count over
    a 100,000-recipient request's index costs tens of milliseconds per page view. The
    pseudo-channel ``*`` counts recipients (``recipients``) and those who opened (``opened``).
    On PostgreSQL the triggers append to ``request_tally_delta`` (no hot row for concurrent
    workers to queue on) and ``tally.fold`` moves the deltas in here.
    """

    __tablename__ = "request_tally"

    request_id: Mapped[int] = mapped_column(Id, primary_key=True)
    channel: Mapped[str] = mapped_column(String(8), primary_key=True)
    state: Mapped[str] = mapped_column(String(16), primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger, default=0)


class RequestTallyDelta(Base):
    """Changes to ``request_tally`` not yet folded in (PostgreSQL's triggers write here)."""

    __tablename__ = "request_tally_delta"
    __table_args__ = (Index("ix_request_tally_delta_request", "request_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    request_id: Mapped[int] = mapped_column(Id)
    channel: Mapped[str] = mapped_column(String(8))
    state: Mapped[str] = mapped_column(String(16))
    n: Mapped[int] = mapped_column(BigInteger)


class PassChangeJob(Base):
    """The same change for every pass of a request (SPEC §13), applied in queued chunks.

    ``cursor`` is the last holder id done: a re-run task continues after it.
    """

    __tablename__ = "pass_change_job"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    request_id: Mapped[int] = mapped_column(
        ForeignKey("distribution_request.id", ondelete="CASCADE"), index=True
    )
    changes: Mapped[str] = mapped_column(Text)  # the PATCH body as JSON
    state: Mapped[str] = mapped_column(String(16), default="queued")  # queued|running|done
    total: Mapped[int] = mapped_column(Integer, default=0)
    done: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    cursor: Mapped[int | None] = mapped_column(Id)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Bumped per chunk: a job not moving for a lease is re-queued by the sweeper.
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RequestExpansion(Base):
    """A large request's recipient list, stored as sent and expanded into the ledger by a
    worker, chunk by chunk (SPEC §3; ``distribution.expansion``).

    The chunks not yet expanded are the rows of ``RecipientChunk``: a chunk's ledger rows and
    its deletion commit together, so a killed worker's successor continues where it stopped.
    """

    __tablename__ = "request_expansion"

    request_id: Mapped[int] = mapped_column(
        ForeignKey("distribution_request.id", ondelete="CASCADE"), primary_key=True
    )
    # Later requests of the same pass wait for this one: it decides who holds the pass.
    pass_id: Mapped[int] = mapped_column(Id, index=True)
    total: Mapped[int] = mapped_column(Integer)  # entries in the list as sent
    expanded: Mapped[int] = mapped_column(Integer, default=0)  # entries in the ledger now
    contacts: Mapped[int] = mapped_column(Integer, default=0)  # known recipients among them
    # The task expanding it now: a chunk commits only while its owner holds the lease.
    owner: Mapped[int | None] = mapped_column(Id)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RecipientChunk(Base):
    """Consecutive entries of a request's recipient list not yet expanded.

    ``entries`` is a zlib-compressed JSON array of the entries as the client sent them.
    """

    __tablename__ = "recipient_chunk"

    request_id: Mapped[int] = mapped_column(
        ForeignKey("distribution_request.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    first_index: Mapped[int] = mapped_column(Integer)  # its first entry's place in the list
    size: Mapped[int] = mapped_column(Integer)
    entries: Mapped[bytes] = mapped_column(LargeBinary)
