"""Twilio and Vonage receipt webhooks: signature/token checked, delivery state recorded."""

from __future__ import annotations

import hashlib

from sqlalchemy import select

from passpost import secrets
from passpost.channels.sms.twilio import twilio_signature
from passpost.channels.sms.vonage import receipt_token, vonage_signature
from passpost.config import get_settings
from passpost.db import session_scope
from passpost.distribution.models import (
    Channel,
    Delivery,
    DeliveryState,
    DistributionRequest,
    PassHolder,
)
from passpost.passes.models import PassVersion, WalletPass
from tests.conftest import MakeClient

TOKEN = "twilio-token-abc"
TWILIO_URL = f"twilio://AC99:{TOKEN}@?from=%2B14155550000"
VONAGE_URL = "vonage://vkey:vsecret@?from=PassPost&signature_secret=sigsecret"
TWILIO_PATH = "/api/v1/sms/receipts/twilio"
VONAGE_PATH = "/api/v1/sms/receipts/vonage"


def _submitted_sms(provider_message_id: str) -> int:
    """A delivery in state ``submitted`` carrying ``provider_message_id``; its id."""
    with session_scope(get_settings().resolved_database_url) as session:
        wallet_pass = WalletPass(
            pass_type_identifier="pass.example.test",
            serial_number=provider_message_id,
            team_identifier="TEAM123456",
        )
        session.add(wallet_pass)
        session.flush()
        version = PassVersion(
            pass_id=wallet_pass.id,
            version=1,
            content=b"PK",
            pass_json="{}",
            sha256=hashlib.sha256(b"PK").hexdigest(),
            size=2,
        )
        session.add(version)
        session.flush()
        request = DistributionRequest(
            pass_id=wallet_pass.id, pass_version_id=version.id, integration_config="{}"
        )
        session.add(request)
        session.flush()
        token = secrets.new_token()
        holder = PassHolder(
            request_id=request.id,
            pass_id=wallet_pass.id,
            audience_id="1",
            link_hash=secrets.token_hash(token),
            link_token_enc=secrets.encrypt(token),
        )
        session.add(holder)
        session.flush()
        delivery = Delivery(
            request_id=request.id,
            holder_id=holder.id,
            channel=Channel.SMS,
            state=DeliveryState.SUBMITTED,
            provider_message_id=provider_message_id,
        )
        session.add(delivery)
        session.flush()
        return delivery.id


def _state(delivery_id: int) -> tuple[str, str | None]:
    with session_scope(get_settings().resolved_database_url) as session:
        delivery = session.scalars(select(Delivery).where(Delivery.id == delivery_id)).one()
        return delivery.state, delivery.last_error


def _twilio_form(sid: str, status: str, **extra: str) -> dict[str, str]:
    return {
        "AccountSid": "AC99",
        "ApiVersion": "2010-04-01",
        "From": "+14155550000",
        "To": "+14155552671",
        "MessageSid": sid,
        "SmsSid": sid,
        "MessageStatus": status,
        "SmsStatus": status,
        **extra,
    }


def test_twilio_callback_with_a_valid_signature_marks_delivered(client_with: MakeClient) -> None:
    client = client_with(sms_url=TWILIO_URL, public_url="https://pp.example/")
    delivered = _submitted_sms("SM" + "a" * 32)
    failed = _submitted_sms("SM" + "b" * 32)
    for sid, status, extra in (
        ("SM" + "a" * 32, "sent", {}),
        ("SM" + "a" * 32, "delivered", {}),
        ("SM" + "b" * 32, "undelivered", {"ErrorCode": "30003"}),
    ):
        form = _twilio_form(sid, status, **extra)
        signature = twilio_signature("https://pp.example" + TWILIO_PATH, form.items(), TOKEN)
        response = client.post(TWILIO_PATH, data=form, headers={"X-Twilio-Signature": signature})
        assert response.status_code == 200, response.text
    assert _state(delivered) == (DeliveryState.DELIVERED, None)
    assert _state(failed) == (DeliveryState.UNDELIVERED, "twilio undelivered, error 30003")


def test_twilio_signature_over_the_url_as_received_is_accepted(client_with: MakeClient) -> None:
    client = client_with(sms_url=TWILIO_URL, public_url="https://elsewhere.example")
    delivery = _submitted_sms("SM" + "c" * 32)
    form = _twilio_form("SM" + "c" * 32, "delivered")
    signature = twilio_signature("http://testserver" + TWILIO_PATH, form.items(), TOKEN)
    response = client.post(TWILIO_PATH, data=form, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 200
    assert response.json() == {"received": True, "final": True, "matched": True}
    assert _state(delivery)[0] == DeliveryState.DELIVERED


def test_twilio_callback_with_a_bad_signature_is_403_and_changes_nothing(
    client_with: MakeClient,
) -> None:
    client = client_with(sms_url=TWILIO_URL, public_url="https://pp.example")
    delivery = _submitted_sms("SM" + "d" * 32)
    form = _twilio_form("SM" + "d" * 32, "delivered")
    forged = twilio_signature("https://pp.example" + TWILIO_PATH, form.items(), "not-the-token")
    tampered = twilio_signature(
        "https://pp.example" + TWILIO_PATH, {**form, "MessageStatus": "sent"}.items(), TOKEN
    )
    for headers in ({"X-Twilio-Signature": forged}, {"X-Twilio-Signature": tampered}, {}):
        response = client.post(TWILIO_PATH, data=form, headers=headers)
        assert response.status_code == 403
        assert response.json()["errorCode"] == "INVALID_SIGNATURE"
    assert _state(delivery)[0] == DeliveryState.SUBMITTED


def test_vonage_receipts_by_get_form_and_json(client_with: MakeClient) -> None:
    client = client_with(sms_url=VONAGE_URL)
    ids = {name: _submitted_sms(f"0A0000000{n}") for n, name in enumerate(("get", "form", "json"))}
    token = receipt_token("vkey", "vsecret")
    base = {
        "msisdn": "14155552671",
        "to": "PassPost",
        "network-code": "310004",
        "err-code": "0",
        "price": "0.03330000",
        "scts": "2001011400",
        "message-timestamp": "2020-01-01 12:00:00",
        "api-key": "vkey",
        "client-ref": "delivery-1",
    }
    got = client.get(
        VONAGE_PATH,
        params={**base, "messageId": "0A00000000", "status": "delivered", "token": token},
    )
    assert got.status_code == 200, got.text
    posted = client.post(
        f"{VONAGE_PATH}?token={token}",
        data={**base, "messageId": "0A00000001", "status": "expired", "err-code": "5"},
    )
    assert posted.status_code == 200
    # No token, but signed with the account's signature secret (md5hash).
    signed = {**base, "messageId": "0A00000002", "status": "delivered", "timestamp": "1700000000"}
    signed["sig"] = vonage_signature(signed, "sigsecret")
    as_json = client.post(VONAGE_PATH, json=signed)
    assert as_json.status_code == 200, as_json.text
    assert _state(ids["get"])[0] == DeliveryState.DELIVERED
    assert _state(ids["form"]) == (DeliveryState.UNDELIVERED, "vonage expired, err-code 5")
    assert _state(ids["json"])[0] == DeliveryState.DELIVERED


def test_vonage_receipt_without_valid_token_or_signature_is_403(client_with: MakeClient) -> None:
    client = client_with(sms_url=VONAGE_URL)
    delivery = _submitted_sms("0A0000000F")
    params = {"messageId": "0A0000000F", "status": "delivered", "timestamp": "1700000000"}
    forged = {**params, "sig": vonage_signature(params, "wrong-secret")}
    for query in ({**params, "token": "guess"}, forged, params):
        response = client.get(VONAGE_PATH, params=query)
        assert response.status_code == 403
        assert response.json()["errorCode"] == "INVALID_SIGNATURE"
    assert _state(delivery)[0] == DeliveryState.SUBMITTED


def test_receipts_for_a_provider_that_is_not_configured_are_404(client_with: MakeClient) -> None:
    client = client_with(sms_url=VONAGE_URL)
    response = client.post(TWILIO_PATH, data=_twilio_form("SM1", "delivered"))
    assert response.status_code == 404
    assert response.json()["errorCode"] == "SMS_RECEIPTS_NOT_CONFIGURED"


# -- malformed input (issue 9, finding 5): a 4xx, never a 500 ------------------------------


def test_non_ascii_twilio_signature_is_403(client_with: MakeClient) -> None:
    client = client_with(sms_url=TWILIO_URL, public_url="https://pp.example")
    delivery = _submitted_sms("SM" + "e" * 32)
    form = _twilio_form("SM" + "e" * 32, "delivered")
    for signature in ("sïgnature".encode(), "签名".encode(), b"\xff\xfe"):
        response = client.post(TWILIO_PATH, data=form, headers={"X-Twilio-Signature": signature})
        assert response.status_code == 403, response.text
        assert response.json()["errorCode"] == "INVALID_SIGNATURE"
    assert _state(delivery)[0] == DeliveryState.SUBMITTED


def test_non_ascii_vonage_token_or_sig_is_403(client_with: MakeClient) -> None:
    client = client_with(sms_url=VONAGE_URL)
    delivery = _submitted_sms("0A000000E0")
    params = {"messageId": "0A000000E0", "status": "delivered"}
    for extra in ({"token": "jéton"}, {"sig": "sïg"}, {"token": "令牌", "sig": "签名"}):
        for response in (
            client.get(VONAGE_PATH, params={**params, **extra}),
            client.post(VONAGE_PATH, json={**params, **extra}),
        ):
            assert response.status_code == 403, response.text
            assert response.json()["errorCode"] == "INVALID_SIGNATURE"
    assert _state(delivery)[0] == DeliveryState.SUBMITTED


def test_deeply_nested_vonage_json_is_400(client_with: MakeClient) -> None:
    client = client_with(sms_url=VONAGE_URL)
    for depth in (100, 5000):
        body = b'{"messageId": ' + b"[" * depth + b"]" * depth + b"}"
        response = client.post(
            VONAGE_PATH, content=body, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 400, response.text
        assert response.json()["errorCode"] == "JSON_TOO_DEEP"
