"""Pass-signing certificates and the WWDR intermediate used when signing (SPEC §5)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from passpost.db import Base, Id, UTCDateTime, utcnow


class PassCertificate(Base):
    """An uploaded Pass Type ID certificate with its private key (encrypted at rest)."""

    __tablename__ = "pass_certificate"
    __table_args__ = (Index("ix_pass_certificate_type", "pass_type_identifier", "not_after"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    pass_type_identifier: Mapped[str] = mapped_column(String(255))
    team_identifier: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(Text)
    issuer: Mapped[str] = mapped_column(Text)
    serial_hex: Mapped[str] = mapped_column(String(80))
    sha256: Mapped[str] = mapped_column(String(64))
    not_before: Mapped[datetime] = mapped_column(UTCDateTime)
    not_after: Mapped[datetime] = mapped_column(UTCDateTime)
    certificate_pem: Mapped[str] = mapped_column(Text)
    # PKCS#8 PEM of the key, and the .p12 passphrase, each Fernet-encrypted: never returned.
    private_key_enc: Mapped[str] = mapped_column(Text)
    passphrase_enc: Mapped[str] = mapped_column(Text)
    # Certificates the .p12 carried besides the leaf (usually the WWDR intermediate).
    extra_certificates_pem: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The uploaded .p12's file name and the last modification (the pages show them).
    file_name: Mapped[str | None] = mapped_column(String(255))
    updated_by: Mapped[str | None] = mapped_column(String(200))
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WwdrCertificate(Base):
    """An operator-supplied Apple WWDR intermediate; the newest one is used when signing."""

    __tablename__ = "wwdr_certificate"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    subject: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    not_before: Mapped[datetime] = mapped_column(UTCDateTime)
    not_after: Mapped[datetime] = mapped_column(UTCDateTime)
    certificate_pem: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
