"""Authentication overhead: each credential kind vs the same request without any.

One uvicorn server in this process (SQLite in a temp dir) serving the real app plus a
bench-only unauthenticated twin of the probe route; concurrent clients over loopback HTTP.
Prints req/s, p50/p99 and the ratio to the unauthenticated ceiling for: API key, claims
token, HTTP Basic with the verification cache, and HTTP Basic with the cache disabled
(every request pays argon2id). Usage: python bench/auth.py [--requests 400] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._common import LoadResult, run_load
from passpost.deps import SessionDep
from tests.support.net import free_port

USER, PASSWORD = "bench", "bench password 1"


def _start_server(port: int) -> tuple[str, str]:
    """Start the app on ``port``; return (API key, claims token)."""
    import uvicorn
    from sqlalchemy import select

    from passpost.audience.models import Recipient
    from passpost.auth import service
    from passpost.config import get_settings
    from passpost.db import migrate, session_scope
    from passpost.web.app import create_app

    url = get_settings().resolved_database_url
    migrate(url)
    with session_scope(url) as session:
        service.create_operator(session, username=USER, password=PASSWORD)
        _, key = service.create_api_key(session, name="bench")
        operator = service.check_credentials(session, username=USER, password=PASSWORD)
        claims = service.start_session(session, operator).claims_token
    app = create_app()

    # The ceiling: the same query as the probe, in the same kind of route, with no auth.
    @app.get("/bench/no-auth")
    def no_auth(session: SessionDep) -> dict[str, int]:
        return {"n": len(list(session.scalars(select(Recipient.id).limit(1))))}

    server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    return key, claims


async def _measure(
    base: str, path: str, headers: dict[str, str], total: int, concurrency: int
) -> LoadResult:
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as client:

        async def call() -> bool:
            return (await client.get(path)).status_code == 200

        await run_load(call, concurrency=concurrency, total=min(total, 20))  # warm up
        return await run_load(call, concurrency=concurrency, total=total)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    os.environ["PASSPOST_DATA_DIR"] = tempfile.mkdtemp(prefix="passpost-bench-auth-")
    os.environ.pop("PASSPOST_DATABASE_URL", None)
    port = free_port()
    key, claims = _start_server(port)
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            httpx.get(f"{base}/health", timeout=1)
            break
        except httpx.TransportError:
            time.sleep(0.1)

    from passpost.auth import passwords

    probe = "/api/v1/audience?pageSize=1"
    basic = httpx.BasicAuth(USER, PASSWORD)._auth_header
    runs = [
        ("no auth (ceiling)", "/bench/no-auth", {}),
        ("API key (bearer)", probe, {"Authorization": f"Bearer {key}"}),
        ("claims token", probe, {"X-VoltMX-Authorization": claims}),
        ("Basic, cached", probe, {"Authorization": basic}),
    ]
    n, c = args.requests, args.concurrency
    results = [(name, asyncio.run(_measure(base, p, h, n, c))) for name, p, h in runs]
    passwords.VERIFIED_TTL = -1.0  # every check misses: the price of argon2id per request
    passwords.clear_cache()
    cold_n = max(20, n // 10)
    results.append(
        (
            "Basic, cache off",
            asyncio.run(_measure(base, probe, {"Authorization": basic}, cold_n, c)),
        )
    )
    ceiling = results[0][1].rate
    print(f"{n} requests, {c} concurrent ({cold_n} for 'cache off'), SQLite, loopback HTTP")
    for name, result in results:
        print(f"{result.line(name)}  ratio {result.rate / ceiling:5.2f}")


if __name__ == "__main__":
    main()
