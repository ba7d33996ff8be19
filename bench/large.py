"""P8: the import call with 1,000,000 recipients vs the same call with 1,000.

``passpost api`` and ``passpost worker`` processes (SQLite data and queue, e-mail to postfix's
``smtp-sink``). The ceiling is passpost's own import of 1,000 ad-hoc e-mail recipients
(expanded inside the call); then one import of N (default 1,000,000) new ad-hoc addresses,
which stores the list and answers while a worker expands it chunk by chunk. Prints:

- the import call at 1,000 and at N (goal: N answers in < 2 s),
- the time from its answer to the first send (goal < 2 s),
- the latency of a small write (``POST /api/v1/audience``, one recipient) made every 50 ms
  while the list expands, against the same write before (goal: never blocked > 100 ms),
- ``GET /api/v1/requests/{id}`` at 1,000, once 100,000 are expanded, and at N (goal < 50 ms),
- the whole expansion's time.

Usage: python bench/large.py [--count 1000000] [--ids] [--max-seconds S]
``--ids``: known recipients by id; ``--max-seconds``: stop watching the expansion after S
seconds and print its rate and the time the rest would take at that rate.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._common import peak_rss_mb
from bench.fanout import seed_recipients, sink_service
from tests.support.passes import signed_pass
from tests.support.service import OPERATOR, Process, email_content


def _post(http: httpx.Client, pkpass: bytes, content: bytes) -> tuple[float, str]:
    started = time.perf_counter()
    response = http.post(
        "/api/v1/message/pass/import",
        files={
            "pkPass": ("pass.pkpass", pkpass, "application/vnd.apple.pkpass"),
            "passContent": ("content.json", content, "application/json"),
        },
    )
    took = time.perf_counter() - started
    response.raise_for_status()
    return took, response.json()["requestId"]


def _content(entries: list[dict[str, Any]], *, start_ms: int = 0) -> bytes:
    return json.dumps(email_content(entries, startTimeStamp=start_ms)).encode()


def _emails(prefix: str, count: int) -> list[dict[str, Any]]:
    return [{"email": f"{prefix}{i}@example.com"} for i in range(count)]


def _status_ms(
    http: httpx.Client, request_id: str, rounds: int = 20
) -> tuple[float, dict[str, Any]]:
    """The median latency of ``GET /api/v1/requests/{id}`` (ms) and the last answer."""
    times = []
    body: dict[str, Any] = {}
    for _ in range(rounds):
        started = time.perf_counter()
        response = http.get(f"/api/v1/requests/{request_id}")
        times.append((time.perf_counter() - started) * 1000)
        body = response.json()
    return statistics.median(times), body


class Writer(threading.Thread):
    """A small write every 50 ms (one new recipient): its latencies while it runs."""

    def __init__(self, url: str, prefix: str) -> None:
        super().__init__(daemon=True)
        self.http = httpx.Client(base_url=url, auth=OPERATOR, timeout=60)
        self.prefix = prefix
        self.latencies: list[float] = []
        self.at: list[float] = []  # when each write started (time.time())
        self.stopping = threading.Event()

    def run(self) -> None:
        n = 0
        while not self.stopping.is_set():
            started = time.perf_counter()
            self.at.append(time.time())
            response = self.http.post(
                "/api/v1/audience", json={"email": f"{self.prefix}{n}@w.test"}
            )
            self.latencies.append((time.perf_counter() - started) * 1000)
            response.raise_for_status()
            n += 1
            self.stopping.wait(0.05)

    def stop(self) -> list[float]:
        self.stopping.set()
        self.join()
        return self.latencies


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else float("nan")


def run(
    env: dict[str, str],
    pki: Any,
    count: int,
    ids: list[int] | None,
    max_seconds: float,
    hold: bool = False,
) -> None:
    with (
        Process(env, "api") as api,
        httpx.Client(base_url=api.url, auth=OPERATOR, timeout=600) as http,
    ):
        worker = Process(env, "worker").start()
        time.sleep(2)  # the worker's start-up is not part of any figure
        try:
            small = [
                _post(
                    http, signed_pass(pki, serial=f"SMALL-{i}"), _content(_emails(f"s{i}-", 1000))
                )
                for i in range(3)
            ]
            ceiling = statistics.median(t for t, _ in small)
            status_1k, _ = _status_ms(http, small[0][1])
            baseline = Writer(api.url, "before")
            baseline.start()
            time.sleep(5)
            before = baseline.stop()

            entries = [{"id": str(i)} for i in ids] if ids else _emails("big", count)
            # --hold: sent in an hour, so only the expansion writes while it is measured.
            body = _content(entries, start_ms=int(time.time() + 3600) * 1000 if hold else 0)
            del entries
            writer = Writer(api.url, "during")
            writer.start()
            took, request_id = _post(http, signed_pass(pki, serial="LARGE"), body)
            answered = time.time()
            del body
            first_send = None
            status_100k = None
            while True:
                summary = http.get(f"/api/v1/requests/{request_id}").json()
                if first_send is None and summary["firstSubmittedAt"] and not hold:
                    first = datetime.fromisoformat(
                        summary["firstSubmittedAt"].replace("Z", "+00:00")
                    )
                    first_send = first.timestamp() - answered
                expanded = summary["expansion"]["expanded"]
                if status_100k is None and expanded >= min(100_000, count):
                    status_100k, _ = _status_ms(http, request_id)
                if summary["expansion"]["done"] or time.time() - answered > max_seconds:
                    break
                time.sleep(0.5)
            expansion_seconds = time.time() - answered
            expanded = summary["expansion"]["expanded"]
            during = writer.stop()
            status_n, summary = _status_ms(http, request_id)
            rss = peak_rss_mb(worker.proc.pid)  # type: ignore[union-attr]
        finally:
            worker.stop()
    print(f"P8: one import of {count:,} recipients vs 1,000 ({'ids' if ids else 'ad-hoc e-mail'})")
    print(f"  import call, 1,000 recipients      {ceiling:8.2f} s   (median of 3; the ceiling)")
    print(f"  import call, {count:,} recipients {took:8.2f} s   goal < 2 s")
    print(f"  ratio 1,000-call / {count:,}-call {ceiling / took:8.2f}")
    print(f"  first send after the answer        {first_send or float('nan'):8.2f} s   goal < 2 s")
    print(
        f"  small write before: p50 {statistics.median(before):.0f} ms,"
        f" p99 {_pct(before, 99):.0f} ms, max {max(before):.0f} ms;"
        f" during expansion: p50 {statistics.median(during):.0f} ms, p99 {_pct(during, 99):.0f} ms,"
        f" max {max(during):.0f} ms ({len(during)} writes)   goal max < 100 ms"
    )
    print(
        f"  GET /requests/{{id}} median: 1k {status_1k:.1f} ms,"
        f" 100k {f'{status_100k:.1f} ms' if status_100k is not None else 'not reached'},"
        f" {count // 1000}k {status_n:.1f} ms   goal < 50 ms"
    )
    worst = sorted(zip(during, writer.at, strict=True), reverse=True)[:5]
    print(
        "  slowest writes (ms @ s after the answer): "
        + ", ".join(f"{ms:.0f} @ {at - answered:+.1f}" for ms, at in worst)
    )
    if expanded >= count:
        print(f"  expansion of {count:,} entries     {expansion_seconds:8.1f} s")
    else:
        rate = expanded / expansion_seconds
        print(
            f"  expansion: {expanded:,} entries in {expansion_seconds:.0f} s ({rate:,.0f}/s);"
            f" all {count:,} at that rate: {count / rate:,.0f} s (stopped watching)"
        )
    print(f"  recipients {summary['recipients']:,}, deliveries {summary['deliveries']:,}")
    print(f"  worker peak RSS                    {rss:8.1f} MiB")
    load = Path("/proc/loadavg").read_text().split()[:3]
    print(f"  load average {' '.join(load)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--ids", action="store_true", help="recipients seeded, sent by id")
    parser.add_argument("--max-seconds", type=float, default=float("inf"))
    parser.add_argument("--hold", action="store_true", help="start sending in an hour")
    args = parser.parse_args()
    # 1,000,000 ad-hoc addresses are ~37 MB of passContent.
    with sink_service(max_upload_mb=96) as (env, pki, _port, _tmp):
        ids = seed_recipients(env, args.count, mobile=False) if args.ids else None
        run(env, pki, args.count, ids, args.max_seconds, args.hold)


if __name__ == "__main__":
    main()
