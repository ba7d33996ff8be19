"""``passpost backup`` during a running send: a second ``passpost serve`` runs on the copy
as is, with every recipient and every secret readable, and finishes the send."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.net import wait_until
from tests.support.passes import make_p12, make_pki, signed_pass
from tests.support.service import (
    OPERATOR,
    Process,
    base_env,
    cli,
    client,
    email_content,
    import_pass,
)
from tests.support.smtp import SmtpServer, body_text

COUNT = 1500


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


def _store_secrets(http, pki) -> None:  # type: ignore[no-untyped-def]
    sms = {
        "provider": "TWILIO",
        "properties": [
            {"key": "Account SID", "value": "AC0123456789"},
            {"key": "Auth Token", "value": "twilio-auth-token"},
            {"key": "From", "value": "+15550001"},
        ],
    }
    assert http.post("/api/v1/smsconfig", json=sms).status_code == 200
    p12 = make_p12(pki, "phrase")
    response = http.post(
        "/api/v1/passcerts",
        files={"passCert": ("c.p12", p12, "application/x-pkcs12")},
        data={"passCertPassPhrase": "phrase", "certName": "test"},
    )
    assert response.status_code == 200, response.text


@pytest.mark.slow
def test_backup_during_a_send_runs_as_is(tmp_path: Path, smtp: SmtpServer) -> None:
    pki = make_pki()
    env = base_env(
        tmp_path / "data",
        PASSPOST_SMTP_URL=smtp.url,
        PASSPOST_TRUST_ANCHORS=str(pki.write_root(tmp_path / "anchors.pem")),
        PASSPOST_WORKERS="1",
        PASSPOST_BATCH_SIZE="20",
        PASSPOST_SMTP_CONCURRENCY="1",
    )
    cli(env, "operator", "create", "--username", OPERATOR[0], "--password", OPERATOR[1])
    recipients = [{"email": f"b{i}@example.com", "firstName": f"N{i}"} for i in range(COUNT)]
    dest = tmp_path / "backup"
    with Process(env) as first, client(first.url) as http:
        _store_secrets(http, pki)
        response = import_pass(http, signed_pass(pki, serial="BAK-1"), email_content(recipients))
        assert response.status_code == 200, response.text
        request_id = response.json()["requestId"]
        wait_until(lambda: len(smtp.handler.messages) >= 100, timeout=120)
        out = cli(env, "backup", str(dest))
        sent_at_backup = len(smtp.handler.messages)
    assert "passpost.db" in out and sorted(p.name for p in dest.iterdir()) == [
        "passpost.db",
        "queue.db",
        "secret.key",
    ]
    assert sent_at_backup < COUNT, "the send finished before the backup: nothing was running"
    with sqlite3.connect(dest / "passpost.db") as copy:
        (queued,) = copy.execute("SELECT count(*) FROM delivery WHERE state = 'queued'").fetchone()
        (recipients_copied,) = copy.execute("SELECT count(*) FROM recipient").fetchone()
    assert queued > 0 and recipients_copied == COUNT

    restored_env = base_env(dest, PASSPOST_SMTP_URL=smtp.url, PASSPOST_WORKERS="4")
    check = subprocess.run(
        [sys.executable, "-m", "passpost.cli", "rotate-key", "--check"],
        env=restored_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    rows = {line.split("│")[1].strip(): line for line in check.stdout.splitlines() if "│" in line}
    assert rows["pass_holder.link_token_enc"].split("│")[2].strip() == str(COUNT)
    assert rows["channel_config.secrets"].split("│")[2].strip() == "1"
    assert rows["pass_certificate.private_key_enc"].split("│")[2].strip() == "1"
    assert all(row.split("│")[4].strip() == "0" for row in rows.values())

    with Process(restored_env) as second, client(second.url) as http:
        summary = http.get(f"/api/v1/requests/{request_id}").json()
        assert summary["progress"] < 100 or summary["pending"] > 0
        wait_until(
            lambda: http.get(f"/api/v1/requests/{request_id}").json()["pending"] == 0, timeout=180
        )
        channels = http.get(f"/api/v1/requests/{request_id}").json()["channels"]
        assert channels == {"EMAIL": {"submitted": COUNT}}
        smsconfig = http.get("/api/v1/smsconfig")
        assert smsconfig.status_code == 200 and "AC0123456789" in smsconfig.text
        assert http.get("/api/v1/passcerts").json()
        # Links built by the restored server (sealed tokens opened with the copied key) work.
        bodies = [body_text(m.message) for m in smtp.handler.messages]
        links = [m.group(0) for b in bodies if (m := re.search(rf"{second.url}/p/[\w-]+", b))]
        assert len(links) >= COUNT - sent_at_backup
        download = httpx.get(links[-1], headers={"User-Agent": "curl/8"})
        assert download.status_code == 200
        assert download.headers["content-type"] == "application/vnd.apple.pkpass"
    reached = {m["To"] for m in smtp.handler.messages}
    assert reached == {r["email"] for r in recipients}  # every recipient, none lost
