"""Pass updates end to end over real HTTP: passpost re-signs v1 with its stored certificate,
a simulated Wallet registers with the pass's token, v2 is imported, and then the update
e-mail arrives, the APNs server (real HTTP/2 + TLS) gets the push, the device's
serials-since call lists the serial, the latest-pass call returns v2, and then 304."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from passpost import pkpass
from tests.peers.apns_server import ApnsTestServer, make_test_pki
from tests.support.net import wait_until
from tests.support.passes import PASS_TYPE_ID, make_p12, make_pki, read_pass_json, signed_pass
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

# passpost serve/worker (and peers) as real processes.
pytestmark = pytest.mark.slow

DEVICE = "device-library-0001"
PUSH_TOKEN = "ab" * 32


def test_update_reaches_mail_apns_and_the_wallet(tmp_path: Path) -> None:
    pki = make_pki()
    anchors = pki.write_root(tmp_path / "anchors.pem")
    apns_pki = make_test_pki(tmp_path / "apns")
    with SmtpServer() as smtp, ApnsTestServer(apns_pki, mode="token") as apns:
        env = base_env(
            tmp_path / "data",
            PASSPOST_SMTP_URL=smtp.url,
            PASSPOST_TRUST_ANCHORS=str(anchors),
            **apns_pki.token_env(apns.url),
        )
        cli(env, "operator", "create", "--username", OPERATOR[0], "--password", OPERATOR[1])
        with Process(env) as server, client(server.url) as http:
            p12 = make_p12(pki, "pw")
            uploaded = http.post(
                "/api/v1/passcerts",
                files={"passCert": ("pass.p12", p12, "application/x-pkcs12")},
                data={"passCertPassPhrase": "pw", "certName": "test pass type"},
            )
            assert uploaded.status_code == 200, uploaded.text

            v1 = import_pass(
                http,
                signed_pass(pki, serial="UPD-1", description="version one"),
                email_content([{"email": "ada@example.com", "firstName": "Ada"}]),
            )
            assert v1.status_code == 200, v1.text
            assert v1.headers["x-passpost-pass-updatable"] == "true"
            wait_until(lambda: smtp.handler.to("ada@example.com"), 30)
            meta = http.get(f"/api/v1/pass/meta/{v1.json()['requestId']}").json()
            holder = meta["passRequests"][0]["id"]
            served = http.get(f"/api/v1/pass/{holder}/content").json()["passContent"]["passJson"]
            assert served["webServiceURL"] == f"{server.url}/api"
            token = served["authenticationToken"]
            assert len(token) >= 16

            # The pass a device downloads is re-signed by passpost and verifies.
            latest = f"/api/v1/passes/{PASS_TYPE_ID}/UPD-1"
            first = httpx.get(server.url + latest, headers={"Authorization": f"ApplePass {token}"})
            assert first.status_code == 200
            report = pkpass.validate(first.content, trust_anchors=[pki.root])
            assert report.ok, report.findings
            assert read_pass_json(first.content)["description"] == "version one"

            registration = f"/api/v1/devices/{DEVICE}/registrations/{PASS_TYPE_ID}/UPD-1"
            answer = httpx.post(
                server.url + registration,
                json={"pushToken": PUSH_TOKEN},
                headers={"Authorization": f"ApplePass {token}"},
            )
            assert answer.status_code == 201, answer.text
            listed = httpx.get(
                server.url + f"/api/v1/devices/{DEVICE}/registrations/{PASS_TYPE_ID}"
            )
            assert listed.status_code == 200
            tag = listed.json()["lastUpdated"]
            assert isinstance(tag, str)

            v2 = http.post(
                "/api/v1/message/pass/import/update",
                files={
                    "pkPass": (
                        "p.pkpass",
                        signed_pass(pki, serial="UPD-1", description="version two"),
                    )
                },
                data={"passContent": json.dumps(email_content([{"email": "ada@example.com"}]))},
            )
            assert v2.status_code == 200, v2.text

            wait_until(
                lambda: any(m["Subject"] == "Pass Update" for m in smtp.handler.messages), 30
            )
            wait_until(lambda: len(apns.received) >= 1, 30)
            push = apns.received[0]
            assert push.path == f"/3/device/{PUSH_TOKEN}"
            assert push.headers["apns-topic"] == PASS_TYPE_ID
            assert json.loads(push.body) == {}

            since = httpx.get(
                server.url + f"/api/v1/devices/{DEVICE}/registrations/{PASS_TYPE_ID}",
                params={"passesUpdatedSince": tag},
            )
            assert since.status_code == 200
            assert since.json()["serialNumbers"] == ["UPD-1"]

            second = httpx.get(server.url + latest, headers={"Authorization": f"ApplePass {token}"})
            assert second.status_code == 200
            assert read_pass_json(second.content)["description"] == "version two"
            assert read_pass_json(second.content)["authenticationToken"] == token  # stable
            modified = second.headers["last-modified"]
            assert modified.endswith("GMT")
            again = httpx.get(
                server.url + latest,
                headers={"Authorization": f"ApplePass {token}", "If-Modified-Since": modified},
            )
            assert again.status_code == 304
