"""Body caps: enforced while reading, before authentication and parsing, on every route."""

from __future__ import annotations

import json
import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.support.app import basic
from tests.support.service import Process, base_env

MIB = 1024 * 1024


def _chunks(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        yield b" " * min(size, total - sent)
        sent += size


def test_json_body_above_1_mib_is_413_before_authentication(client: TestClient) -> None:
    body = b'{"email": "' + b"a" * MIB + b'@example.com"}'
    response = client.post(
        "/api/v1/audience", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["errorCode"] == "PAYLOAD_TOO_LARGE"


def test_chunked_body_is_counted_while_streaming(client: TestClient) -> None:
    # No Content-Length: the cap is found by counting, with credentials and a parsed body.
    response = client.post(
        "/api/v1/audience",
        content=_chunks(2 * MIB),
        headers={"Content-Type": "application/json", **basic()},
    )
    assert response.status_code == 413
    assert response.json()["errorCode"] == "PAYLOAD_TOO_LARGE"


def test_certificate_upload_above_its_cap_is_413_without_credentials(client: TestClient) -> None:
    files = {"passCert": ("big.p12", b"\0" * 400_000, "application/x-pkcs12")}
    response = client.post("/api/v1/passcerts", files=files, data={"certName": "x"})
    assert response.status_code == 413


def test_bodies_within_the_cap_still_work(client: TestClient) -> None:
    body = {"email": "ada@example.com", "firstName": "A" * 100}
    response = client.post("/api/v1/audience", json=body, headers=basic())
    assert response.status_code == 200, response.text


def test_the_import_cap_follows_max_upload_bytes(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from passpost.config import get_settings

    monkeypatch.setenv("PASSPOST_MAX_UPLOAD_BYTES", str(3 * MIB))
    get_settings.cache_clear()
    files = {"pkPass": ("p.pkpass", b"\0" * (2 * MIB), "application/vnd.apple.pkpass")}
    response = client.post("/api/v1/message/pass/import", files=files, headers=basic())
    assert response.status_code == 400  # read in full (not a pass), not refused for its size
    files = {"pkPass": ("p.pkpass", b"\0" * (4 * MIB), "application/vnd.apple.pkpass")}
    response = client.post("/api/v1/message/pass/import", files=files)
    assert response.status_code == 413


# -- over real HTTP ------------------------------------------------------------------------


def _peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc status")


def _attack(port: int, total: int, *, chunked: bool) -> tuple[int, int, float]:
    """Send a ``total``-byte anonymous JSON body until the server answers.

    Returns (status, bytes of body sent, seconds until the answer).
    """
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {total}"
    head = (
        f"POST /api/v1/audience HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: application/json\r\n{framing}\r\n\r\n"
    )
    started = time.monotonic()
    sent = 0
    answer = b""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head.encode())
        chunk = b" " * (256 * 1024)
        framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n" if chunked else chunk
        sock.setblocking(False)
        while sent < total:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                answer = sock.recv(65536)
                break
            try:
                sock.sendall(framed)
            except BlockingIOError:
                time.sleep(0.001)
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
        sock.setblocking(True)
        while b"\r\n" not in answer:
            more = sock.recv(65536)
            if not more:
                break
            answer += more
    elapsed = time.monotonic() - started
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0
    return status, sent, elapsed


@pytest.mark.slow
def test_150_mb_anonymous_body_is_413_at_once_and_memory_stays_flat(tmp_path: Path) -> None:
    with Process(base_env(tmp_path / "data"), command="api") as server:
        assert server.proc is not None
        pid = server.proc.pid
        _attack(server.port, 100_000, chunked=False)  # warm up the request path
        before = _peak_rss_kib(pid)
        results = {
            chunked: _attack(server.port, 150 * MIB, chunked=chunked) for chunked in (False, True)
        }
        after = _peak_rss_kib(pid)
    for chunked, (status, sent, elapsed) in results.items():
        assert status == 413, (chunked, status, sent, server.log()[-2000:])
        assert elapsed < 5, (chunked, elapsed)
        assert sent < 20 * MIB, (chunked, sent)
    assert after - before < 20 * 1024, f"peak RSS grew by {(after - before) // 1024} MiB"
    print(json.dumps({"rss_growth_kib": after - before, "results": results}))
