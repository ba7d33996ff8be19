"""Response headers, the landing page, CSRF and the access log (SPEC §15)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from passpost import secrets
from passpost.config import get_settings
from passpost.db import session_scope
from passpost.distribution.models import PassHolder
from tests.conftest import MakeClient
from tests.support.app import basic
from tests.support.passes import shared_pki, signed_pass
from tests.support.service import Process, base_env, email_content

PKI = shared_pki()
PUBLIC = "https://passes.example.com"
BROWSER = {
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0",
    "Accept": "text/html,application/xhtml+xml",
}


@pytest.fixture
def client(client_with: MakeClient) -> TestClient:
    return client_with(public_url=PUBLIC)


def _add(client: TestClient) -> str:
    response = client.post("/api/v1/audience", json={"email": "ada@example.com"}, headers=basic())
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def _link_token(client: TestClient) -> str:
    response = client.post(
        "/api/v1/message/pass/import",
        files={"pkPass": ("p.pkpass", signed_pass(PKI, serial="H1"))},
        data={"passContent": json.dumps(email_content([{"email": "a@b.c"}]))},
        headers=basic(),
    )
    assert response.status_code == 200, response.text
    with session_scope(get_settings().resolved_database_url) as session:
        sealed = session.scalars(select(PassHolder.link_token_enc)).one()
    return secrets.open_link_token(sealed)


def test_every_answer_is_nosniff_and_json_is_no_store(client: TestClient) -> None:
    answers = [
        client.get("/health"),
        client.get("/api/v1/audience"),  # 401
        client.get("/api/v1/audience", headers=basic()),
        client.get("/p/unknown-token"),  # 404
        client.post("/api/v1/audience", content=b"x" * (2 << 20)),  # 413
    ]
    for response in answers:
        assert response.headers["X-Content-Type-Options"] == "nosniff", response.request.url
        assert response.headers["Cache-Control"] == "no-store", response.request.url


def test_401_never_asks_the_browser_for_a_basic_password(client: TestClient) -> None:
    response = client.get("/api/v1/audience")
    assert response.status_code == 401
    assert "basic" not in response.headers.get("WWW-Authenticate", "").lower()


def test_a_cross_site_post_with_basic_credentials_changes_nothing(client: TestClient) -> None:
    recipient = _add(client)
    path = f"/api/v1/audience/{recipient}/delete"
    for origin in ("https://evil.example", "null"):
        response = client.post(path, headers={**basic(), "Origin": origin})
        assert response.status_code == 403, origin
        assert response.json()["errorCode"] == "CROSS_ORIGIN_REQUEST"
    cross = client.post(path, headers={**basic(), "Sec-Fetch-Site": "cross-site"})
    assert cross.status_code == 403
    assert client.get(f"/api/v1/audience/{recipient}", headers=basic()).status_code == 200
    # Passpost's own origin (a console page), and clients that are not browsers, may.
    same = client.post(path, headers={**basic(), "Origin": PUBLIC})
    assert same.status_code == 200, same.text
    assert client.get(f"/api/v1/audience/{recipient}", headers=basic()).status_code == 400


def test_landing_page_links_to_public_url_with_a_strict_policy(client: TestClient) -> None:
    token = _link_token(client)
    page = client.get(f"/p/{token}", headers={**BROWSER, "Host": "evil.example"})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert f'href="{PUBLIC}/p/{token}?download=1"' in page.text
    assert "evil.example" not in page.text
    policy = page.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in policy and "default-src 'none'" in policy
    assert page.headers["X-Content-Type-Options"] == "nosniff"


def test_tokens_are_redacted_from_paths() -> None:
    from passpost.web.access_log import redact_path

    assert redact_path("/p/AbC-123_x?download=1") == "/p/[redacted]?download=1"
    assert (
        redact_path("/api/v1/sms/receipts/vonage?msisdn=1&token=s3cret&x=1")
        == "/api/v1/sms/receipts/vonage?msisdn=1&token=[redacted]&x=1"
    )
    assert redact_path("/api/v1/audience?start=0") == "/api/v1/audience?start=0"


@pytest.mark.slow
def test_access_log_carries_no_download_token(tmp_path: Path) -> None:
    token = "Zm9vYmFyLXNlY3JldC10b2tlbi0xMjM0NTY3OA"
    with Process(base_env(tmp_path / "data"), command="api") as server:
        assert httpx.get(f"{server.url}/p/{token}").status_code == 404
        receipt = f"{server.url}/api/v1/sms/receipts/vonage?token=hook-secret-987"
        httpx.get(receipt)
        server.stop()
        log = server.log()
    assert "GET /p/[redacted]" in log, log[-2000:]
    assert token not in log and "hook-secret-987" not in log
