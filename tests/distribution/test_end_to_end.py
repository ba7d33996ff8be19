"""The import call end to end over real HTTP: a real ``passpost serve`` process, a real SMTP
server, the e-mail's link downloading the exact pass bytes."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import create_pg_database, drop_pg_database, redis_database, require_postgres
from tests.support.net import wait_until
from tests.support.passes import make_pki, signed_pass
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

# passpost serve/worker (and peers) as real processes.
pytestmark = pytest.mark.slow

LINK = re.compile(r"http://127\.0\.0\.1:\d+/p/[A-Za-z0-9_\-]+")


@pytest.fixture(scope="module")
def pki():
    return make_pki()


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgres", "redis"])
def backend(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """Where data and queue live: SQLite files; PostgreSQL for both; PostgreSQL + Redis."""
    if request.param == "sqlite":
        yield {}
        return
    require_postgres()
    url = create_pg_database()
    env = {"PASSPOST_DATABASE_URL": url, "PASSPOST_QUEUE_URL": url.replace("+psycopg", "")}
    try:
        if request.param == "redis":
            with redis_database() as env["PASSPOST_QUEUE_URL"]:
                yield env
        else:
            yield env
    finally:
        drop_pg_database(url)


def _env(tmp_path: Path, pki, smtp: SmtpServer, **extra: str) -> dict[str, str]:
    anchors = pki.write_root(tmp_path / "anchors.pem")
    env = base_env(
        tmp_path / "data", PASSPOST_SMTP_URL=smtp.url, PASSPOST_TRUST_ANCHORS=str(anchors), **extra
    )
    cli(env, "operator", "create", "--username", OPERATOR[0], "--password", OPERATOR[1])
    return env


def _add_recipient(http: httpx.Client, **fields: object) -> str:
    response = http.post("/api/v1/audience", json=fields)
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def _states(http: httpx.Client, request_id: str) -> dict[str, dict[str, int]]:
    response = http.get(f"/api/v1/requests/{request_id}")
    assert response.status_code == 200, response.text
    return response.json()["channels"]


def _wait_done(http: httpx.Client, request_id: str, timeout: float = 60) -> dict:
    def done() -> bool:
        summary = http.get(f"/api/v1/requests/{request_id}").json()
        listed = summary.get("expansion")  # a list over 1,000 entries is expanded by workers
        return summary["pending"] == 0 and (not listed or listed["done"])

    wait_until(done, timeout=timeout)
    return http.get(f"/api/v1/requests/{request_id}").json()


def test_import_mail_link_download_and_status(
    tmp_path: Path, pki, smtp: SmtpServer, backend: dict[str, str]
) -> None:
    env = _env(tmp_path, pki, smtp, **backend)
    pkpass = signed_pass(pki, serial="E2E-1")
    with Process(env) as server, client(server.url) as http:
        rid = _add_recipient(http, firstName="Ada", lastName="Lovelace", email="ada@example.com")
        response = import_pass(http, pkpass, email_content([{"id": rid}]))
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"requestId", "description"}
        assert body["description"] == "Request Queued. "
        # No signing certificate held and no webServiceURL: passpost cannot update it.
        assert response.headers["x-passpost-pass-updatable"] == "false"
        request_id = body["requestId"]
        assert request_id.isdigit() and int(request_id) > 0

        wait_until(lambda: smtp.handler.to("ada@example.com"), timeout=30)
        message = smtp.handler.to("ada@example.com")[0]
        assert message["Subject"] == "Pass Issued"
        assert "Test User" in message["From"] and "tickets@example.com" in message["From"]
        assert message["Message-ID"]
        assert message.is_multipart()
        types = {part.get_content_type() for part in message.walk()}
        assert {"text/plain", "text/html"} <= types
        text = body_text(message)
        assert "Hello Ada" in text
        links = set(LINK.findall(text))
        assert len(links) == 1
        link = links.pop()

        meta = http.get(f"/api/v1/pass/meta/{request_id}").json()
        assert meta["total"] == 1
        entry = meta["passRequests"][0]
        assert entry["audienceId"] == rid and entry["serialNumber"] == "E2E-1"
        assert entry["barcodeMsg"] == "code-E2E-1"
        wait_until(
            lambda: (
                http.get(f"/api/v1/pass/{entry['id']}/status").json()["passStatusData"][
                    "channelStatusList"
                ][0]["channelStatus"]
                == "submitted"
            )
        )

        download = httpx.get(link, headers={"User-Agent": "curl/8"})
        assert download.status_code == 200
        assert download.content == pkpass
        assert download.headers["content-type"] == "application/vnd.apple.pkpass"
        assert "E2E-1.pkpass" in download.headers["content-disposition"]
        assert download.headers["etag"] and download.headers["last-modified"].endswith("GMT")

        status = http.get(f"/api/v1/pass/{entry['id']}/status").json()["passStatusData"]
        assert (
            status["seriealNumber"] == "E2E-1"
            and status["passtypeIdentifier"] == "pass.dev.passpost.test"
        )
        assert status["channelStatusList"] == [
            {
                "channelType": "EMAIL",
                "passStatus": "Submitted",
                "channelStatus": "opened",
                "reason": None,
                "attempts": 1,
            }
        ]
        content = http.get(f"/api/v1/pass/{entry['id']}/content").json()["passContent"]
        assert content["basicDetails"]["passSerialNumber"] == "E2E-1"
        assert content["passJson"]["serialNumber"] == "E2E-1"
        assert httpx.get(link.rsplit("/", 1)[0] + "/not-a-token").status_code == 404
        page = httpx.get(
            link, headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64)", "Accept": "text/html"}
        )
        assert page.status_code == 200 and "Add to Apple Wallet" in page.text


def test_delivery_outcomes(tmp_path: Path, pki, smtp: SmtpServer, backend: dict[str, str]) -> None:
    """Unknown recipient → rejected; not opted in → not attempted; 451 → retried, delivered;
    550 → rejected with the server's reply; cancel stops pending work; windows wait and expire."""
    env = _env(tmp_path, pki, smtp, **backend)
    with Process(env) as server, client(server.url) as http:
        ok = _add_recipient(http, email="tempfail2-bob@example.com", firstName="Bob")
        bad = _add_recipient(http, email="reject-carol@example.com")
        optout = _add_recipient(http, email="dave@example.com", emailSubscription=False)
        response = import_pass(
            http,
            signed_pass(pki, serial="OUT-1"),
            email_content([{"id": ok}, {"id": bad}, {"id": optout}, {"id": "999999"}]),
        )
        assert response.status_code == 200, response.text
        request_id = response.json()["requestId"]
        summary = _wait_done(http, request_id)
        assert summary["channels"]["EMAIL"] == {"submitted": 1, "rejected": 2, "not attempted": 1}
        assert smtp.handler.rcpt_attempts["tempfail2-bob@example.com"] == 3
        assert len(smtp.handler.to("tempfail2-bob@example.com")) == 1
        meta = http.get(f"/api/v1/pass/meta/{request_id}", params={"pageSize": 10}).json()
        reasons = {}
        for entry in meta["passRequests"]:
            channel = http.get(f"/api/v1/pass/{entry['id']}/status").json()["passStatusData"][
                "channelStatusList"
            ][0]
            reasons[entry["audienceId"]] = (channel["channelStatus"], channel["reason"])
        assert reasons[bad][0] == "rejected" and "550" in reasons[bad][1]
        assert reasons["999999"] == ("rejected", "unknown recipient")
        assert reasons[optout][0] == "not attempted" and "opted in" in reasons[optout][1]

        # A future start waits; cancel turns what is pending into "cancelled".
        later = int(time.time()) + 3600
        response = import_pass(
            http,
            signed_pass(pki, serial="OUT-2"),
            email_content([{"id": ok}], startTimeStamp=later * 1000),
        )
        waiting = response.json()["requestId"]
        time.sleep(2)
        assert _states(http, waiting) == {"EMAIL": {"queued": 1}}
        cancelled = http.post(f"/api/v1/pass/cancel/{waiting}")
        assert cancelled.json() == {"id": waiting, "message": "Request cancelled Successfully"}
        assert _states(http, waiting) == {"EMAIL": {"cancelled": 1}}

        # An end already reached expires the work (seconds are accepted as well as ms).
        past = int(time.time()) - 10
        response = import_pass(
            http,
            signed_pass(pki, serial="OUT-3"),
            email_content([{"id": ok}], startTimeStamp=past - 60, endTimeStamp=past),
        )
        expired = response.json()["requestId"]
        assert _wait_done(http, expired)["channels"] == {"EMAIL": {"undelivered": 1}}


def test_priority_overtakes(tmp_path: Path, pki, smtp: SmtpServer) -> None:
    env = _env(tmp_path, pki, smtp, PASSPOST_WORKERS="1", PASSPOST_BATCH_SIZE="20")
    with Process(env, "api") as api, client(api.url) as http:
        bulk = [{"email": f"bulk{i}@example.com"} for i in range(200)]
        assert (
            import_pass(http, signed_pass(pki, serial="BULK"), email_content(bulk)).status_code
            == 200
        )
        urgent = email_content([{"email": "urgent@example.com"}], priority=True)
        assert import_pass(http, signed_pass(pki, serial="URGENT"), urgent).status_code == 200
        with Process(env, "worker"):
            wait_until(lambda: len(smtp.handler.messages) >= 201, timeout=120)
        order = [m["To"] for m in smtp.handler.messages]
        assert order.index("urgent@example.com") < 20, order[:25]


@pytest.mark.slow
def test_kill_worker_mid_request_loses_nothing(
    tmp_path: Path, pki, smtp: SmtpServer, backend: dict[str, str]
) -> None:
    env = _env(tmp_path, pki, smtp, PASSPOST_LEASE_SECONDS="3", PASSPOST_BATCH_SIZE="50", **backend)
    recipients = [{"email": f"r{i}@example.com"} for i in range(2000)]
    with Process(env, "api") as api, client(api.url) as http:
        response = import_pass(http, signed_pass(pki, serial="CRASH"), email_content(recipients))
        assert response.status_code == 200, response.text
        request_id = response.json()["requestId"]
        worker = Process(env, "worker").start()
        wait_until(lambda: len(smtp.handler.messages) >= 700, timeout=120)
        worker.kill()
        sent_at_kill = len(smtp.handler.messages)
        in_flight = _in_flight(http, request_id, sent_at_kill)
        assert sent_at_kill < 2000
        with Process(env, "worker"):
            summary = _wait_done(http, request_id, timeout=180)
        assert summary["channels"] == {"EMAIL": {"submitted": 2000}}
        ids = [m["Message-ID"] for m in smtp.handler.messages]
        recipients_seen = {m["To"] for m in smtp.handler.messages}
        assert len(recipients_seen) == 2000  # none lost
        duplicates = len(ids) - len(set(ids))
        assert duplicates <= in_flight, (duplicates, in_flight)


def _in_flight(http: httpx.Client, request_id: str, sent: int) -> int:
    """Sends in flight at the kill: rows a worker had claimed and not yet recorded."""
    summary = http.get(f"/api/v1/requests/{request_id}").json()
    submitted = summary["channels"]["EMAIL"].get("submitted", 0)
    in_flight = int(summary["inFlight"])
    # Whatever the SMTP server got beyond what the ledger recorded was among those rows.
    assert 0 <= sent - submitted <= in_flight, (sent, submitted, in_flight)
    return in_flight
