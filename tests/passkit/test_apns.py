"""ApnsClient in token mode against a real HTTP/2 TLS server on loopback."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest

from passpost.config import Settings
from passpost.passkit.apns import (
    ApnsClient,
    ApnsConfigError,
    PushOutcome,
    PushResult,
    TokenAuth,
)
from tests.passkit.apns_helpers import Sleeps, device
from tests.peers.apns_server import Answer, ApnsPki, ApnsTestServer


@pytest.fixture
def server(apns_pki: ApnsPki) -> Iterator[ApnsTestServer]:
    """The APNs test server in token mode (verifies provider JWTs with the .p8 public key)."""
    with ApnsTestServer(apns_pki, mode="token") as running:
        yield running


class Clock:
    """An injectable clock: starts where told, moves only when advanced."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def token_auth(pki: ApnsPki, clock: Callable[[], float] = time.time) -> TokenAuth:
    return TokenAuth.from_file(pki.p8_key, key_id=pki.key_id, team_id=pki.team_id, clock=clock)


def run(
    server: ApnsTestServer,
    auth: TokenAuth,
    body: Callable[[ApnsClient], Awaitable[Any]],
    **options: Any,
) -> Any:
    """Run ``body`` with a client pointed at ``server`` (trusting the test CA)."""

    async def main() -> Any:
        async with ApnsClient(auth, url=server.url, ca_file=server.pki.ca_file, **options) as c:
            return await body(c)

    return asyncio.run(main())


def test_push_sends_what_apns_expects(server: ApnsTestServer, apns_pki: ApnsPki) -> None:
    before = int(time.time())
    result: PushResult = run(server, token_auth(apns_pki), lambda c: c.push(device(7), TOPIC))

    assert result.ok and result.outcome is PushOutcome.OK
    assert (result.status, result.reason, result.attempts) == (200, "", 1)
    [seen] = server.received
    assert seen.method == "POST"
    assert seen.path == f"/3/device/{device(7)}"
    assert seen.body == b"{}"
    assert seen.headers["apns-topic"] == TOPIC
    assert seen.headers["apns-push-type"] == "background"
    assert seen.headers["apns-priority"] == "5"
    assert seen.headers["apns-id"] == result.apns_id
    scheme, token = seen.headers["authorization"].split(" ")
    assert scheme == "bearer"
    assert jwt.get_unverified_header(token) == {"alg": "ES256", "kid": apns_pki.key_id}
    claims = jwt.decode(token, apns_pki.p8_public_key(), algorithms=["ES256"])
    assert set(claims) == {"iss", "iat"}
    assert claims["iss"] == apns_pki.team_id
    assert before <= claims["iat"] <= time.time()


def test_a_jwt_signed_with_another_key_fails_verification(apns_pki: ApnsPki) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    other = TokenAuth(ec.generate_private_key(ec.SECP256R1()), key_id="K", team_id="T")
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(other.token(), apns_pki.p8_public_key(), algorithms=["ES256"])


TOPIC = "pass.org.passpost.test"


def test_answers_are_classified_and_retried(server: ApnsTestServer, apns_pki: ApnsPki) -> None:
    server.program(device(1), Answer(410, "Unregistered"))
    server.program(device(2), Answer(400, "BadDeviceToken"))
    server.program(device(3), Answer(429, "TooManyRequests"), Answer(200))
    server.program(device(4), Answer(500, "InternalServerError"), Answer(200))
    server.program(device(5), *[Answer(503, "ServiceUnavailable")] * 10)
    sleeps = Sleeps()
    items = [(device(n), TOPIC) for n in range(6)]
    results: list[PushResult] = run(
        server,
        token_auth(apns_pki),
        lambda c: c.push_many(items),
        sleep=sleeps,
        max_attempts=3,
        backoff_base=0.5,
        rng=random.Random(1),
    )

    assert [r.token for r in results] == [t for t, _ in items]
    by = {r.token: r for r in results}
    assert by[device(0)].outcome is PushOutcome.OK
    gone = by[device(1)]
    assert (gone.outcome, gone.status, gone.reason) == (
        PushOutcome.UNREGISTERED,
        410,
        "Unregistered",
    )
    assert (
        gone.unregistered_at is not None
        and abs(gone.unregistered_at.timestamp() - time.time()) < 60
    )
    bad = by[device(2)]
    assert (bad.outcome, bad.reason, bad.attempts) == (PushOutcome.PERMANENT, "BadDeviceToken", 1)
    assert (by[device(3)].outcome, by[device(3)].attempts) == (PushOutcome.OK, 2)
    assert (by[device(4)].outcome, by[device(4)].attempts) == (PushOutcome.OK, 2)
    down = by[device(5)]
    assert (down.outcome, down.status, down.reason) == (
        PushOutcome.TRANSIENT,
        503,
        "ServiceUnavailable",
    )
    assert down.attempts == 3
    assert [r.path for r in server.received].count(f"/3/device/{device(5)}") == 3
    assert len(server.received) == 1 + 1 + 1 + 2 + 2 + 3
    # Exponential backoff with jitter: attempt n waits within [base·2ⁿ⁻¹/2, base·2ⁿ⁻¹].
    assert len(sleeps.delays) == 1 + 1 + 2
    assert all(0.25 <= d <= 0.5 for d in sleeps.delays[:3])
    assert 0.5 <= sleeps.delays[3] <= 1.0
    # One apns-id per push, kept across its retries.
    retried = [r.headers["apns-id"] for r in server.received if r.path.endswith(device(5))]
    assert len(set(retried)) == 1 and retried[0] == down.apns_id


def test_retry_after_is_honoured(server: ApnsTestServer, apns_pki: ApnsPki) -> None:
    server.program(device(1), Answer(429, "TooManyRequests", retry_after="3"), Answer(200))
    server.program(device(2), Answer(503, "ServiceUnavailable", retry_after="120"))
    sleeps = Sleeps()
    results: list[PushResult] = run(
        server,
        token_auth(apns_pki),
        lambda c: c.push_many([(device(1), TOPIC), (device(2), TOPIC)]),
        sleep=sleeps,
        backoff_base=0.01,
        backoff_max=30,
    )

    assert (results[0].outcome, results[0].attempts) == (PushOutcome.OK, 2)
    assert sleeps.delays == [3.0]
    # Longer than a worker should hold on: handed back at once for the queue to reschedule.
    later = results[1]
    assert (later.outcome, later.attempts, later.retry_after) == (PushOutcome.TRANSIENT, 1, 120.0)


def test_jwt_is_reused_then_renewed_when_old(server: ApnsTestServer, apns_pki: ApnsPki) -> None:
    clock = Clock(time.time() - 45 * 60)  # a 45-minute-old token is still valid for APNs
    auth = token_auth(apns_pki, clock)

    async def body(client: ApnsClient) -> list[PushResult]:
        first = await client.push_many([(device(n), TOPIC) for n in range(5)])
        clock.now = time.time()  # the token is now 45 minutes old: past the 40-minute mark
        return first + await client.push_many([(device(n), TOPIC) for n in range(5, 8)])

    results: list[PushResult] = run(server, auth, body)

    assert all(r.ok for r in results)
    tokens = [r.headers["authorization"] for r in server.received]
    assert len(set(tokens[:5])) == 1 and len(set(tokens[5:])) == 1
    assert tokens[0] != tokens[5]
    assert auth.issued == 2
    old_iat = jwt.decode(tokens[0].split()[1], options={"verify_signature": False})["iat"]
    new_iat = jwt.decode(tokens[5].split()[1], options={"verify_signature": False})["iat"]
    assert new_iat - old_iat >= 45 * 60 - 1


def test_rejected_provider_token_is_renewed_once(server: ApnsTestServer, apns_pki: ApnsPki) -> None:
    server.program(device(1), Answer(403, "ExpiredProviderToken"), Answer(200))
    server.program(device(2), *[Answer(403, "InvalidProviderToken")] * 3)
    auth = token_auth(apns_pki)
    results: list[PushResult] = run(
        server, auth, lambda c: c.push_many([(device(1), TOPIC), (device(2), TOPIC)])
    )

    renewed, refused = results
    assert (renewed.outcome, renewed.attempts) == (PushOutcome.OK, 2)
    assert (refused.outcome, refused.status, refused.reason, refused.attempts) == (
        PushOutcome.PERMANENT,
        403,
        "InvalidProviderToken",
        2,
    )
    first = [r.headers["authorization"] for r in server.received if r.path.endswith(device(1))]
    assert len(first) == 2 and first[0] != first[1]


def test_a_stale_clock_gives_a_genuine_expired_token(
    server: ApnsTestServer, apns_pki: ApnsPki
) -> None:
    # The server itself judges the JWT 2 hours old; renewing from the same clock cannot help.
    auth = token_auth(apns_pki, Clock(time.time() - 2 * 3600))
    result: PushResult = run(server, auth, lambda c: c.push(device(1), TOPIC))

    assert (result.outcome, result.reason, result.attempts) == (
        PushOutcome.PERMANENT,
        "ExpiredProviderToken",
        2,
    )
    assert auth.issued == 2


def test_concurrent_rejections_renew_the_jwt_once(
    server: ApnsTestServer, apns_pki: ApnsPki
) -> None:
    for n in range(50):
        server.program(device(n), Answer(403, "ExpiredProviderToken"))
    auth = token_auth(apns_pki)
    results: list[PushResult] = run(
        server, auth, lambda c: c.push_many([(device(n), TOPIC) for n in range(50)])
    )

    assert all(r.ok and r.attempts == 2 for r in results)
    assert auth.issued == 2  # not one per rejected request: APNs limits token updates


def test_a_thousand_pushes_share_few_connections(server: ApnsTestServer, apns_pki: ApnsPki) -> None:
    items = [(device(n), TOPIC) for n in range(1000)]
    results: list[PushResult] = run(
        server, token_auth(apns_pki), lambda c: c.push_many(items), connections=2, concurrency=100
    )

    assert len(results) == 1000 and all(r.ok for r in results)
    assert [r.token for r in results] == [t for t, _ in items]
    assert len({r.path for r in server.received}) == 1000
    assert server.connections <= 2
    assert server.max_in_flight > 1  # streams were multiplexed, not sent one by one
    per_connection = [sum(r.connection == c for r in server.received) for c in (1, 2)]
    assert min(per_connection) > 100  # both connections carried many streams


def test_a_malformed_device_token_is_never_sent(server: ApnsTestServer, apns_pki: ApnsPki) -> None:
    result: PushResult = run(server, token_auth(apns_pki), lambda c: c.push("../../x?y", TOPIC))

    assert (result.outcome, result.reason, result.attempts) == (
        PushOutcome.PERMANENT,
        "BadDeviceToken",
        0,
    )
    assert server.received == []


def test_an_untrusted_server_is_refused(server: ApnsTestServer, apns_pki: ApnsPki) -> None:
    async def main() -> PushResult:
        async with ApnsClient(token_auth(apns_pki), url=server.url, max_attempts=1) as client:
            return await client.push(device(1), TOPIC)

    result = asyncio.run(main())

    assert (result.outcome, result.status) == (PushOutcome.TRANSIENT, None)
    assert "certificate" in result.reason.lower()
    assert server.received == []


def test_connection_trouble_is_transient(apns_pki: ApnsPki) -> None:
    with ApnsTestServer(apns_pki) as gone:
        url = gone.url
    sleeps = Sleeps()

    async def main() -> PushResult:
        auth = token_auth(apns_pki)
        async with ApnsClient(auth, url=url, ca_file=apns_pki.ca_file, sleep=sleeps) as client:
            return await client.push(device(1), TOPIC)

    result = asyncio.run(main())

    assert (result.outcome, result.status, result.attempts) == (PushOutcome.TRANSIENT, None, 4)
    assert result.reason.startswith("ConnectError")
    assert len(sleeps.delays) == 3


def settings_for(server: ApnsTestServer, **overrides: Any) -> Settings:
    pki = server.pki
    values: dict[str, Any] = {
        "apns_url": server.url,
        "apns_ca_file": pki.ca_file,
        "apns_key_file": pki.p8_key,
        "apns_key_id": pki.key_id,
        "apns_team_id": pki.team_id,
    }
    return Settings(**{**values, **overrides})


def test_from_settings_uses_token_auth(server: ApnsTestServer) -> None:
    async def main() -> PushResult:
        async with ApnsClient.from_settings(settings_for(server)) as client:
            assert isinstance(client.auth, TokenAuth)
            return await client.push(device(1), TOPIC)

    assert asyncio.run(main()).ok
    assert server.received[0].headers["authorization"].startswith("bearer ")


def test_from_settings_reads_the_environment(
    server: ApnsTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    pki = server.pki
    for name, value in {
        "URL": server.url,
        "CA_FILE": str(pki.ca_file),
        "KEY_FILE": str(pki.p8_key),
        "KEY_ID": pki.key_id,
        "TEAM_ID": pki.team_id,
    }.items():
        monkeypatch.setenv(f"PASSPOST_APNS_{name}", value)

    async def main() -> PushResult:
        async with ApnsClient.from_settings(Settings()) as client:
            return await client.push(device(1), TOPIC)

    assert asyncio.run(main()).ok


def test_from_settings_refuses_what_cannot_work(server: ApnsTestServer, tmp_path: Path) -> None:
    with pytest.raises(ApnsConfigError, match="not configured"):
        ApnsClient.from_settings(settings_for(server, apns_key_id=None))
    with pytest.raises(ApnsConfigError, match="cannot read"):
        ApnsClient.from_settings(settings_for(server, apns_key_file=tmp_path / "missing.p8"))
    garbage = tmp_path / "garbage.p8"
    garbage.write_text("not a key")
    with pytest.raises(ApnsConfigError, match="PEM"):
        ApnsClient.from_settings(settings_for(server, apns_key_file=garbage))
    with pytest.raises(ApnsConfigError, match="CA file"):
        ApnsClient.from_settings(settings_for(server, apns_ca_file=tmp_path / "no-ca.pem"))
