"""Kept for existing imports: the suite's SMTP peer lives in ``tests.support.smtp``."""

from tests.support.net import free_port
from tests.support.smtp import (
    Received,
    ScriptedHandler,
    TlsCert,
    authenticator_for,
    make_test_cert,
    start_peer,
)
from tests.support.smtp import (
    SmtpServer as SmtpPeer,
)

__all__ = [
    "Received",
    "ScriptedHandler",
    "SmtpPeer",
    "TlsCert",
    "authenticator_for",
    "free_port",
    "make_test_cert",
    "start_peer",
]
