"""P1: import requests/s and latency vs a bare Starlette app reading the same multipart body.

Two servers, each one uvicorn process with the same settings: passpost (`passpost api`,
SQLite by default, `--database postgres` for the local PostgreSQL) and a bare Starlette app
outside passpost that parses the same multipart body with python-multipart and answers.
``wrk`` posts the same body (a real pass from the shared samples plus a one-recipient
passContent) with 32 connections to each, in the same run. Prints req/s, p50/p99 and the
ratio passpost/ceiling (issue 14: >= 0.3, then 0.5; p99 < 100 ms).

Usage: python bench/import.py [--sample avomark-lerendezvous-storecard-2020-good.pkpass]
                              [--duration 10] [--connections 32] [--database sqlite|postgres]
                              [--profile FILE [--gil]]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._common import cpu_seconds, env_without_passpost
from tests.conftest import SAMPLES, create_pg_database, drop_pg_database
from tests.support.net import free_port, wait_for_http
from tests.support.service import OPERATOR, cli, email_content

BARE_SERVER = """
import sys, uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

async def health(request):
    return JSONResponse({"status": "ok"})

async def read_upload(request):
    async with request.form(max_part_size=16 * 1024 * 1024) as form:
        data = await form["pkPass"].read()
        json_text = form["passContent"]
    return JSONResponse({"requestId": str(len(data) + len(json_text)), "description": "Read. "})

app = Starlette(routes=[Route("/health", health), Route("/upload", read_upload, methods=["POST"])])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
"""

WRK_SCRIPT = """
local f = io.open(os.getenv("BENCH_BODY"), "rb")
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "multipart/form-data; boundary=" .. os.getenv("BENCH_BOUNDARY")
wrk.headers["Authorization"] = os.getenv("BENCH_AUTH")
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d %.1f %.1f %.1f\\n", summary.requests,
    summary.errors.status + summary.errors.connect + summary.errors.read
      + summary.errors.write + summary.errors.timeout,
    summary.duration, latency:percentile(50), latency:percentile(99), latency.max))
end
"""


@dataclass
class WrkResult:
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def line(self, name: str) -> str:
        return (
            f"{name:<36} {self.rate:8.1f} req/s  p50 {self.p50_ms:7.1f} ms  "
            f"p99 {self.p99_ms:7.1f} ms  non-2xx/errors {self.errors}"
        )


def multipart_body(pkpass: bytes, content: dict) -> tuple[bytes, str]:
    """The import's multipart body (``pkPass`` file + ``passContent`` field) and its boundary."""
    boundary = "bench" + secrets.token_hex(12)
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="pkPass"; '
        f'filename="pass.pkpass"\r\nContent-Type: application/vnd.apple.pkpass\r\n\r\n'
    ).encode()
    field = (
        f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="passContent"\r\n\r\n'
        f"{json.dumps(content)}\r\n--{boundary}--\r\n"
    ).encode()
    return head + pkpass + field, boundary


def wrk(
    url: str, *, script: Path, env: dict[str, str], duration: int, connections: int
) -> WrkResult:
    """Run wrk against ``url`` and parse the RESULT line its ``done`` hook prints."""
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{duration}s",
            "--timeout",
            "30s",
            "-s",
            str(script),
            url,
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    match = re.search(r"RESULT (\d+) (\d+) (\d+) ([\d.]+) ([\d.]+)", out)
    if match is None:
        raise RuntimeError(f"wrk printed no result:\n{out}")
    requests, errors, micros = int(match[1]), int(match[2]), int(match[3])
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors += int(non_2xx[1]) if non_2xx else 0
    return WrkResult(requests, errors, micros / 1e6, float(match[4]) / 1000, float(match[5]) / 1000)


def start(cmd: list[str], env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(cmd, env=env)
    wait_for_http(f"http://127.0.0.1:{port}/health", timeout=60)
    return process


def _profile(
    path: str | None, pid: int, seconds: int, *, gil: bool
) -> subprocess.Popen[bytes] | None:
    """py-spy sampling ``pid`` for ``seconds``, its collapsed stacks written to ``path``.

    With ``gil`` only the thread holding the GIL is sampled: where the process's one
    Python core goes (every thread's waits, for the GIL too, otherwise).
    """
    if path is None:
        return None
    record = ["py-spy", "record", "--pid", str(pid), "--duration", str(seconds)]
    record += ["--gil"] if gil else []
    return subprocess.Popen([*record, "--nonblocking", "--format", "raw", "--output", path])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sample", default="avomark-lerendezvous-storecard-2020-good.pkpass")
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument(
        "--profile",
        metavar="FILE",
        help="sample passpost's process with py-spy (on PATH) during the measured run; "
        "FILE gets the collapsed stacks (flamegraph.pl or speedscope read them)",
    )
    parser.add_argument(
        "--gil", action="store_true", help="with --profile: sample only the GIL's holder"
    )
    args = parser.parse_args()
    pkpass = (SAMPLES / "pkpass" / args.sample).read_bytes()
    body, boundary = multipart_body(pkpass, email_content([{"email": "ada@example.com"}]))
    processes: list[subprocess.Popen[bytes]] = []
    pg_url = create_pg_database() if args.database == "postgres" else None
    with tempfile.TemporaryDirectory() as tmp:
        env = env_without_passpost() | {"PASSPOST_DATA_DIR": str(Path(tmp) / "data")}
        if pg_url:
            env["PASSPOST_DATABASE_URL"] = pg_url
        cli(env, "migrate")
        cli(env, "operator", "create", "--username", OPERATOR[0], "--password", OPERATOR[1])
        (Path(tmp) / "body").write_bytes(body)
        script = Path(tmp) / "post.lua"
        script.write_text(WRK_SCRIPT)
        auth = httpx.BasicAuth(*OPERATOR)._auth_header  # same header as the tests' clients
        wrk_env = os.environ | {
            "BENCH_BODY": str(Path(tmp) / "body"),
            "BENCH_BOUNDARY": boundary,
            "BENCH_AUTH": auth,
        }
        try:
            bare_port, app_port = free_port(), free_port()
            processes.append(
                start([sys.executable, "-c", BARE_SERVER, str(bare_port)], env, bare_port)
            )
            passpost_cmd = [sys.executable, "-m", "passpost.cli", "api", "--port", str(app_port)]
            processes.append(start(passpost_cmd, env, app_port))
            check = httpx.post(
                f"http://127.0.0.1:{app_port}/api/v1/message/pass/import",
                content=body,
                headers={
                    "Content-Type": f"multipart/form-data; boundary={boundary}",
                    "Authorization": auth,
                },
                timeout=30,
            )
            if check.status_code != 200:
                raise SystemExit(f"the import refused the sample: {check.status_code} {check.text}")
            run = {"script": script, "env": wrk_env, "connections": args.connections}
            wrk(f"http://127.0.0.1:{bare_port}/upload", duration=2, **run)  # warm-up
            wrk(f"http://127.0.0.1:{app_port}/api/v1/message/pass/import", duration=2, **run)
            ceiling = wrk(f"http://127.0.0.1:{bare_port}/upload", duration=args.duration, **run)
            profiler = _profile(args.profile, processes[-1].pid, args.duration, gil=args.gil)
            cpu_before = cpu_seconds(processes[-1].pid)
            imports = wrk(
                f"http://127.0.0.1:{app_port}/api/v1/message/pass/import",
                duration=args.duration,
                **run,
            )
            cpu = cpu_seconds(processes[-1].pid) - cpu_before
            if profiler is not None:
                profiler.wait(60)
        finally:
            for process in processes:
                process.terminate()
                process.wait(10)
            if pg_url:
                drop_pg_database(pg_url)
    print(
        f"{args.sample}: {len(pkpass)} bytes, 1 recipient, {args.database}, "
        f"{args.connections} connections, {args.duration} s each, 1 process each"
    )
    print(ceiling.line("ceiling (bare Starlette reads body)"))
    print(imports.line("passpost import"))
    print(f"ratio import/ceiling: {imports.rate / ceiling.rate:.2f}   (goal >= 0.3, then 0.5)")
    print(f"import p99: {imports.p99_ms:.0f} ms   (goal < 100 ms)")
    # Steadier than the rates on a shared machine: what one import costs passpost's process.
    print(f"passpost CPU per import: {1000 * cpu / max(imports.requests, 1):.2f} ms")


if __name__ == "__main__":
    main()
