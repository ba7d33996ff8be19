"""The one small interface both APNs auth modes implement (token: ``token.py``, certificate:
``certificate.py``); the client asks it for a header and lets it shape the TLS context."""

from __future__ import annotations

import ssl
from typing import Protocol


class ApnsConfigError(ValueError):
    """APNs cannot be used as configured (missing settings, unreadable or wrong key)."""


class ApnsAuth(Protocol):
    """How a provider proves itself to APNs."""

    mode: str  # "token" or "certificate"

    def authorization(self) -> str | None:
        """The ``authorization`` header value for the next request (None: no header)."""
        ...

    def refresh(self, rejected: str | None) -> None:
        """APNs rejected the credential ``rejected`` as expired/invalid: make a new one."""
        ...

    def configure(self, context: ssl.SSLContext) -> None:
        """Add what this mode needs to the client's TLS context (a client certificate)."""
        ...
