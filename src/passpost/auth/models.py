"""Operators, their login tokens, and API keys for scripts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from passpost.db import Base, Id, UTCDateTime, utcnow


class Operator(Base):
    """A person who manages passpost (HTTP Basic or the login call)."""

    __tablename__ = "operator"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(150), unique=True)
    # argon2id in PHC string form: algorithm, parameters and salt travel with the hash.
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class LoginToken(Base):
    """A claims or refresh token issued by the login call; only its SHA-256 is stored.

    Tokens are random (192 bits), not signed: a lookup per request buys instant revocation
    (logout, operator disabled) and no signing key to manage. Claims tokens live an hour,
    refresh tokens two weeks and rotate on use; both of one login share ``session_key``.
    """

    __tablename__ = "login_token"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    operator_id: Mapped[int] = mapped_column(
        ForeignKey("operator.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(10))  # "claims" | "refresh"
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    session_key: Mapped[str] = mapped_column(String(32), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ApiKey(Base):
    """A long-lived key for scripts, sent as a bearer token; only its SHA-256 is stored."""

    __tablename__ = "api_key"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(150), unique=True)
    # The public part of the key ("ppk_<prefix>_<secret>"): finds the row without a scan.
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
