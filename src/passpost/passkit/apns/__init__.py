"""APNs for Wallet passes: an HTTP/2 client with token (.p8) or certificate auth.

A pure library: no database, no web. The caller turns results into registration changes
(``unregistered`` → delete) and queue retries (``transient``).
"""

from passpost.passkit.apns.auth import ApnsAuth, ApnsConfigError
from passpost.passkit.apns.certificate import CertificateAuth
from passpost.passkit.apns.client import ApnsClient, token_auth_configured
from passpost.passkit.apns.results import PushOutcome, PushResult, PushTarget
from passpost.passkit.apns.token import TokenAuth

__all__ = [
    "ApnsAuth",
    "ApnsClient",
    "ApnsConfigError",
    "CertificateAuth",
    "PushOutcome",
    "PushResult",
    "PushTarget",
    "TokenAuth",
    "token_auth_configured",
]
