"""Pass distribution calls (meta, status, content, cancel, import) as the pages document them."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from passpost.config import get_settings
from passpost.db import session_scope
from passpost.distribution.models import Delivery, DeliveryState
from passpost.pkpass import sign
from tests.conformance import shapes
from tests.conformance.conftest import create_recipient, import_pass
from tests.support.app import basic
from tests.support.passes import ICON_PNG, TestPki, pass_json, signed_pass
from tests.support.service import email_content


def _holder_id(client: TestClient, request_id: str) -> str:
    meta = client.get(f"/api/v1/pass/meta/{request_id}", headers=basic()).json()
    return str(meta["passRequests"][0]["id"])


def test_import_answer_is_exact(client: TestClient, pki: TestPki) -> None:
    fixture = shapes.load("pass_import")
    pkpass = signed_pass(pki, serial="EXACT")
    response = client.post(
        fixture["path"],
        files={"pkPass": ("p.pkpass", pkpass)},
        data={"passContent": json.dumps(email_content([{"email": "a@example.com"}]))},
        headers=basic(),
    )
    shapes.check(fixture, response.status_code, response.json())
    assert response.status_code == 200
    unauthorized = client.post(fixture["path"], files={"pkPass": ("p.pkpass", pkpass)})
    shapes.error_shape(unauthorized.status_code, unauthorized.json(), 401)


def test_meta_list_and_one(client: TestClient, pki: TestPki) -> None:
    audience_id = create_recipient(client, email="ada@example.com")
    request_id = import_pass(client, pki, [{"id": audience_id}])
    listing = shapes.load("pass_meta")
    response = client.get(
        listing["path"].replace("{reqId}", request_id), params=listing["query"], headers=basic()
    )
    shapes.check(listing, response.status_code, response.json())
    entry = response.json()["passRequests"][0]
    # Absent values are "" as on the page, never null; the pass type is the page's constant.
    assert entry["stopDateStr"] == "" and entry["passExpiryDateStr"] == ""
    assert entry["passType"] == "GENERIC"
    assert entry["barcodeMsg"] == "code-CONF-1" and entry["importPass"] is True

    one = shapes.load("pass_meta_audience")
    path = one["path"].replace("{reqId}", request_id).replace("{audId}", audience_id)
    response = client.get(path, headers=basic())
    shapes.check(one, response.status_code, response.json())
    assert response.json()["passRequests"] == entry


@pytest.mark.parametrize(
    ("style", "constant"),
    [
        ("boardingPass", "BOARDING"),
        ("coupon", "COUPON"),
        ("eventTicket", "EVENT_TICKET"),
        ("storeCard", "STORE_CARD"),
    ],
)
def test_meta_pass_type_constants(
    client: TestClient, pki: TestPki, style: str, constant: str
) -> None:
    body: dict[str, object] = {"primaryFields": []}
    if style == "boardingPass":
        body["transitType"] = "PKTransitTypeAir"
    document = pass_json(serial=f"T-{style}")
    del document["generic"]
    document[style] = body
    pkpass = sign(
        {"pass.json": json.dumps(document).encode(), "icon.png": ICON_PNG},
        certificate=pki.leaf,
        private_key=pki.leaf_key,
        intermediates=[pki.intermediate],
    )
    response = client.post(
        "/api/v1/message/pass/import",
        files={"pkPass": ("p.pkpass", pkpass)},
        data={"passContent": json.dumps(email_content([{"email": "t@example.com"}]))},
        headers=basic(),
    )
    assert response.status_code == 200, response.text
    meta = client.get(f"/api/v1/pass/meta/{response.json()['requestId']}", headers=basic())
    assert meta.json()["passRequests"][0]["passType"] == constant


def test_status_wrapper_and_rejected(client: TestClient, pki: TestPki) -> None:
    # Recipient 424242 does not exist: its deliveries are rejected at import.
    request_id = import_pass(client, pki, [{"id": "424242"}])
    fixture = shapes.load("pass_status")
    holder = _holder_id(client, request_id)
    response = client.get(fixture["path"].replace("{passid}", holder), headers=basic())
    shapes.check(fixture, response.status_code, response.json())
    channels = response.json()["passStatusData"]["channelStatusList"]
    for channel in channels:
        shapes.check_keys(channel, fixture["response"]["channelKeys"], "channelStatusList")
        shapes.check_enums(channel, fixture["response"]["enums"], "channelStatusList")
    email = next(c for c in channels if c["channelType"] == "EMAIL")
    assert email["channelStatus"] == "rejected"
    assert email["passStatus"] == "Rejected"


def test_status_submitted_while_queued(client: TestClient, pki: TestPki) -> None:
    audience_id = create_recipient(client, email="grace@example.com")
    request_id = import_pass(client, pki, [{"id": audience_id}], serial="Q-1")
    holder = _holder_id(client, request_id)
    data = client.get(f"/api/v1/pass/{holder}/status", headers=basic()).json()
    email = next(
        c for c in data["passStatusData"]["channelStatusList"] if c["channelType"] == "EMAIL"
    )
    assert email["passStatus"] == "Submitted"
    # A delivery refused later (permanent SMTP error) makes the pass Rejected on that channel.
    with session_scope(get_settings().resolved_database_url) as session:
        row = session.query(Delivery).filter(Delivery.holder_id == int(holder)).first()
        assert row is not None
        row.state = DeliveryState.REJECTED
    data = client.get(f"/api/v1/pass/{holder}/status", headers=basic()).json()
    email = next(
        c for c in data["passStatusData"]["channelStatusList"] if c["channelType"] == "EMAIL"
    )
    assert email["passStatus"] == "Rejected"


def test_content_wrapper_and_sections(client: TestClient, pki: TestPki) -> None:
    audience_id = create_recipient(client, email="lin@example.com")
    request_id = import_pass(
        client,
        pki,
        [{"id": audience_id}],
        serial="C-1",
        backgroundColor="rgb(100, 121, 140)",
        logoText="LT",
        expirationDate="2030-01-01T00:00:00Z",
    )
    fixture = shapes.load("pass_content")
    holder = _holder_id(client, request_id)
    response = client.get(fixture["path"].replace("{passid}", holder), headers=basic())
    shapes.check(fixture, response.status_code, response.json())
    content = response.json()["passContent"]
    for section, keys in fixture["response"]["sections"].items():
        shapes.check_keys(content[section], keys, f"passContent.{section}")
    front = content["frontLayout"]
    shapes.check_keys(front["primaryFields"][0], fixture["response"]["fieldKeys"], "primaryFields")
    shapes.check_keys(front["barcodeDetails"], fixture["response"]["barcodeKeys"], "barcodeDetails")
    basic_details = content["basicDetails"]
    assert basic_details["passType"] == "GENERIC"
    assert basic_details["passSerialNumber"] == "C-1"
    assert basic_details["passSerialNumberType"] == "IMPORTED"
    assert content["appearance"]["bgColor"] == "#64798c"
    assert front["logoText"] == "LT"
    assert front["barcodeDetails"]["barcodeType"] == "QR"
    assert front["barcodeDetails"]["message"] == "code-C-1"
    assert content["passRules"]["expiryDate"] == "2030-01-01T00:00:00Z"
    # passpost's addition: the pass.json itself, for clients that want every key.
    assert content["passJson"]["serialNumber"] == "C-1"


def test_cancel(client: TestClient, pki: TestPki) -> None:
    audience_id = create_recipient(client, email="cancel@example.com")
    request_id = import_pass(client, pki, [{"id": audience_id}], serial="X-1")
    fixture = shapes.load("pass_cancel")
    response = client.post(fixture["path"].replace("{id}", request_id), headers=basic())
    shapes.check(fixture, response.status_code, response.json())
    assert response.json()["id"] == request_id
