"""The console over HTTP (TestClient): sessions, CSRF, every page, a send, cancel, paging."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from passpost.audience.models import UploadBatch
from passpost.audience.tasks import import_upload
from passpost.config import get_settings
from passpost.db import session_scope
from passpost.distribution import status
from passpost.distribution.models import DistributionRequest
from tests.conftest import MakeClient
from tests.console.helpers import csrf_of, log_in
from tests.support.app import PASSWORD, USERNAME, basic
from tests.support.passes import (
    ICON_PNG,
    make_p12,
    pass_json,
    shared_pki,
    signed_pass,
    zip_bytes,
)
from tests.support.service import email_content

PKI = shared_pki()
PAGES = (
    "/console/requests",
    "/console/send",
    "/console/audience",
    "/console/passes",
    "/console/certificates",
    "/console/channels",
    "/console/operators",
)


@pytest.fixture
def client(client_with: MakeClient, settings_env: Path) -> TestClient:
    return client_with(queue_url=f"sqlite:///{settings_env.parent / 'queue.db'}")


def _requests() -> list[int]:
    with session_scope(get_settings().resolved_database_url) as session:
        return list(session.scalars(select(DistributionRequest.id)))


def _send(
    client: TestClient,
    csrf: str,
    addresses: list[str],
    serial: str = "C1",
    upload: bytes | None = None,
):
    return client.post(
        "/console/send",
        data={
            "csrf": csrf,
            "source": "addresses",
            "addresses": "\n".join(addresses),
            "use_email": "true",
            "email_subject": "Hello",
            "email_body": "Hi ##First Name##: ##Email Pass Link##",
        },
        files={"pkpass_file": ("p.pkpass", upload or signed_pass(PKI, serial=serial))},
        follow_redirects=False,
    )


def test_login_logout_and_the_cookie(client: TestClient) -> None:
    assert client.get("/console/requests", follow_redirects=False).headers["location"] == (
        "/console/login"
    )
    form = client.get("/console/login")
    wrong = client.post(
        "/console/login",
        data={"username": USERNAME, "password": "nope-nope", "csrf": csrf_of(form.text)},
    )
    assert wrong.status_code == 401 and "wrong password" in wrong.text
    no_csrf = client.post("/console/login", data={"username": USERNAME, "password": PASSWORD})
    assert no_csrf.status_code == 403
    response = client.post(
        "/console/login",
        data={"username": USERNAME, "password": PASSWORD, "csrf": csrf_of(form.text)},
        follow_redirects=False,
    )
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/console" in cookie
    csrf = csrf_of(client.get("/console/requests").text)
    out = client.post("/console/logout", data={"csrf": csrf}, follow_redirects=False)
    assert out.status_code == 303
    # The login session is revoked server-side, not only forgotten by the browser.
    token = response.cookies.get("passpost_console")
    client.cookies.set("passpost_console", token, path="/console")
    assert client.get("/console/requests", follow_redirects=False).status_code == 303


def test_every_page_renders_under_a_strict_csp(client: TestClient) -> None:
    log_in(client)
    for path in PAGES:
        response = client.get(path)
        assert response.status_code == 200, (path, response.text[:500])
        assert "default-src 'self'" in response.headers["content-security-policy"]
        assert "<script>" not in response.text and " style=" not in response.text
        assert " on" + "click=" not in response.text


def test_send_page_creates_the_request_and_csrf_is_required(client: TestClient) -> None:
    csrf = log_in(client)
    refused = _send(client, "not-the-token", ["ada@example.com"])
    assert refused.status_code == 403 and _requests() == []
    response = _send(client, csrf, ["ada@example.com", "bob@example.com"])
    assert response.status_code == 303, response.text
    (request_id,) = _requests()
    assert response.headers["location"].startswith(f"/console/requests/{request_id}?")
    page = client.get(response.headers["location"])
    assert "Request queued for 2 recipient(s)" in page.text
    assert "ada@example.com" in page.text and "<svg" in page.text
    # The same numbers as the API.
    with session_scope(get_settings().resolved_database_url) as session:
        progress = status.request_progress(session, request_id)
    assert progress["channels"] == {"EMAIL": {"queued": 2}}
    listing = client.get("/console/requests/table").text
    assert str(request_id) in listing and 'hx-trigger="every 2s"' in listing
    # The filters (state, creation dates) of the page and of its polled table.
    for path in ("/console/requests", "/console/requests/table"):
        found = client.get(path, params={"state": "queued", "from": "2000-01-01"}).text
        assert f"/console/requests/{request_id}" in found
        assert (
            f"/console/requests/{request_id}"
            not in client.get(path, params={"to": "2000-01-01"}).text
        )
        assert (
            f"/console/requests/{request_id}" not in client.get(path, params={"state": "done"}).text
        )
    refused = client.get("/console/requests", params={"state": "lost"})
    assert refused.status_code == 200 and "state must be one of" in refused.text


def test_request_page_escapes_what_recipients_typed(client: TestClient) -> None:
    # The recipients table is escaped by hand (render.text), not by Jinja's autoescape.
    csrf = log_in(client)
    people = 'First Name,Last Name,Email\n<img src=x onerror=alert(1)>,"A&B",eve@example.com\n'
    response = client.post(
        "/console/send",
        data={
            "csrf": csrf,
            "source": "csv",
            "use_email": "true",
            "email_subject": "Hi",
            "email_body": "##Email Pass Link##",
        },
        files={
            "pkpass_file": ("p.pkpass", signed_pass(PKI, serial="X1")),
            "csv_file": ("people.csv", people.encode()),
        },
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    page = client.get(response.headers["location"]).text
    assert "&lt;img src=x onerror=alert(1)&gt; A&amp;B" in page
    assert "<img src=x" not in page


def test_send_page_reports_bad_input_and_stores_nothing(client: TestClient) -> None:
    csrf = log_in(client)
    bad = _send(client, csrf, ["ada@example.com", "not an address"])
    assert bad.status_code == 400 and "Nothing was sent" in bad.text and "Line 2" in bad.text
    assert _requests() == []
    report = client.post(
        "/console/send/check",
        files={"pkpass_file": ("x.pkpass", b"not a zip")},
        headers={"X-CSRF-Token": csrf},
    )
    assert report.status_code == 200 and "NOT_A_ZIP" in report.text
    good = client.post(
        "/console/send/check",
        files={"pkpass_file": ("p.pkpass", signed_pass(PKI, serial="R1"))},
        headers={"X-CSRF-Token": csrf},
    )
    assert "valid" in good.text and "R1" in good.text
    preview = client.post(
        "/console/send/preview",
        data={"email_subject": "Hi ##First Name##", "sms_text": "Go: ##SMS Pass Link##"},
        headers={"X-CSRF-Token": csrf},
    )
    assert "Hi Ada" in preview.text and "Go: https://" in preview.text


def test_console_uploads_have_the_api_upload_cap_not_the_json_cap(client: TestClient) -> None:
    # A pass (or a CSV) above the 1 MiB cap of JSON bodies reaches the Send page's check,
    # as it reaches the import call, up to PASSPOST_MAX_UPLOAD_BYTES.
    csrf = log_in(client)
    big = b"not a zip" + b"\0" * (2 * 1024 * 1024)
    report = client.post(
        "/console/send/check",
        files={"pkpass_file": ("big.pkpass", big)},
        headers={"X-CSRF-Token": csrf},
    )
    assert report.status_code == 200 and "NOT_A_ZIP" in report.text


def test_cancel_needs_csrf_and_recipients_page_by_keyset(client: TestClient) -> None:
    csrf = log_in(client)
    people = [f"p{i:03}@example.com" for i in range(60)]
    assert _send(client, csrf, people).status_code == 303
    (request_id,) = _requests()
    first = client.get(f"/console/requests/{request_id}")
    assert "p000@example.com" in first.text and "p050@example.com" not in first.text
    after = first.text.split("?after=")[1].split("#")[0]
    second = client.get(f"/console/requests/{request_id}?after={after}")
    assert "p050@example.com" in second.text and "p049@example.com" not in second.text
    refused = client.post(f"/console/requests/{request_id}/cancel")
    assert refused.status_code == 403
    done = client.post(f"/console/requests/{request_id}/cancel", data={"csrf": csrf})
    assert done.status_code == 200 and "Request cancelled" in done.text
    assert client.get(f"/api/v1/requests/{request_id}", auth=(USERNAME, PASSWORD)).json()[
        "state"
    ] == ("cancelled")
    missing = client.get("/console/requests/123")
    assert missing.status_code == 404 and "No request 123" in missing.text


def test_audience_operators_and_keys(client: TestClient) -> None:
    csrf = log_in(client)
    added = client.post(
        "/console/audience",
        data={"csrf": csrf, "first_name": "Ada", "email": "ada@example.com"},
    )
    assert "Recipient 1 added" in added.text
    duplicate = client.post("/console/audience", data={"csrf": csrf, "email": "ada@example.com"})
    assert duplicate.status_code == 400 and "DUPLICATE_EMAIL" in duplicate.text
    csv = "email,First Name\nbob@example.com,Bob\nbroken,Eve\n"
    imported = client.post(
        "/console/audience/import",
        data={"csrf": csrf},
        files={"file": ("people.csv", csv.encode())},
    )
    # Queued like the API's import (the same service), then imported by a worker.
    assert "queued" in imported.text and 'hx-get="/console/audience/uploads"' in imported.text
    with session_scope(get_settings().resolved_database_url) as session:
        (batch,) = session.scalars(select(UploadBatch)).all()
        assert batch.state == "queued" and batch.imported_by == USERNAME
    import_upload(batch.id)
    uploads = client.get("/console/audience/uploads").text
    assert "1 created" in uploads and "INVALID_EMAIL" in uploads and "hx-get" not in uploads
    api = client.get(f"/api/v1/batchinfo/status/{batch.id}", headers=basic()).json()
    assert (api["created"], api["failed"]) == (1, 1)
    assert "Bob" in client.get("/console/audience?q=bob").text
    saved = client.post(
        "/console/audience/1",
        data={"csrf": csrf, "first_name": "Augusta", "email": "ada@example.com"},
    )
    assert "Recipient 1 saved" in saved.text
    assert "Augusta" in client.get("/console/audience/1").text
    gone = client.post("/console/audience/1/delete", data={"csrf": csrf})
    assert "Recipient 1 deleted" in gone.text
    key = client.post("/console/apikeys", data={"csrf": csrf, "name": "ci"})
    assert "ppk_" in key.text
    token = key.text.split("<code>")[1].split("</code>")[0]
    assert client.get("/api/v1/requests", headers={"Authorization": f"Bearer {token}"}).json() == {
        "total": 0,
        "requests": [],
    }
    assert "revoked" in client.post("/console/apikeys/ci/revoke", data={"csrf": csrf}).text
    made = client.post(
        "/console/operators", data={"csrf": csrf, "username": "second", "password": "x" * 12}
    )
    assert "Operator second created" in made.text


def test_docs_offline_with_the_import_body_and_error_shape(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200 and "/docs/assets/swagger-ui-bundle.js" in page.text
    assert "cdn" not in page.text.lower()
    assert client.get("/docs/assets/swagger-ui.css").status_code == 200
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/api/v1/message/pass/import"]["post"]
    multipart = body["requestBody"]["content"]["multipart/form-data"]
    assert set(multipart["schema"]["properties"]) == {"pkPass", "passContent"}
    assert json.loads(multipart["schema"]["properties"]["passContent"]["example"])["recipients"]
    error = body["responses"]["400"]["content"]["application/json"]
    assert error["schema"]["$ref"].endswith("/ErrorBody") and error["examples"]


def test_certificate_upload_then_change_fields_and_void(client: TestClient) -> None:
    from passpost.passes.models import WalletPass

    csrf = log_in(client)
    p12 = make_p12(PKI, "pw")
    wrong = client.post(
        "/console/certificates",
        data={"csrf": csrf, "name": "test", "passphrase": "nope"},
        files={"p12": ("pass.p12", p12)},
    )
    assert wrong.status_code == 400 and "INVALID_P12_PASSPHRASE" in wrong.text
    stored = client.post(
        "/console/certificates",
        data={"csrf": csrf, "name": "test", "passphrase": "pw"},
        files={"p12": ("pass.p12", p12)},
    )
    assert "Certificate test for" in stored.text
    assert _send(client, csrf, ["ada@example.com"], serial="CH1").status_code == 303
    with session_scope(get_settings().resolved_database_url) as session:
        pass_id = session.scalars(select(WalletPass.id)).one()
    page = client.get(f"/console/passes/{pass_id}")
    assert page.status_code == 200 and "Make a new version" in page.text
    unknown = client.post(
        f"/console/passes/{pass_id}/fields", data={"csrf": csrf, "fields": "nope = 1"}
    )
    assert unknown.status_code == 400 and "UNKNOWN_FIELD" in unknown.text
    changed = client.post(
        f"/console/passes/{pass_id}/fields",
        data={"csrf": csrf, "fields": "name = Changed", "change_message": "Now %@"},
    )
    assert "Version 2 made" in changed.text, changed.text[:2000]
    refused = client.post(f"/console/passes/{pass_id}/void")
    assert refused.status_code == 403
    voided = client.post(f"/console/passes/{pass_id}/void", data={"csrf": csrf})
    assert "Version 3 made" in voided.text
    assert "Void this pass" not in voided.text and "voided" in voided.text


def _template() -> bytes:
    """An unsigned template (SPEC §11): a placeholder in a field and in the barcode."""
    body = pass_json(
        serial="TPL-C",
        generic={"primaryFields": [{"key": "name", "label": "NAME", "value": "##First Name##"}]},
        barcodes=[
            {
                "format": "PKBarcodeFormatQR",
                "message": "##Serial Number##",
                "messageEncoding": "iso-8859-1",
            }
        ],
    )
    return zip_bytes({"pass.json": json.dumps(body).encode(), "icon.png": ICON_PNG})


def test_send_page_takes_an_unsigned_template_as_the_api_does(client: TestClient) -> None:
    csrf = log_in(client)
    template = _template()

    def check() -> str:
        return client.post(
            "/console/send/check",
            files={"pkpass_file": ("t.pkpass", template)},
            headers={"X-CSRF-Token": csrf},
        ).text

    def api_import() -> httpx.Response:
        return client.post(
            "/api/v1/message/pass/import",
            files={"pkPass": ("t.pkpass", template)},
            data={"passContent": json.dumps(email_content([{"email": "eve@example.com"}]))},
            headers=basic(),
        )

    # No certificate for its pass type: the API refuses, so do the report and the send.
    assert api_import().json()["errorCode"] == "NO_SIGNING_CERTIFICATE"
    report = check()
    assert "template" in report and "NO_SIGNING_CERTIFICATE" in report
    refused = _send(client, csrf, ["ada@example.com"], upload=template)
    assert refused.status_code == 400 and "NO_SIGNING_CERTIFICATE" in refused.text
    assert _requests() == []
    p12 = make_p12(PKI, "pw")
    client.post(
        "/console/certificates",
        data={"csrf": csrf, "name": "signer", "passphrase": "pw"},
        files={"p12": ("pass.p12", p12)},
    )
    # With one: unsigned is fine for a template (its passes are signed one by one).
    assert api_import().status_code == 200
    report = check()
    assert "one personal pass per recipient" in report and "INVALID" not in report
    sent = _send(client, csrf, ["ada@example.com"], upload=template)
    assert sent.status_code == 303, sent.text
    assert len(_requests()) == 2


def test_console_login_uses_the_credential_throttle(client: TestClient) -> None:
    form = client.get("/console/login")
    token = csrf_of(form.text)
    for n in range(10):
        wrong = client.post(
            "/console/login", data={"username": USERNAME, "password": f"no-{n}", "csrf": token}
        )
        assert wrong.status_code == 401
    refused = client.post(
        "/console/login",
        data={"username": USERNAME, "password": PASSWORD, "csrf": token},
        follow_redirects=False,
    )
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    # The same username is locked for the API too: one throttle for every login path.
    assert client.get("/api/v1/audience", auth=(USERNAME, PASSWORD)).status_code == 429
