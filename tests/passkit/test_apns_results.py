"""APNs answer classification, Retry-After parsing and token auth without a server."""

from __future__ import annotations

import datetime as dt

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from passpost.passkit.apns import ApnsConfigError, PushOutcome, TokenAuth
from passpost.passkit.apns.results import classify, parse_retry_after, parse_timestamp


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, PushOutcome.OK),
        (410, PushOutcome.UNREGISTERED),
        (400, PushOutcome.PERMANENT),
        (403, PushOutcome.PERMANENT),
        (404, PushOutcome.PERMANENT),
        (413, PushOutcome.PERMANENT),
        (429, PushOutcome.TRANSIENT),
        (500, PushOutcome.TRANSIENT),
        (503, PushOutcome.TRANSIENT),
        (None, PushOutcome.TRANSIENT),
    ],
)
def test_classify(status: int | None, outcome: PushOutcome) -> None:
    assert classify(status) is outcome


def test_retry_after_in_seconds_or_as_an_http_date() -> None:
    now = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after("Fri, 02 Jan 2026 03:04:35 GMT", now) == 30.0
    assert parse_retry_after("Fri, 02 Jan 2026 03:00:00 GMT", now) == 0.0  # already past
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("-5") is None


def test_apns_timestamp_is_milliseconds() -> None:
    when = parse_timestamp(1_767_323_045_000)
    assert when == dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    assert parse_timestamp("1767323045000") is None
    assert parse_timestamp(True) is None


def p8(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def test_token_auth_wants_an_ec_p256_key() -> None:
    with pytest.raises(ApnsConfigError, match="P-256"):
        TokenAuth(p8(rsa.generate_private_key(65537, 2048)), key_id="K", team_id="T")
    with pytest.raises(ApnsConfigError, match="P-256"):
        TokenAuth(p8(ec.generate_private_key(ec.SECP384R1())), key_id="K", team_id="T")
    with pytest.raises(ApnsConfigError, match="key id and a team id"):
        TokenAuth(p8(ec.generate_private_key(ec.SECP256R1())), key_id="", team_id="T")


def test_refresh_only_drops_the_rejected_token() -> None:
    now = [1_000_000.0]
    auth = TokenAuth(
        p8(ec.generate_private_key(ec.SECP256R1())), key_id="K", team_id="T", clock=lambda: now[0]
    )
    first = auth.authorization()
    auth.refresh("bearer some-older-token")  # a late rejection of a token already replaced
    assert auth.authorization() == first and auth.issued == 1
    auth.refresh(first)
    second = auth.authorization()
    assert second != first and auth.issued == 2
    now[0] -= 10  # the clock went back: the token's age is unknowable, so it is renewed
    assert auth.authorization() != second and auth.issued == 3
    claims = jwt.decode(auth.token(), options={"verify_signature": False})
    assert claims == {"iss": "T", "iat": 999_990}
