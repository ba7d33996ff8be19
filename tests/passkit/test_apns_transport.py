"""The HTTP/2 transport under ApnsClient: GOAWAY, stream limits, timeouts, lost connections."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from passpost.passkit.apns import ApnsClient, PushOutcome, PushResult, TokenAuth
from tests.passkit.apns_helpers import Sleeps, device
from tests.peers.apns_server import Answer, ApnsPki, ApnsTestServer

TOPIC = "pass.org.passpost.test"


def run(
    server: ApnsTestServer, body: Callable[[ApnsClient], Awaitable[Any]], **options: Any
) -> Any:
    pki = server.pki
    auth = TokenAuth.from_file(pki.p8_key, key_id=pki.key_id, team_id=pki.team_id)

    async def main() -> Any:
        async with ApnsClient(auth, url=server.url, ca_file=pki.ca_file, **options) as client:
            return await body(client)

    return asyncio.run(main())


def test_goaway_moves_refused_streams_to_a_new_connection(apns_pki: ApnsPki) -> None:
    sleeps = Sleeps()
    with ApnsTestServer(apns_pki, goaway_after=50) as server:
        results: list[PushResult] = run(
            server,
            lambda c: c.push_many([(device(n), TOPIC) for n in range(300)]),
            concurrency=100,
            sleep=sleeps,
        )

    assert all(r.ok for r in results)
    # Streams above GOAWAY's last stream were never processed: resent at once, not retried.
    assert all(r.attempts == 1 for r in results) and sleeps.delays == []
    paths = [r.path for r in server.received]
    assert len(paths) == len(set(paths)) == 300  # each push processed exactly once
    assert server.connections >= 300 // 50
    assert max(sum(r.connection == c for r in server.received) for c in range(1, 20)) <= 50


def test_the_servers_stream_limit_is_honoured(apns_pki: ApnsPki) -> None:
    with ApnsTestServer(apns_pki, max_concurrent_streams=5) as server:
        results: list[PushResult] = run(
            server,
            lambda c: c.push_many([(device(n), TOPIC) for n in range(200)]),
            concurrency=50,
        )

    assert all(r.ok and r.attempts == 1 for r in results)
    assert server.connections == 1
    assert 1 < server.max_in_flight <= 5


def test_an_unanswered_push_times_out_without_blocking_others(apns_pki: ApnsPki) -> None:
    sleeps = Sleeps()
    with ApnsTestServer(apns_pki) as server:
        server.program(device(1), Answer(action="hang"), Answer(action="hang"))
        results: list[PushResult] = run(
            server,
            lambda c: c.push_many([(device(n), TOPIC) for n in range(20)]),
            timeout=0.5,
            max_attempts=2,
            sleep=sleeps,
        )

    stuck = results[1]
    assert (stuck.outcome, stuck.status, stuck.attempts) == (PushOutcome.TRANSIENT, None, 2)
    assert stuck.reason.startswith("Timeout")
    assert all(r.ok for i, r in enumerate(results) if i != 1)
    assert server.connections == 1  # a timed-out stream is reset, the connection kept


def test_a_dropped_connection_is_retried_on_a_new_one(apns_pki: ApnsPki) -> None:
    sleeps = Sleeps()
    with ApnsTestServer(apns_pki) as server:
        server.program(device(1), Answer(action="drop"))

        async def body(client: ApnsClient) -> tuple[PushResult, PushResult]:
            first = await client.push(device(1), TOPIC)
            return first, await client.push(device(2), TOPIC)

        dropped, after = run(server, body, sleep=sleeps)

    assert (dropped.outcome, dropped.attempts) == (PushOutcome.OK, 2)
    assert after.ok
    assert len(sleeps.delays) == 1
    assert server.connections == 2
    assert [r.status for r in server.received] == [0, 200, 200]
