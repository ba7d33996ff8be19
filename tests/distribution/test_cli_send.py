"""``passpost send``: recipients from a CSV, addresses or the audience; the import's checks;
``--watch`` until every delivery is final against a real worker and SMTP server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from passpost.cli import app
from passpost.config import get_settings
from passpost.db import session_scope
from passpost.distribution import status
from passpost.distribution.models import DistributionRequest
from tests.support.passes import shared_pki, signed_pass
from tests.support.service import Process, base_env
from tests.support.smtp import SmtpServer

PKI = shared_pki()
runner = CliRunner()


@pytest.fixture
def env(settings_env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PASSPOST_TRUST_ANCHORS", str(PKI.write_root(settings_env.parent / "a.pem")))
    # No worker here; the queue is only written to.
    monkeypatch.setenv("PASSPOST_QUEUE_URL", f"sqlite:///{settings_env.parent / 'queue.db'}")
    get_settings.cache_clear()
    pkpass = settings_env.parent / "p.pkpass"
    pkpass.write_bytes(signed_pass(PKI, serial="CLI1"))
    return pkpass


def _only_request() -> dict:
    with session_scope(get_settings().resolved_database_url) as session:
        request_id = session.scalars(select(DistributionRequest.id)).one()
        return status.request_progress(session, request_id)


def test_send_to_a_csv_reports_bad_rows(env: Path, tmp_path: Path) -> None:
    people = tmp_path / "people.csv"
    people.write_text(
        "First Name,Email,Mobile\nAda,ada@example.com,\nBob,not-an-email,\nCy,,+14155550100\n"
    )
    result = runner.invoke(app, ["send", str(env), "--to", str(people), "--email-subject", "Hi"])
    assert result.exit_code == 0, result.output
    assert "row 3 skipped" in result.stderr and "INVALID_EMAIL" in result.stderr
    assert "2 recipient(s), EMAIL" in result.stdout
    progress = _only_request()
    assert progress["recipients"] == 2
    # Cy has no e-mail address: decided at once, as for the import call.
    assert progress["channels"] == {"EMAIL": {"queued": 1, "not attempted": 1}}


def test_send_to_addresses_defaults_to_both_channels(env: Path) -> None:
    result = runner.invoke(
        app, ["send", str(env), "--recipient", "ada@example.com", "--recipient", "+14155550100"]
    )
    assert result.exit_code == 0, result.output
    assert "EMAIL, SMS" in result.stdout
    # The e-mail-only recipient cannot get an SMS, nor the phone-only one an e-mail.
    assert _only_request()["deliveries"] == 4


def test_send_refuses_bad_input_and_stores_nothing(env: Path, tmp_path: Path) -> None:
    both = runner.invoke(app, ["send", str(env), "--recipient", "a@example.com", "--audience-all"])
    assert both.exit_code == 1 and "NO_RECIPIENTS" in both.stderr
    bad = runner.invoke(app, ["send", str(env), "--recipient", "nobody"])
    assert bad.exit_code == 1 and "INVALID_MOBILE_NUMBER" in bad.stderr
    broken = tmp_path / "broken.pkpass"
    broken.write_bytes(b"not a zip")
    invalid = runner.invoke(app, ["send", str(broken), "--recipient", "a@example.com"])
    assert invalid.exit_code == 1 and "NOT_A_ZIP" in invalid.stderr
    empty = runner.invoke(app, ["send", str(env), "--audience-all"])
    assert empty.exit_code == 1 and "NO_RECIPIENTS" in empty.stderr
    with session_scope(get_settings().resolved_database_url) as session:
        assert session.scalars(select(DistributionRequest.id)).all() == []


@pytest.mark.slow
def test_send_watch_until_final(tmp_path: Path) -> None:
    pkpass = tmp_path / "p.pkpass"
    pkpass.write_bytes(signed_pass(PKI, serial="W1"))
    with SmtpServer() as smtp:
        env = base_env(
            tmp_path / "data",
            PASSPOST_SMTP_URL=smtp.url,
            PASSPOST_TRUST_ANCHORS=str(PKI.write_root(tmp_path / "anchors.pem")),
        )
        people = tmp_path / "people.csv"
        people.write_text(
            "email\n" + "".join(f"p{i}@example.com\n" for i in range(30)) + "reject-x@example.com\n"
        )
        with Process(env, command="worker"):
            result = subprocess.run(
                [
                    *(sys.executable, "-m", "passpost.cli", "send", str(pkpass)),
                    *("--to", str(people), "--email-subject", "Your ticket", "--watch"),
                ],
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
        assert result.returncode == 0, result.stdout + result.stderr
        assert len(smtp.handler.messages) == 30
    # The summary table: 30 submitted, 1 rejected, nothing pending.
    assert "submitted" in result.stdout and "rejected" in result.stdout
    summary = result.stdout.splitlines()[-2]
    assert "30" in summary and "31" in summary, result.stdout
