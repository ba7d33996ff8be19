"""The console's Requests and Request pages with a 100,000-recipient request in the database.

Builds a database with one request of 100,000 recipients (200,000 deliveries in mixed
states, e-mail and SMS; a personal pass built for every recipient, a third of them
installed on a device and some removed again: the worst case for the install counts) and
50 small ones, then runs ``passpost api`` on it and a bare
Starlette app outside passpost that serves a static HTML page of the same size (the
ceiling: one uvicorn process, no database). Each page is fetched sequentially by one
logged-in client; prints p50/p99 per page and the ratio passpost/ceiling. Goal: p99 < 100 ms.

Usage: python bench/console.py [--recipients 100000] [--requests 300] [--database sqlite|postgres]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._common import env_without_passpost
from tests.conftest import create_pg_database, drop_pg_database
from tests.support.net import free_port, wait_for_http
from tests.support.service import OPERATOR, cli

BARE_SERVER = """
import sys, uvicorn
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

PAGES = {name: open(path).read() for name, path in zip(sys.argv[2::2], sys.argv[3::2])}

async def page(request):
    return HTMLResponse(PAGES[request.path_params["name"]])

app = Starlette(routes=[Route("/health", page), Route("/{name}", page)])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
"""

PERSONAL_BASE = 1_000_000  # ids of the personal passes: PERSONAL_BASE + holder id
STATES = ["submitted"] * 50 + ["delivered"] * 25 + ["opened"] * 10 + ["rejected"] * 5
STATES += ["undelivered"] * 5 + ["not attempted"] * 5


def _fill(url: str, recipients: int, small: int) -> int:
    """One big request and ``small`` small ones; returns the big one's id."""
    from sqlalchemy import text

    from passpost import ids, secrets
    from passpost.db import get_engine, migrate

    migrate(url)
    engine = get_engine(url)
    now = datetime.now(UTC)
    rng = random.Random(7)
    # Real sealed tokens: passpost checks at start that it can open the stored secrets.
    sealed = secrets.seal_link_token(secrets.new_token())
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO wallet_pass (id, pass_type_identifier, serial_number, "
                "team_identifier, updatable, voided, kind, created_at, updated_at) "
                "VALUES (1, 'pass.bench', 'B1', 'TEAM', true, false, 'template', :now, :now)"
            ),
            {"now": now},
        )
        conn.execute(
            text(
                "INSERT INTO pass_content (sha256, content, size, created_at) "
                "VALUES ('x', :c, 1, :now)"
            ),
            {"c": b"x", "now": now},
        )
        conn.execute(
            text(
                "INSERT INTO pass_version (id, pass_id, version, pass_json, sha256, "
                "size, created_at) VALUES (1, 1, 1, '{}', 'x', 1, :now)"
            ),
            {"now": now},
        )
    big = 0
    holder_id = delivery_id = 0
    for index in range(small + 1):
        size = recipients if index == small // 2 else 20
        request_id = ids.new_id()
        big = request_id if size == recipients else big
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO distribution_request (id, pass_id, pass_version_id, kind, "
                    "priority, integration_config, created_at) "
                    "VALUES (:id, 1, 1, 'issue', false, '{}', :now)"
                ),
                {"id": request_id, "now": now},
            )
            for chunk in range(0, size, 5000):
                count = min(5000, size - chunk)
                personal = size == recipients
                holders = [
                    {
                        "id": holder_id + i + 1,
                        "r": request_id,
                        "aud": str(holder_id + i + 1),
                        "h": f"h{holder_id + i + 1}",
                        "o": int(rng.random() < 0.1),
                        "now": now,
                        "enc": sealed,
                        "serial": f"B1-{holder_id + i + 1}",
                        "own": PERSONAL_BASE + holder_id + i + 1 if personal else None,
                    }
                    for i in range(count)
                ]
                if personal:
                    _personal_passes(conn, holders, rng)
                conn.execute(
                    text(
                        "INSERT INTO pass_holder (id, request_id, pass_id, audience_id, "
                        "notification, link_hash, link_token_enc, opened_count, created_at, "
                        "serial_number, personal_pass_id) "
                        "VALUES (:id, :r, 1, :aud, 'issue', :h, :enc, :o, :now, :serial, :own)"
                    ),
                    holders,
                )
                deliveries = [
                    {
                        "id": delivery_id + 2 * i + c + 1,
                        "r": request_id,
                        "h": h["id"],
                        "ch": ("EMAIL", "SMS")[c],
                        "st": rng.choice(STATES),
                        "now": now,
                    }
                    for i, h in enumerate(holders)
                    for c in (0, 1)
                ]
                conn.execute(
                    text(
                        "INSERT INTO delivery (id, request_id, holder_id, channel, state, "
                        "priority, attempts, submitted_at, created_at, updated_at) "
                        "VALUES (:id, :r, :h, :ch, :st, false, 1, :now, :now, :now)"
                    ),
                    deliveries,
                )
                holder_id += count
                delivery_id += 2 * count
    _settle(engine)
    engine.dispose()
    return big


def _personal_passes(conn: Any, holders: list[dict[str, Any]], rng: random.Random) -> None:
    """Each holder's built pass; a third installed (one registration, one install event),
    one in ten of those removed again (a removal event, the registration gone)."""
    from sqlalchemy import text

    conn.execute(
        text(
            "INSERT INTO wallet_pass (id, pass_type_identifier, serial_number, team_identifier, "
            "updatable, voided, kind, template_pass_id, created_at, updated_at) "
            "VALUES (:own, 'pass.bench', :serial, 'TEAM', true, false, 'personal', 1, :now, :now)"
        ),
        holders,
    )
    installed = [h for h in holders if rng.random() < 1 / 3]
    removed = {h["id"] for h in installed if rng.random() < 0.1}
    events = [
        {"p": h["own"], "d": f"device{h['id']}", "k": kind, "now": h["now"]}
        for h in installed
        for kind in (("install", "removal") if h["id"] in removed else ("install",))
    ]
    conn.execute(
        text(
            "INSERT INTO passkit_install_event (pass_id, device_library_identifier, kind, at) "
            "VALUES (:p, :d, :k, :now)"
        ),
        events,
    )
    conn.execute(
        text(
            "INSERT INTO passkit_registration (device_library_identifier, pass_id, push_token, "
            "created_at, updated_at) VALUES (:d, :p, 'token', :now, :now)"
        ),
        [e for e in events if e["k"] == "install" and int(e["d"][6:]) not in removed],
    )


def _settle(engine: Any) -> None:
    """A database in its steady state: deltas folded (the sweeper's job), statistics known."""
    from sqlalchemy import text
    from sqlalchemy.orm import Session

    from passpost.distribution import tally

    with Session(engine) as session:
        tally.fold(session)
        session.commit()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE" if engine.dialect.name == "postgresql" else "ANALYZE"))


def _measure(client: httpx.Client, path: str, n: int) -> tuple[float, float, int]:
    client.get(path)  # warm
    latencies = []
    size = 0
    for _ in range(n):
        started = time.perf_counter()
        response = client.get(path)
        latencies.append(time.perf_counter() - started)
        assert response.status_code == 200, (path, response.status_code, response.text[:300])
        size = len(response.content)
    latencies.sort()
    return latencies[n // 2] * 1000, latencies[min(n - 1, int(n * 0.99))] * 1000, size


def _log_in(client: httpx.Client) -> None:
    form = client.get("/console/login").text
    token = re.search(r'name="csrf" value="([^"]+)"', form)
    assert token
    response = client.post(
        "/console/login",
        data={"username": OPERATOR[0], "password": OPERATOR[1], "csrf": token.group(1)},
    )
    assert response.status_code in (200, 303), response.text[:300]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        env = env_without_passpost() | {"PASSPOST_DATA_DIR": str(data), "PASSPOST_WORKERS": "1"}
        pg_url = create_pg_database() if args.database == "postgres" else None
        if pg_url:
            env["PASSPOST_DATABASE_URL"] = pg_url
        url = pg_url or f"sqlite:///{data / 'passpost.db'}"
        os.environ["PASSPOST_DATA_DIR"] = str(data)  # the secret key the server will use
        os.environ.pop("PASSPOST_SECRET_KEY", None)
        try:
            started = time.perf_counter()
            big = _fill(url, args.recipients, 50)
            print(
                f"filled {args.database}: 1 request of {args.recipients:,} recipients "
                f"+ 50 small in {time.perf_counter() - started:.0f} s"
            )
            cli(env, "operator", "create", "--username", OPERATOR[0], "--password", OPERATOR[1])
            _run(env, big, args.requests, Path(tmp))
        finally:
            if pg_url:
                drop_pg_database(pg_url)


def _run(env: dict[str, str], big: int, n: int, tmp: Path) -> None:
    port = free_port()
    api = subprocess.Popen(
        [sys.executable, "-m", "passpost.cli", "api", "--port", str(port)],
        env=env | {"PASSPOST_LOG_LEVEL": "WARNING"},
        stdout=(tmp / "api.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    pages = {"requests": "/console/requests", "request": f"/console/requests/{big}"}
    results: dict[str, tuple[float, float, int]] = {}
    try:
        base = f"http://127.0.0.1:{port}"
        try:
            wait_for_http(base + "/health", timeout=120)
        except TimeoutError:
            print((tmp / "api.log").read_text()[-3000:])
            raise
        with httpx.Client(base_url=base, timeout=60) as client:
            _log_in(client)
            for name, path in pages.items():
                results[name] = _measure(client, path, n)
                (tmp / f"{name}.html").write_bytes(client.get(path).content)
    finally:
        api.terminate()
        api.wait(20)
    bare_port = free_port()
    page_args = [arg for name in pages for arg in (name, str(tmp / f"{name}.html"))]
    bare = subprocess.Popen(
        [sys.executable, "-c", BARE_SERVER, str(bare_port), *page_args],
        env=env,
    )
    try:
        base = f"http://127.0.0.1:{bare_port}"
        wait_for_http(base + "/requests", timeout=30)
        with httpx.Client(base_url=base, timeout=60) as client:
            ceiling = {name: _measure(client, f"/{name}", n) for name in pages}
    finally:
        bare.terminate()
        bare.wait(20)
    print(
        f"{'page':<10} {'bytes':>7} {'passpost p50':>13} {'p99':>8} {'bare p50':>9} "
        f"{'p99':>8} {'p99 ratio':>10}  goal p99 < 100 ms"
    )
    for name in pages:
        p50, p99, size = results[name]
        b50, b99, _ = ceiling[name]
        verdict = "ok" if p99 < 100 else "MISSED"
        print(
            f"{name:<10} {size:>7} {p50:>10.1f} ms {p99:>5.1f} ms {b50:>6.1f} ms "
            f"{b99:>5.1f} ms {p99 / b99:>9.1f}x  {verdict}"
        )


if __name__ == "__main__":
    main()
