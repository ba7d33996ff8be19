"""SMS and e-mail together, end to end: a real ``passpost serve``, a real SMTP server and a
real SMPP server; both messages carry the same personal link, and the SMSC's delivery
receipt turns the SMS delivery into ``delivered``."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from tests.peers.smpp_server.smsc import Smsc
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


def test_email_and_sms_carry_the_same_link(tmp_path: Path, smsc: Smsc) -> None:
    pki = make_pki()
    anchors = pki.write_root(tmp_path / "anchors.pem")
    with SmtpServer() as smtp:
        env = base_env(
            tmp_path / "data",
            PASSPOST_SMTP_URL=smtp.url,
            PASSPOST_SMS_URL=smsc.url(),
            PASSPOST_TRUST_ANCHORS=str(anchors),
        )
        cli(env, "operator", "create", "--username", OPERATOR[0], "--password", OPERATOR[1])
        content = email_content(
            [
                {"email": "ada@example.com", "mobileNumber": "+4915112345678", "firstName": "Ada"},
                {"email": "bob@example.com", "mobileNumber": "+4915187654321", "firstName": "Bob"},
            ]
        )
        sms = content["passIntegrationConfig"]["passIssueNotificationDetails"][0]
        sms.update(enabled=True, messageContent="Hi ##First Name##, your pass: ##SMS Pass Link##")
        with Process(env) as server, client(server.url) as http:
            response = import_pass(http, signed_pass(pki, serial="BOTH"), content)
            assert response.status_code == 200, response.text
            request_id = response.json()["requestId"]
            wait_until(lambda: len(smtp.handler.messages) == 2 and len(smsc.messages()) == 2, 60)

            def sms_delivered() -> bool:
                states = http.get(f"/api/v1/requests/{request_id}").json()["channels"]
                return states.get("SMS") == {"delivered": 2}

            # The SMSC's receipts (deliver_sm) make the SMS deliveries "delivered".
            wait_until(sms_delivered, 30)
            for address, number, name in (
                ("ada@example.com", "4915112345678", "Ada"),
                ("bob@example.com", "4915187654321", "Bob"),
            ):
                [mail] = smtp.handler.to(address)
                [text] = [m for m in smsc.messages() if m["destination_addr"] == number]
                mail_links = set(LINK.findall(body_text(mail)))
                sms_links = set(LINK.findall(text["message"]))
                assert len(mail_links) == 1 and mail_links == sms_links
                assert text["message"].startswith(f"Hi {name}, your pass: ")
                assert httpx.get(mail_links.pop()).status_code == 200
            # Both channels carried the same link, so the open counts for both.
            assert http.get(f"/api/v1/requests/{request_id}").json()["channels"] == {
                "EMAIL": {"opened": 2},
                "SMS": {"opened": 2},
            }
