"""P1: import requests/s vs a same-server endpoint that only reads the upload.

Both endpoints run in the same uvicorn process (the app plus one bench-only route that
parses the same multipart body and returns); 32 concurrent clients; p50/p99 for each.
Prints the ratio import/ceiling. Usage: python bench/import.py [--requests 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._common import env_without_passpost, run_load
from tests.support.net import free_port, wait_for_http
from tests.support.passes import make_pki, signed_pass
from tests.support.service import OPERATOR, cli, email_content

SERVER = """
import sys, uvicorn
from fastapi import Request
from passpost.config import get_settings
from passpost.db import migrate
from passpost.web.app import create_app
from passpost.web.multipart import read_multipart

settings = get_settings()
migrate(settings.resolved_database_url)
app = create_app()

@app.post("/bench/read-upload")
async def read_upload(request: Request) -> dict[str, int]:
    parts = await read_multipart(request, limit=settings.max_upload_bytes)
    return {"bytes": sum(len(p.data) for p in parts.values())}

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


async def _bench(url: str, pkpass: bytes, content: dict, requests: int, concurrency: int) -> None:
    files = {"pkPass": ("pass.pkpass", pkpass, "application/vnd.apple.pkpass")}
    data = {"passContent": json.dumps(content)}
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, auth=OPERATOR, limits=limits, timeout=60) as http:

        def caller(path: str):
            async def call() -> bool:
                response = await http.post(path, files=files, data=data)
                return response.status_code == 200

            return call

        for path in ("/bench/read-upload", "/api/v1/message/pass/import"):  # warm-up
            await run_load(caller(path), concurrency=4, total=20)
        ceiling = await run_load(
            caller("/bench/read-upload"), concurrency=concurrency, total=requests
        )
        imports = await run_load(
            caller("/api/v1/message/pass/import"), concurrency=concurrency, total=requests
        )
    print(
        f"upload {len(pkpass)} bytes, {len(content['recipients']['recipient'])} recipients, "
        f"{concurrency} concurrent clients, {requests} requests each"
    )
    print(ceiling.line("ceiling (read upload only)"))
    print(imports.line("import"))
    print(f"ratio import/ceiling: {imports.rate / ceiling.rate:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--recipients", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pki = make_pki()
        anchors = pki.write_root(Path(tmp) / "anchors.pem")
        env = env_without_passpost() | {
            "PASSPOST_DATA_DIR": str(Path(tmp) / "data"),
            "PASSPOST_TRUST_ANCHORS": str(anchors),
        }
        cli(env, "migrate")
        cli(env, "operator", "create", "--username", OPERATOR[0], "--password", OPERATOR[1])
        port = free_port()
        server = subprocess.Popen([sys.executable, "-c", SERVER, str(port)], env=env)
        try:
            wait_for_http(f"http://127.0.0.1:{port}/health")
            recipients = [{"email": f"r{i}@example.com"} for i in range(args.recipients)]
            asyncio.run(
                _bench(
                    f"http://127.0.0.1:{port}",
                    signed_pass(pki, serial="BENCH"),
                    email_content(recipients),
                    args.requests,
                    args.concurrency,
                )
            )
        finally:
            server.terminate()
            server.wait(10)


if __name__ == "__main__":
    main()
