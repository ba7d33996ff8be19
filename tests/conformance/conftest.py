"""Fixtures of the conformance suite: the app over a fresh database, trusting a test PKI."""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient

from tests.support.app import basic
from tests.support.passes import TestPki, signed_pass
from tests.support.service import email_content

AUTH_TOKEN = "conformance-token-0123456789"


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
