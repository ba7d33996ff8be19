"""Logs and metrics of real processes: JSON lines from every logger, the start line with
passwords masked, failed deliveries in one line, and the send metrics scraped over HTTP."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from passpost.config import Settings
from passpost.logs import mask_url, start_fields
from tests.support.net import free_port, wait_for_http, wait_until
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
from tests.support.smtp import SmtpServer


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "smtp://mailer:s3cret@smtp.example.com:587?starttls=1",
            "smtp://mailer:***@smtp.example.com:587?starttls=1",
        ),
        ("postgresql+psycopg://app:pw@db/passpost", "postgresql+psycopg://app:***@db/passpost"),
        (
            "twilio://AC123:tok@api?from=%2B1555&auth_token=x",
            "twilio://AC123:***@api?from=%2B1555&auth_token=***",
        ),
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("sqlite:////var/lib/passpost/passpost.db", "sqlite:////var/lib/passpost/passpost.db"),
        (None, "not configured"),
    ],
)
def test_mask_url(url: str | None, shown: str) -> None:
    assert mask_url(url) == shown


def test_start_fields_name_every_target_without_passwords() -> None:
    settings = Settings(
        database_url="postgresql+psycopg://app:dbpw@db:5432/passpost",
        queue_url="redis://:redispw@cache:6379/0",
        smtp_url="smtps://mailer:mailpw@smtp.example.com:465",
        sms_url="smpp://sys:smspw@smsc:2775?source=Passpost",
        public_url="https://passes.example.com/",
    )
    fields = start_fields("api", settings)
    text = json.dumps(fields)
    for secret in ("dbpw", "redispw", "mailpw", "smspw"):
        assert secret not in text
    assert fields["database"] == "postgresql+psycopg://app:***@db:5432/passpost"
    assert fields["queue"] == "redis://:***@cache:6379/0"
    assert fields["smtp"] == "smtps://mailer:***@smtp.example.com:465"
    assert fields["sms"] == "smpp://sys:***@smsc:2775?source=Passpost"
    assert fields["public_url"] == "https://passes.example.com"


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.mark.slow
def test_json_logs_and_send_metrics_of_a_real_serve(tmp_path: Path, smtp: SmtpServer) -> None:
    pki = make_pki()
    anchors = pki.write_root(tmp_path / "anchors.pem")
    env = base_env(
        tmp_path / "data",
        PASSPOST_LOG_FORMAT="json",
        PASSPOST_LOG_LEVEL="info",
        PASSPOST_SMTP_URL=smtp.url,
        PASSPOST_SMS_URL=f"log:///{tmp_path}/sms.jsonl?token=smspw",
        PASSPOST_TRUST_ANCHORS=str(anchors),
    )
    cli(env, "operator", "create", "--username", OPERATOR[0], "--password", OPERATOR[1])
    recipients = [
        {"email": "ok@example.com"},
        {"email": "tempfail1-later@example.com"},
        {"email": "reject-nobody@example.com"},
    ]
    with Process(env) as server, client(server.url) as http:
        response = import_pass(http, signed_pass(pki, serial="OBS-1"), email_content(recipients))
        assert response.status_code == 200, response.text
        request_id = response.json()["requestId"]
        wait_until(lambda: http.get(f"/api/v1/requests/{request_id}").json()["pending"] == 0)
        assert http.get("/metrics", auth=None).status_code == 401
        scraped = http.get("/metrics")
        assert scraped.status_code == 200
        samples = _samples(scraped.text)
        assert httpx.get(server.url + "/ready").status_code == 200
    log_lines = server.log().splitlines()

    def sample(name: str, **labels: str) -> float:
        return samples[(name, tuple(sorted(labels.items())))]

    assert sample("passpost_sends_total", channel="EMAIL") == 4  # 3 sends + 1 retry
    assert sample("passpost_delivery_retries_total", channel="EMAIL") == 1
    assert sample("passpost_delivery_outcomes_total", channel="EMAIL", state="submitted") == 2
    assert sample("passpost_delivery_outcomes_total", channel="EMAIL", state="rejected") == 1
    assert sample("passpost_deliveries", channel="EMAIL", state="submitted") == 2
    assert sample("passpost_deliveries", channel="EMAIL", state="rejected") == 1
    assert sample("passpost_queue_up") == 1
    assert {"high", "normal", "background"} <= {
        dict(labels)["priority"] for name, labels in samples if name == "passpost_queue_tasks"
    }
    route = "/api/v1/message/pass/import"
    assert sample("passpost_http_request_duration_seconds_count", method="POST", route=route) == 1
    assert sample("passpost_http_requests_total", method="POST", route=route, status="200") == 1
    assert sample("passpost_requests_total") == 1

    records = [json.loads(line) for line in log_lines]  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
    assert not any("color_message" in r for r in records)
    loggers = {r["logger"].split(".")[0] for r in records}
    assert {"passpost", "uvicorn", "huey", "alembic"} <= loggers, loggers
    starts = [r for r in records if r["message"].startswith("passpost serve ")]
    assert len(starts) == 1
    start = starts[0]
    assert start["database"].startswith("sqlite:///") and start["queue"].startswith("sqlite:///")
    assert start["smtp"] == smtp.url and start["public_url"] == server.url
    assert start["sms"].endswith("?token=***")
    assert "smspw" not in server.log()
    rejected = [r for r in records if r.get("state") == "rejected"]
    assert len(rejected) == 1 and rejected[0]["level"] == "WARNING"
    assert rejected[0]["delivery_id"] > 0 and "550" in rejected[0]["reason"]
    assert (
        "550" in rejected[0]["message"]
        and str(rejected[0]["delivery_id"]) in rejected[0]["message"]
    )
    retried = [r for r in records if r.get("state") == "retry"]
    assert len(retried) == 1 and "451" in retried[0]["reason"]


@pytest.mark.slow
def test_a_worker_serves_its_own_metrics(tmp_path: Path) -> None:
    port = free_port()
    env = base_env(tmp_path / "data", PASSPOST_LOG_FORMAT="json")
    log = (tmp_path / "worker.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "passpost.cli", "worker", "--metrics-port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/metrics", timeout=60)
        text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    finally:
        proc.terminate()
        proc.wait(20)
    families = {f.name: f.type for f in text_string_to_metric_families(text)}
    assert families["passpost_sends"] == "counter"
    assert families["passpost_delivery_retries"] == "counter"
    assert families["passpost_apns_pushes"] == "counter"
    assert "process_cpu_seconds" in families
    lines = (tmp_path / "worker.log").read_text().splitlines()
    starts = [json.loads(line) for line in lines if '"passpost worker ' in line]
    assert len(starts) == 1 and starts[0]["role"] == "worker"
