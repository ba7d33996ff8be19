"""Mail and SMS configuration calls, with every provider sample the pages show."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from passpost.channels import service
from passpost.config import get_settings
from passpost.db import session_scope
from tests.conformance import shapes
from tests.support.app import basic


def test_mail_config_create_and_get(client: TestClient) -> None:
    create = shapes.load("mailconfig_create")
    response = client.post(create["path"], json=create["request"]["json"], headers=basic())
    shapes.check(create, response.status_code, response.json())
    get = shapes.load("mailconfig_get")
    response = client.get(get["path"], headers=basic())
    shapes.check(get, response.status_code, response.json())
    assert response.json()["customProps"] == create["request"]["json"]["customProps"]
    bad = client.post(
        create["path"], json={**create["request"]["json"], "protocol": "IMAP"}, headers=basic()
    )
    shapes.error_shape(bad.status_code, bad.json(), 400)


@pytest.mark.parametrize("provider", ["NEXMO", "TWILIO", "SMPP", "CLICKATELL", "SALESFORCE"])
def test_sms_config_every_sample(client: TestClient, provider: str) -> None:
    update = shapes.load("smsconfig_update")
    body = update["request"]["jsonByProvider"][provider]
    response = client.post(update["path"], json=body, headers=basic())
    shapes.check(update, response.status_code, response.json())
    get = shapes.load("smsconfig_get")
    shown = client.get(get["path"], headers=basic())
    shapes.check(get, shown.status_code, shown.json())
    for prop in shown.json()["properties"]:
        shapes.check_keys(prop, get["response"]["propertyKeys"], "properties[]")
        assert "secret" not in prop["key"].lower() or prop["value"] in ("", "********")
    sendable = update["sendable"][provider]
    assert shown.json()["sendable"] is sendable
    with session_scope(get_settings().resolved_database_url) as session:
        url = service.effective_sms_url(session, get_settings())
        reason = service.sms_unavailable_reason(session, get_settings())
    if sendable:
        assert url is not None and "warning" not in response.json()
    else:
        # Stored as the pages accept it; passpost says plainly that it cannot send with it.
        assert url is None
        assert provider in response.json()["warning"] and provider in reason
