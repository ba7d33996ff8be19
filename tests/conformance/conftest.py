"""Fixtures of the conformance suite: the app over a fresh database, trusting a test PKI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.auth.helpers import basic, make_client
from tests.support.passes import TestPki, make_pki, signed_pass
from tests.support.service import email_content

AUTH_TOKEN = "conformance-token-0123456789"


@pytest.fixture(scope="session")
def pki() -> TestPki:
    """A throwaway root → intermediate → Pass Type ID chain."""
    return make_pki()


@pytest.fixture
def client(
    monkeypatch: pytest.MonkeyPatch, settings_env: Path, database_url: str, pki: TestPki
) -> Iterator[TestClient]:
    """The app (SQLite and PostgreSQL) with the operator ``ops``; imports trust ``pki``."""
    anchors = pki.write_root(settings_env.parent / "anchors.pem")
    monkeypatch.setenv("PASSPOST_TRUST_ANCHORS", str(anchors))
    yield from make_client(monkeypatch, database_url)


def import_pass(
    client: TestClient,
    pki: TestPki,
    recipients: list[dict[str, Any]],
    *,
    serial: str = "CONF-1",
    **pass_fields: Any,
) -> str:
    """Import a signed pass for ``recipients``; return the request id."""
    pkpass = signed_pass(
        pki,
        serial=serial,
        webServiceURL="http://127.0.0.1:8080/api",
        authenticationToken=AUTH_TOKEN,
        **pass_fields,
    )
    response = client.post(
        "/api/v1/message/pass/import",
        files={"pkPass": ("p.pkpass", pkpass, "application/vnd.apple.pkpass")},
        data={"passContent": json.dumps(email_content(recipients))},
        headers=basic(),
    )
    assert response.status_code == 200, response.text
    return str(response.json()["requestId"])


def create_recipient(client: TestClient, **fields: Any) -> str:
    """Create a recipient through the API; return its id."""
    body = {"firstName": "Ada", "lastName": "Lovelace", **fields}
    response = client.post("/api/v1/audience", json=body, headers=basic())
    assert response.status_code == 200, response.text
    return str(response.json()["id"])
