"""Token auth: a provider JWT (ES256, ``kid`` = key id, ``iss`` = team id, ``iat``) signed with
the team's ``.p8`` key, reused across requests and renewed before APNs calls it expired."""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from passpost.passkit.apns.auth import ApnsConfigError

# APNs rejects tokens older than an hour and answers TooManyProviderTokenUpdates when a
# provider renews more often than every 20 minutes; 40 minutes sits safely between.
DEFAULT_MAX_AGE = 40 * 60


def load_p8_key(data: bytes) -> ec.EllipticCurvePrivateKey:
    """Parse an APNs ``.p8`` auth key (PKCS#8 PEM, EC P-256)."""
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise ApnsConfigError(f"the APNs key is not a readable PEM private key: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ApnsConfigError("the APNs key must be an EC P-256 key (an AuthKey_XXXX.p8 file)")
    return key


class TokenAuth:
    """Provider-token auth; one JWT serves every topic of the team, so one client suffices."""

    mode = "token"

    def __init__(
        self,
        key: ec.EllipticCurvePrivateKey | bytes,
        *,
        key_id: str,
        team_id: str,
        clock: Callable[[], float] = time.time,
        max_age: float = DEFAULT_MAX_AGE,
    ) -> None:
        if not key_id or not team_id:
            raise ApnsConfigError("APNs token auth needs a key id and a team id")
        self._key = load_p8_key(key) if isinstance(key, bytes) else key
        self.key_id = key_id
        self.team_id = team_id
        self._clock = clock
        self.max_age = max_age
        self._token: str | None = None
        self._issued_at = 0.0
        self.issued = 0  # how many JWTs were made (observable renewals)

    @classmethod
    def from_file(
        cls,
        path: Path | str,
        *,
        key_id: str,
        team_id: str,
        clock: Callable[[], float] = time.time,
        max_age: float = DEFAULT_MAX_AGE,
    ) -> TokenAuth:
        """Token auth from a ``.p8`` file."""
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise ApnsConfigError(f"cannot read the APNs key file {path}: {exc}") from exc
        return cls(data, key_id=key_id, team_id=team_id, clock=clock, max_age=max_age)

    def token(self) -> str:
        """The current JWT, made anew when older than ``max_age`` (or the clock went back)."""
        now = self._clock()
        age = now - self._issued_at
        if self._token is None or age >= self.max_age or age < 0:
            self._token = jwt.encode(
                {"iss": self.team_id, "iat": int(now)},
                self._key,
                algorithm="ES256",
                headers={"kid": self.key_id, "typ": None},  # Apple's header is alg + kid only
            )
            self._issued_at = now
            self.issued += 1
        return self._token

    def authorization(self) -> str:
        """``bearer <JWT>``."""
        return f"bearer {self.token()}"

    def refresh(self, rejected: str | None) -> None:
        """Drop the JWT if it is the one APNs rejected (concurrent rejections renew once)."""
        if self._token is not None and rejected in (None, f"bearer {self._token}"):
            self._token = None

    def configure(self, context: ssl.SSLContext) -> None:
        """Nothing: token auth travels in a header."""
