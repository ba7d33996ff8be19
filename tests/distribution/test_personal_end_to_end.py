"""Personal passes end to end over real HTTP (SPEC §11, §13, the issue's done-when scenario).

A template with ``##First Name##`` in a field and ``##Serial Number##`` in its barcode goes
to three recipients, one of whom has no first name: two personal passes that
``passpost inspect`` accepts under the test trust anchor, each with its own serial, token,
name and barcode, and one ``rejected`` delivery naming the missing placeholder. Then a
Wallet registers one pass, a field changes: the APNs server (real HTTP/2 + TLS) gets the
push and the pass served next carries the value and the changeMessage; a voided pass is
served with ``voided: true``; a request-wide change reaches every pass as queued work.
"""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.peers.apns_server import ApnsTestServer, make_test_pki
from tests.support.net import wait_until
from tests.support.passes import (
    ICON_PNG,
    PASS_TYPE_ID,
    make_p12,
    make_pki,
    pass_json,
    read_pass_json,
    zip_bytes,
)
from tests.support.service import OPERATOR, Process, base_env, cli, client, email_content
from tests.support.smtp import SmtpServer, body_text

LINK = re.compile(r"http://127\.0\.0\.1:\d+/p/[A-Za-z0-9_\-]+")
DEVICE = "device-library-0001"
PUSH_TOKEN = "cd" * 32


def template_pass() -> bytes:
    """An unsigned template: placeholders in a field, the barcode and the strings."""
    body = pass_json(
        serial="TPL-1",
        generic={
            "primaryFields": [{"key": "name", "label": "NAME", "value": "##First Name##"}],
            "secondaryFields": [{"key": "gate", "label": "GATE", "value": "A1"}],
        },
        barcodes=[
            {
                "format": "PKBarcodeFormatQR",
                "message": "##Serial Number##",
                "messageEncoding": "iso-8859-1",
            }
        ],
    )
    return zip_bytes(
        {
            "pass.json": json.dumps(body).encode(),
            "icon.png": ICON_PNG,
            "en.lproj/pass.strings": '"NAME" = "Name of ##First Name##";'.encode("utf-16"),
        }
    )


def link_of(smtp: SmtpServer, address: str) -> str:
    links = set(LINK.findall(body_text(smtp.handler.to(address)[0])))
    assert len(links) == 1
    return links.pop()


@pytest.mark.slow
def test_template_to_three_recipients_then_change_and_void(tmp_path: Path) -> None:
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
            content = email_content(
                [
                    {"email": "ada@example.com", "firstName": "Ada"},
                    {"email": "bob@example.com", "firstName": "Bob"},
                    {"email": "cy@example.com"},
                ]
            )
            files = {"pkPass": ("t.pkpass", template_pass())}
            refused = http.post(
                "/api/v1/message/pass/import",
                files=files,
                data={"passContent": json.dumps(content)},
            )
            assert refused.status_code == 400
            assert refused.json()["errorCode"] == "NO_SIGNING_CERTIFICATE"

            p12 = make_p12(pki, "pw")
            uploaded = http.post(
                "/api/v1/passcerts",
                files={"passCert": ("pass.p12", p12, "application/x-pkcs12")},
                data={"passCertPassPhrase": "pw", "certName": "test pass type"},
            )
            assert uploaded.status_code == 200, uploaded.text
            imported = http.post(
                "/api/v1/message/pass/import",
                files=files,
                data={"passContent": json.dumps(content)},
            )
            assert imported.status_code == 200, imported.text
            request_id = imported.json()["requestId"]

            meta = http.get(f"/api/v1/pass/meta/{request_id}").json()
            assert meta["total"] == 3
            entries = {e["audienceId"]: e for e in meta["passRequests"]}
            serials = [e["serialNumber"] for e in entries.values()]
            assert sum(s == "" for s in serials) == 1
            personal = [e for e in entries.values() if e["serialNumber"]]
            for entry in personal:
                assert entry["serialNumber"] == f"TPL-1-{entry['id']}"
                assert entry["barcodeMsg"] == entry["serialNumber"]
            missing = next(e for e in entries.values() if not e["serialNumber"])
            status = http.get(f"/api/v1/pass/{missing['id']}/status").json()["passStatusData"]
            (channel,) = status["channelStatusList"]
            assert channel["channelStatus"] == "rejected"
            assert "##First Name##" in channel["reason"]

            wait_until(lambda: smtp.handler.to("ada@example.com"), 30)
            wait_until(lambda: smtp.handler.to("bob@example.com"), 30)
            passes = {}
            for name, address in (("Ada", "ada@example.com"), ("Bob", "bob@example.com")):
                download = httpx.get(link_of(smtp, address), headers={"User-Agent": "curl/8"})
                assert download.status_code == 200, download.text
                path = tmp_path / f"{name}.pkpass"
                path.write_bytes(download.content)
                passes[name] = (path, read_pass_json(download.content))
            inspected = json.loads(
                cli(
                    env,
                    "inspect",
                    "--json",
                    "--trust",
                    str(anchors),
                    *(str(p) for p, _ in passes.values()),
                )
            )
            assert [r["ok"] for r in inspected] == [True, True]
            ada, bob = passes["Ada"][1], passes["Bob"][1]
            assert ada["generic"]["primaryFields"][0]["value"] == "Ada"
            assert bob["generic"]["primaryFields"][0]["value"] == "Bob"
            assert ada["serialNumber"] != bob["serialNumber"]
            assert ada["authenticationToken"] != bob["authenticationToken"]
            assert ada["barcodes"][0]["message"] == ada["serialNumber"]
            assert bob["barcodes"][0]["message"] == bob["serialNumber"]
            assert ada["webServiceURL"] == f"{server.url}/api"
            with zipfile.ZipFile(passes["Ada"][0]) as archive:
                strings = archive.read("en.lproj/pass.strings").decode("utf-16")
            assert strings == '"NAME" = "Name of Ada";'
            # The second download serves the stored pass: built once.
            again = httpx.get(link_of(smtp, "ada@example.com"), headers={"User-Agent": "curl/8"})
            assert again.content == passes["Ada"][0].read_bytes()

            serial, token = ada["serialNumber"], ada["authenticationToken"]
            latest = f"/api/v1/passes/{PASS_TYPE_ID}/{serial}"
            auth = {"Authorization": f"ApplePass {token}"}
            registration = f"/api/v1/devices/{DEVICE}/registrations/{PASS_TYPE_ID}/{serial}"
            answer = httpx.post(
                server.url + registration, json={"pushToken": PUSH_TOKEN}, headers=auth
            )
            assert answer.status_code == 201, answer.text
            fetched = httpx.get(server.url + latest, headers=auth)
            assert fetched.status_code == 200
            assert fetched.content == passes["Ada"][0].read_bytes()
            # Another holder's token does not open Ada's pass.
            wrong = {"Authorization": f"ApplePass {bob['authenticationToken']}"}
            assert httpx.get(server.url + latest, headers=wrong).status_code == 401

            # SPEC §13: the installs count, the pass is listed with its holder and device.
            progress = http.get(f"/api/v1/requests/{request_id}")
            assert progress.status_code == 200, progress.text
            assert (progress.json()["installs"], progress.json()["removals"]) == (1, 0)
            listed = http.get("/api/v1/passes", params={"requestId": request_id}).json()
            assert listed["total"] == 2
            mine = next(p for p in listed["passes"] if p["serialNumber"] == serial)
            assert (mine["devices"], mine["versions"], mine["voided"]) == (1, 1, False)
            tag = httpx.get(
                server.url + f"/api/v1/devices/{DEVICE}/registrations/{PASS_TYPE_ID}"
            ).json()["lastUpdated"]

            manage = f"/api/v1/passes/{PASS_TYPE_ID}/{serial}"
            unknown = http.patch(manage, json={"fields": {"nope": "x"}})
            assert unknown.status_code == 400 and unknown.json()["errorCode"] == "UNKNOWN_FIELD"
            assert "gate" in unknown.json()["message"]
            changed = http.patch(
                manage, json={"fields": {"gate": "B12"}, "changeMessage": "Gate changed to %@"}
            )
            assert changed.status_code == 200, changed.text
            assert changed.json()["version"] == 2
            wait_until(lambda: len(apns.received) >= 1, 30)
            assert apns.received[0].path == f"/3/device/{PUSH_TOKEN}"
            since = httpx.get(
                server.url + f"/api/v1/devices/{DEVICE}/registrations/{PASS_TYPE_ID}",
                params={"passesUpdatedSince": tag},
            )
            assert since.json()["serialNumbers"] == [serial]
            served = httpx.get(server.url + latest, headers=auth)
            assert served.status_code == 200
            gate = read_pass_json(served.content)["generic"]["secondaryFields"][0]
            assert gate == {
                "key": "gate",
                "label": "GATE",
                "value": "B12",
                "changeMessage": "Gate changed to %@",
            }
            assert read_pass_json(served.content)["authenticationToken"] == token
            changed_path = tmp_path / "changed.pkpass"
            changed_path.write_bytes(served.content)
            assert json.loads(
                cli(env, "inspect", "--json", "--trust", str(anchors), str(changed_path))
            )[0]["ok"]

            voided = http.post(manage + "/void")
            assert voided.status_code == 200 and voided.json()["version"] == 3
            wait_until(lambda: len(apns.received) >= 2, 30)
            assert (
                read_pass_json(httpx.get(server.url + latest, headers=auth).content)["voided"]
                is True
            )
            assert httpx.get(link_of(smtp, "ada@example.com")).status_code == 410
            detail = http.get(manage + "/detail").json()
            assert [v["version"] for v in detail["versionList"]] == [1, 2, 3]
            assert detail["voided"] is True
            assert [e["kind"] for e in detail["installEvents"]] == ["install"]

            # The same change for every pass of the request, as queued work.
            job = http.patch(
                f"/api/v1/requests/{request_id}/passes", json={"fields": {"gate": "C3"}}
            )
            assert job.status_code == 202, job.text
            job_path = f"/api/v1/requests/{request_id}/passes/jobs/{job.json()['jobId']}"
            wait_until(lambda: http.get(job_path).json()["state"] == "done", 30)
            assert http.get(job_path).json() | {"lastError": None} == http.get(job_path).json()
            assert http.get(job_path).json()["done"] == 2
            bob_pass = httpx.get(
                server.url + f"/api/v1/passes/{PASS_TYPE_ID}/{bob['serialNumber']}",
                headers={"Authorization": f"ApplePass {bob['authenticationToken']}"},
            )
            assert (
                read_pass_json(bob_pass.content)["generic"]["secondaryFields"][0]["value"] == "C3"
            )

            gone = httpx.delete(server.url + registration, headers=auth)
            assert gone.status_code == 200
            progress = http.get(f"/api/v1/requests/{request_id}").json()
            assert (progress["installs"], progress["removals"]) == (1, 1)
