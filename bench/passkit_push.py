"""P4: Wallet pushes/s through ApnsClient vs bare multiplexed HTTP/2 clients, same server.

The APNs test server (tests/peers/apns_server.py, token mode: it verifies each provider JWT)
runs in its own process on loopback. Three clients push the same requests (POST
/3/device/<token>, body ``{}``, apns-topic/push-type/priority, bearer JWT) with the same
concurrency over one connection:

- ``ApnsClient``: passpost's client (result classification, retries, JWT cache);
- ``raw httpx``: httpx.AsyncClient(http2=True) and a semaphore (the obvious transport; it
  measured several times slower, hence ApnsClient's own h2 transport);
- ``bare h2``: one asyncio TLS connection driven by ``h2`` directly, one write per request —
  the ceiling for Python on this machine.

Rounds are interleaved and the best round of each is kept (the machine is shared).
Run: ``python bench/passkit_push.py [--pushes 3000] [--concurrency 200] [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import h2.config
import h2.connection
import h2.events
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from passpost.passkit.apns import ApnsClient, TokenAuth  # noqa: E402
from tests.peers.apns_server import KEY_ID, TEAM_ID, TOPIC  # noqa: E402

Runner = Callable[[str, Path, Path, int, int], Awaitable[int]]


class Timer:
    """Wall time and this process's CPU time (the server runs elsewhere) of the timed part."""

    def __enter__(self) -> Timer:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu
        CPU.append(self.cpu)


CPU: list[float] = []  # client CPU seconds of the last timed part


def devices(n: int) -> list[str]:
    """Distinct 64-hex device tokens."""
    return [f"{i:064x}" for i in range(n)]


def headers_for(url: str, token: str, jwt: str) -> list[tuple[str, str]]:
    """The request headers every contestant sends."""
    return [
        (":method", "POST"),
        (":scheme", "https"),
        (":authority", url.removeprefix("https://")),
        (":path", f"/3/device/{token}"),
        ("apns-topic", TOPIC),
        ("apns-push-type", "background"),
        ("apns-priority", "5"),
        ("authorization", f"bearer {jwt}"),
        ("content-length", "2"),
    ]


async def run_apns_client(url: str, ca: Path, p8: Path, n: int, concurrency: int) -> int:
    """Pushes through ApnsClient.push_many; returns how many were accepted."""
    auth = TokenAuth.from_file(p8, key_id=KEY_ID, team_id=TEAM_ID)
    async with ApnsClient(auth, url=url, ca_file=ca, concurrency=concurrency) as client:
        await client.push(devices(1)[0], TOPIC)  # connect outside the timed part
        with Timer() as timer:
            results = await client.push_many([(token, TOPIC) for token in devices(n)])
    return _rate(sum(r.ok for r in results), n, timer.wall)


async def run_raw_httpx(url: str, ca: Path, p8: Path, n: int, concurrency: int) -> int:
    """The same requests through a bare httpx HTTP/2 client and a semaphore."""
    jwt = TokenAuth.from_file(p8, key_id=KEY_ID, team_id=TEAM_ID).token()
    context = ssl.create_default_context(cafile=str(ca))
    slots = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=url, http1=False, http2=True, verify=context) as http:

        async def one(token: str) -> bool:
            async with slots:
                headers = {k: v for k, v in headers_for(url, token, jwt) if not k.startswith(":")}
                response = await http.post(f"/3/device/{token}", content=b"{}", headers=headers)
                return response.status_code == 200

        await one(devices(1)[0])
        with Timer() as timer:
            ok = await asyncio.gather(*(one(token) for token in devices(n)))
    return _rate(sum(ok), n, timer.wall)


async def run_bare_h2(url: str, ca: Path, p8: Path, n: int, concurrency: int) -> int:
    """The same requests on one TLS connection driven by ``h2`` directly."""
    jwt = TokenAuth.from_file(p8, key_id=KEY_ID, team_id=TEAM_ID).token()
    context = ssl.create_default_context(cafile=str(ca))
    context.set_alpn_protocols(["h2"])
    host, port = url.removeprefix("https://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port), ssl=context)
    conn = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
    )
    conn.initiate_connection()
    writer.write(conn.data_to_send())
    pending: dict[int, asyncio.Future[str]] = {}

    async def read() -> None:
        statuses: dict[int, str] = {}
        while data := await reader.read(65536):
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived):
                    statuses[event.stream_id] = dict(event.headers)[":status"]  # type: ignore[arg-type]
                elif isinstance(event, h2.events.DataReceived):
                    conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                elif isinstance(event, h2.events.StreamEnded):
                    pending.pop(event.stream_id).set_result(statuses.pop(event.stream_id))
            writer.write(conn.data_to_send())

    reading = asyncio.create_task(read())
    slots = asyncio.Semaphore(concurrency)

    async def one(token: str) -> bool:
        async with slots:
            stream_id = conn.get_next_available_stream_id()
            conn.send_headers(stream_id, headers_for(url, token, jwt))
            conn.send_data(stream_id, b"{}", end_stream=True)
            answer = pending[stream_id] = asyncio.get_running_loop().create_future()
            writer.write(conn.data_to_send())
            return await answer == "200"

    await one(devices(1)[0])
    with Timer() as timer:
        ok = await asyncio.gather(*(one(token) for token in devices(n)))
    reading.cancel()
    writer.close()
    return _rate(sum(ok), n, timer.wall)


def _rate(accepted: int, n: int, elapsed: float) -> int:
    if accepted != n:
        raise RuntimeError(f"only {accepted} of {n} pushes were accepted")
    return round(n / elapsed)


def start_server(pki_dir: Path) -> tuple[subprocess.Popen[str], str]:
    """The APNs test server in its own process; returns it and its URL."""
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.peers.apns_server", str(pki_dir)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    port = int(server.stdout.readline())
    return server, f"https://127.0.0.1:{port}"


def main() -> None:
    """Measure, print rates and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pushes", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    contestants: dict[str, Runner] = {
        "ApnsClient": run_apns_client,
        "raw httpx (http2)": run_raw_httpx,
        "bare h2": run_bare_h2,
    }
    best = dict.fromkeys(contestants, 0)
    cpu = dict.fromkeys(contestants, float("inf"))  # least client CPU µs per push
    with tempfile.TemporaryDirectory() as directory:
        pki = Path(directory)
        server, url = start_server(pki)
        try:
            ca, p8 = pki / "ca.pem", pki / f"AuthKey_{KEY_ID}.p8"
            for round_number in range(1, args.rounds + 1):
                for name, runner in contestants.items():
                    rate = asyncio.run(runner(url, ca, p8, args.pushes, args.concurrency))
                    best[name] = max(best[name], rate)
                    cpu[name] = min(cpu[name], CPU[-1] / args.pushes * 1e6)
                    print(f"round {round_number}: {name:<18} {rate:>6} pushes/s", flush=True)
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(10)
    print(
        f"\nP4 — {args.pushes} pushes, concurrency {args.concurrency}, one HTTP/2 connection, "
        f"best of {args.rounds}"
    )
    for name, rate in best.items():
        print(f"  {name:<18} {rate:>6} pushes/s   {cpu[name]:>6.0f} µs client CPU per push")
    client = best["ApnsClient"]
    print(f"  ratio ApnsClient / raw httpx: {client / best['raw httpx (http2)']:.2f} (pushes/s)")
    print(f"  ratio ApnsClient / bare h2:   {client / best['bare h2']:.2f} (pushes/s)")


if __name__ == "__main__":
    main()
