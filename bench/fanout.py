"""P2: fan-out of one request to N recipients (default 100,000).

E-mail: passpost (``passpost api`` + ``passpost worker`` processes, SQLite data and queue)
sending to postfix's ``smtp-sink`` vs a raw aiosmtplib client sending the same messages
over the same number of connections to the same sink. Prints msgs/s of both, the ratio,
the worker's peak RSS and the time from the import's 200 to the first send.

``--sms``: the same request by SMS to the test SMSC (tests/peers/smpp_server) vs the raw
SMPP client of bench/fanout_sms.py, and with both channels at once.

Usage: python bench/fanout.py [--count 100000] [--sms] [--email-only] [--profile DIR]

``--profile DIR`` runs each worker under ``py-spy record`` (raw collapsed stacks in DIR).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import aiosmtplib
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._common import cpu_seconds, env_without_passpost, peak_rss_mb
from tests.support.net import free_port
from tests.support.passes import TestPki, make_pki, signed_pass
from tests.support.service import OPERATOR, Process, cli, email_content, import_pass

CONNECTIONS = 8  # passpost's default SMTP concurrency (PASSPOST_SMTP_CONCURRENCY)


def start_sink() -> tuple[subprocess.Popen[bytes], int]:
    """postfix's smtp-sink on a free loopback port (a fast SMTP server that discards)."""
    sink = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
    port = free_port()
    proc = subprocess.Popen([sink, "-u", "nobody", f"127.0.0.1:{port}", "256"])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc, port
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("smtp-sink did not start (apt-get install postfix)")


@contextmanager
def sink_service(max_upload_mb: int) -> Iterator[tuple[dict[str, str], TestPki, int, Path]]:
    """A migrated passpost data directory with the benchmark operator, e-mailing to a fresh
    smtp-sink: ``(env, pki, sink port, temporary directory)``; the sink stops on exit."""
    with tempfile.TemporaryDirectory() as tmp:
        pki = make_pki()
        anchors = pki.write_root(Path(tmp) / "anchors.pem")
        sink, port = start_sink()
        env = env_without_passpost() | {
            "PASSPOST_DATA_DIR": str(Path(tmp) / "data"),
            "PASSPOST_TRUST_ANCHORS": str(anchors),
            "PASSPOST_SMTP_URL": f"smtp://127.0.0.1:{port}",
            "PASSPOST_MAX_UPLOAD_BYTES": str(max_upload_mb * 1024 * 1024),
        }
        try:
            cli(env, "migrate")
            cli(env, "operator", "create", "--username", OPERATOR[0], "--password", OPERATOR[1])
            yield env, pki, port, Path(tmp)
        finally:
            sink.terminate()
            sink.wait(10)


_TEMPLATE = (
    "From: Test User <tickets@example.com>\r\nTo: r{n}@example.com\r\nSubject: Pass Issued\r\n"
    "Message-ID: <raw-{n}@passpost>\r\nMIME-Version: 1.0\r\n"
    'Content-Type: multipart/alternative; boundary="b"\r\n\r\n'
    "--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello, your pass: {link}\r\n"
    "--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
    "<p>Hello, <a href='{link}'>click here</a></p>\r\n--b--\r\n"
)


def _message(n: int) -> bytes:
    """The same shape of message passpost sends, pre-rendered (the raw client composes nothing)."""
    link = f"http://127.0.0.1:8080/p/{n:032x}"
    return _TEMPLATE.format(n=n, link=link).encode()


async def raw_email(port: int, count: int) -> float:
    """The ceiling: ``CONNECTIONS`` reused connections sending ``count`` ready messages."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(count):
        queue.put_nowait(n)

    async def connection() -> None:
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
        await smtp.connect()
        while not queue.empty():
            n = queue.get_nowait()
            await smtp.sendmail("tickets@example.com", [f"r{n}@example.com"], _message(n))
        await smtp.quit()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(CONNECTIONS)))
    return count / (time.perf_counter() - started)


def seed_recipients(env: dict[str, str], count: int, *, mobile: bool) -> list[int]:
    """Insert ``count`` recipients directly (setup, not measured); return their ids."""
    code = f"""
import sys
from sqlalchemy import insert, select
from passpost.config import get_settings
from passpost.db import session_scope
from passpost.audience.models import Recipient
url = get_settings().resolved_database_url
rows = [{{"email": f"r{{i}}@example.com", "mobile_number": f"+4915{{i:09d}}" if {mobile} else None,
          "first_name": f"R{{i}}", "sms_subscription": True, "email_subscription": True,
          "push_subscription": True}} for i in range({count})]
with session_scope(url) as s:
    for start in range(0, len(rows), 5000):
        s.execute(insert(Recipient), rows[start:start + 5000])
with session_scope(url) as s:
    print(",".join(str(i) for i in s.scalars(select(Recipient.id).order_by(Recipient.id))))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return [int(i) for i in out.stdout.strip().split(",")]


def _content(ids: list[int], channels: tuple[str, ...]) -> dict[str, Any]:
    content = email_content([{"id": str(i)} for i in ids])
    details = content["passIntegrationConfig"]["passIssueNotificationDetails"]
    for detail in details:
        detail["enabled"] = detail["channel"] in channels
    return content


class ProfiledWorker(Process):
    """``passpost worker`` under ``py-spy record`` (its RSS is the worker's, not py-spy's)."""

    def __init__(self, env: dict[str, str], output: Path) -> None:
        super().__init__(env, "worker")
        self.output = output

    def start(self) -> ProfiledWorker:
        spy = shutil.which("py-spy")
        if spy is None:
            raise RuntimeError("--profile needs py-spy (pip install py-spy)")
        args = [
            spy,
            "record",
            "--gil",
            "--nonblocking",
            "-r",
            "200",
            "-f",
            "raw",
            "-o",
            str(self.output),
        ]
        args += ["--", sys.executable, "-m", "passpost.cli", "worker"]
        log = self.log_path.open("ab")
        self.spy = subprocess.Popen(args, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        for _ in range(100):  # the worker is py-spy's child
            children = Path(f"/proc/{self.spy.pid}/task/{self.spy.pid}/children").read_text()
            if children.split():
                break
            time.sleep(0.05)
        self.worker_pid = int(children.split()[0])
        return self

    def stop(self) -> None:
        import signal

        os.kill(self.worker_pid, signal.SIGINT)
        self.spy.wait(30)


def run_passpost(
    env: dict[str, str],
    pki: Any,
    ids: list[int],
    channels: tuple[str, ...],
    profile: Path | None = None,
) -> dict[str, float]:
    """Import one request for every recipient; measure until the ledger shows none pending."""
    with (
        Process(env, "api") as api,
        httpx.Client(base_url=api.url, auth=OPERATOR, timeout=600) as http,
    ):
        if profile is not None:
            worker: Process = ProfiledWorker(env, profile / f"worker-{'-'.join(channels)}.txt")
            worker.start()
        else:
            worker = Process(env, "worker").start()
        time.sleep(2)  # the worker's start-up (migrations, imports) is not fan-out time
        pid = worker.worker_pid if isinstance(worker, ProfiledWorker) else worker.proc.pid  # type: ignore[union-attr]
        cpu_before = cpu_seconds(pid)
        try:
            started = time.perf_counter()
            response = import_pass(
                http, signed_pass(pki, serial=f"FAN-{'-'.join(channels)}"), _content(ids, channels)
            )
            accepted = time.perf_counter()
            answered_at = time.time()  # the same clock as the server's timestamps
            response.raise_for_status()
            request_id = response.json()["requestId"]
            while True:
                summary = http.get(f"/api/v1/requests/{request_id}").json()
                listed = summary.get("expansion")  # a large list is expanded by the worker
                if summary["pending"] == 0 and (not listed or listed["done"]):
                    break
                time.sleep(0.5)
            finished = time.perf_counter()
            cpu = cpu_seconds(pid) - cpu_before
            rss = peak_rss_mb(pid)
        finally:
            worker.stop()
    created = datetime.fromisoformat(summary["createdAt"].replace("Z", "+00:00"))
    first = datetime.fromisoformat(summary["firstSubmittedAt"].replace("Z", "+00:00"))
    handed_over = ("submitted", "delivered", "opened")  # a receipt may already have come back
    sent = sum(summary["channels"].get(c, {}).get(s, 0) for c in channels for s in handed_over)
    return {
        "import_seconds": accepted - started,
        "seconds": finished - accepted,
        "sent": sent,
        "rate": sent / (finished - accepted),
        "first_send_seconds": first.timestamp() - answered_at,
        "stored_to_first_seconds": (first - created).total_seconds(),
        "peak_rss_mb": rss,
        "cpu_us": cpu / max(sent, 1) * 1e6,
        "states": summary["channels"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--sms", action="store_true", help="also SMS and both channels at once")
    parser.add_argument("--email-only", action="store_true")
    parser.add_argument("--sms-only", action="store_true", help="SMS and both, no e-mail alone")
    parser.add_argument("--profile", type=Path, help="py-spy each worker into this directory")
    args = parser.parse_args()
    with sink_service(max_upload_mb=64) as (env, pki, port, tmp):
        ids = seed_recipients(env, args.count, mobile=args.sms or args.sms_only)
        if args.profile:
            args.profile.mkdir(parents=True, exist_ok=True)
        if not args.sms_only:
            _email(env, pki, ids, port, args.count, args.profile)
        if (args.sms or args.sms_only) and not args.email_only:
            _sms(env, pki, ids, tmp, args.count, args.profile)


def _email(
    env: dict[str, str], pki: Any, ids: list[int], port: int, count: int, profile: Path | None
) -> None:
    raw = asyncio.run(raw_email(port, count))
    result = run_passpost(env, pki, ids, ("EMAIL",), profile)
    print(f"e-mail fan-out of {count} recipients to smtp-sink, {CONNECTIONS} connections")
    print(f"  raw aiosmtplib client   {raw:9.1f} msgs/s")
    print(
        f"  passpost                {result['rate']:9.1f} msgs/s  ({result['sent']} sent in {result['seconds']:.1f} s)"
    )
    print(f"  ratio passpost/raw      {result['rate'] / raw:9.2f}")
    print(f"  import call             {result['import_seconds']:9.2f} s")
    print(
        f"  time to first send      {result['first_send_seconds']:9.2f} s after the import answered"
        f" ({result['stored_to_first_seconds']:.2f} s after the request was created)"
    )
    print(f"  worker peak RSS         {result['peak_rss_mb']:9.1f} MiB")
    print(f"  worker CPU per message  {result['cpu_us']:9.0f} µs")


def _sms(
    env: dict[str, str], pki: Any, ids: list[int], tmp: Path, count: int, profile: Path | None
) -> None:
    from bench.fanout_sms import run_sms_bench
    from tests.peers.smpp_server.smsc import Smsc

    raw = run_sms_bench(count=min(count, 20_000), window=10, receipts=True, rounds=2)
    smsc = Smsc(tmp, receipts=True, record=False, journal=False).start()
    try:
        env = env | {"PASSPOST_SMS_URL": smsc.url(window="10")}
        sms = run_passpost(env, pki, ids, ("SMS",), profile)
        both = run_passpost(env, pki, ids, ("EMAIL", "SMS"), profile)
    finally:
        smsc.stop()
    print(f"SMS fan-out of {count} recipients to the test SMSC (window 10)")
    print(f"  raw SMPP client         {raw.raw_rate:9.1f} msgs/s")
    print(
        f"  passpost SMS            {sms['rate']:9.1f} msgs/s  (peak RSS {sms['peak_rss_mb']:.1f} MiB)"
    )
    print(f"  ratio passpost/raw      {sms['rate'] / raw.raw_rate:9.2f}")
    print(
        f"  worker CPU per SMS      {sms['cpu_us']:9.0f} µs  (raw client {raw.raw_cpu_us:.0f} µs)"
    )
    print(
        f"  both channels           {both['rate']:9.1f} msgs/s  ({both['sent']} sends, peak RSS {both['peak_rss_mb']:.1f} MiB)"
    )
    print(json.dumps({"sms_states": sms["states"], "both_states": both["states"]}))


if __name__ == "__main__":
    main()
