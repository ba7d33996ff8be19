"""``/api/v1/mailconfig`` and ``/api/v1/smsconfig``: operators only, secrets write-only and
encrypted at rest, stored settings overriding the environment."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from passpost.channels import service
from passpost.channels.base import EmailMessage, SmsMessage
from passpost.channels.email import SmtpSender
from passpost.channels.schemas import SmsConfigIn
from passpost.channels.sms import make_sms_provider
from passpost.config import get_settings
from passpost.db import session_scope
from tests.conftest import MakeClient
from tests.support.app import basic
from tests.support.smtp import authenticator_for, start_peer


def _raw_row(channel: str) -> dict[str, Any] | None:
    url = get_settings().resolved_database_url
    with session_scope(url) as session:
        row = session.execute(
            text("SELECT provider, properties, secrets FROM channel_config WHERE channel = :c"),
            {"c": channel},
        ).first()
        return (
            None
            if row is None
            else {"provider": row[0], "properties": str(row[1]), "secrets": row[2]}
        )


def _effective() -> tuple[Any, str | None, int]:
    settings = get_settings()
    with session_scope(settings.resolved_database_url) as session:
        return (
            service.effective_smtp_config(session, settings),
            service.effective_sms_url(session, settings),
            service.effective_sms_max_chars(session, settings),
        )


MAIL = {
    "protocol": "SMTP",
    "host": "127.0.0.1",
    "port": 2525,
    "defaultSenderId": "noreply@pp.example",
    "securityMode": "",
    "authRequired": True,
    "authUser": "mailer",
    "authPwd": "Sup3r-Secret-Pw",
    "unsubscribeAllowed": False,
    "customProps": [{"configKey": "mail.smtp.ehlo", "configValue": "true"}],
}

TWILIO = {
    "provider": "TWILIO",
    "inboundSecurityEnabled": "true",
    "properties": [
        {"key": "Account SID", "value": "AC0123"},
        {"key": "Auth Token", "value": "tw-token-XYZ-987"},
        {"key": "Header Content Type", "value": "application/x-www-form-urlencoded"},
        {"key": "Maximum Character Limit", "value": "140"},
        {"key": "From", "value": "+14155550000"},
    ],
}


ENDPOINTS = [
    (method, path)
    for path in ("/api/v1/mailconfig", "/api/v1/smsconfig")
    for method in ("GET", "POST", "DELETE")
]


def test_config_endpoints_need_an_operator(client_with: MakeClient) -> None:
    client = client_with()
    for method, path in ENDPOINTS:
        response = client.request(method, path, json={})
        assert response.status_code == 401, (method, path)
        assert response.json()["errorCode"]
        bad = client.request(method, path, json={}, headers=basic(password="wrong"))
        assert bad.status_code == 401, (method, path)


def test_mail_config_from_the_environment_masks_the_password(client_with: MakeClient) -> None:
    client = client_with(smtp_url="smtp://mailer:envpass@mail.example:587?starttls=1")
    body = client.get("/api/v1/mailconfig", headers=basic()).json()
    assert body["source"] == "environment"
    assert (body["host"], body["port"], body["securityMode"], body["protocol"]) == (
        "mail.example",
        587,
        "TLS",
        "SMTP",
    )
    assert body["authUser"] == "mailer"
    assert body["authPwd"] == "********"
    assert "envpass" not in str(body)


@pytest.mark.parametrize(
    ("url", "provider", "shown"),
    [
        (
            "twilio://AC0123:tw-env-secret@?from=%2B14155550000",
            "TWILIO",
            {"Account SID": "AC0123", "Auth Token": "********", "From": "+14155550000"},
        ),
        (
            "vonage://key123:vo-env-secret@?from=passpost&signature_secret=sig-env-secret",
            "NEXMO",
            {"API Key": "key123", "API Secret": "********", "Signature Secret": "********"},
        ),
        (
            "smpp://smppuser:smpp-env-secret@smsc.example:2776?source=PASSPOST",
            "SMPP",
            {"System ID": "smppuser", "Password": "********", "Port": "2776"},
        ),
    ],
    ids=["twilio", "vonage", "smpp"],
)
def test_sms_config_from_the_environment_masks_every_secret(
    client_with: MakeClient, url: str, provider: str, shown: dict[str, str]
) -> None:
    client = client_with(sms_url=url, sms_max_chars="300")
    response = client.get("/api/v1/smsconfig", headers=basic())
    assert response.status_code == 200
    body = response.json()
    assert (body["source"], body["provider"]) == ("environment", provider)
    properties = {p["key"]: p["value"] for p in body["properties"]}
    assert properties.items() >= {**shown, "Maximum Character Limit": "300"}.items()
    assert "env-secret" not in response.text


def test_nothing_configured(client_with: MakeClient) -> None:
    client = client_with()
    assert client.get("/api/v1/mailconfig", headers=basic()).json()["source"] == "none"
    assert client.get("/api/v1/smsconfig", headers=basic()).json()["source"] == "none"
    assert _effective() == (None, None, 459)


def test_mail_config_is_stored_encrypted_and_never_returned(client_with: MakeClient) -> None:
    client = client_with(smtp_url="smtp://env.example")
    saved = client.post("/api/v1/mailconfig", json=MAIL, headers=basic())
    assert saved.status_code == 200, saved.text
    assert saved.json()["message"] == "Mail Configuration saved successfully"
    body = client.get("/api/v1/mailconfig", headers=basic()).json()
    assert body["source"] == "api"
    assert body["host"] == "127.0.0.1" and body["authUser"] == "mailer"
    assert body["authPwd"] == "********"
    assert body["customProps"] == MAIL["customProps"]
    raw = _raw_row("EMAIL")
    assert raw is not None and raw["secrets"]
    assert "Sup3r-Secret-Pw" not in raw["properties"] + raw["secrets"]
    smtp, _, _ = _effective()
    assert (smtp.host, smtp.port, smtp.security, smtp.username, smtp.password) == (
        "127.0.0.1",
        2525,
        "none",
        "mailer",
        "Sup3r-Secret-Pw",
    )
    # Posting back what GET showed (masked) or leaving the password out keeps it.
    again = {**body, "host": "127.0.0.2"}
    assert client.post("/api/v1/mailconfig", json=again, headers=basic()).status_code == 200
    without = {k: v for k, v in MAIL.items() if k != "authPwd"}
    assert client.post("/api/v1/mailconfig", json=without, headers=basic()).status_code == 200
    assert _effective()[0].password == "Sup3r-Secret-Pw"
    # Deleting the stored configuration brings the environment back.
    assert client.delete("/api/v1/mailconfig", headers=basic()).status_code == 200
    assert _effective()[0].host == "env.example"
    assert client.delete("/api/v1/mailconfig", headers=basic()).status_code == 404


BAD_MAIL: list[tuple[dict[str, Any], str]] = [
    ({"protocol": "POP3"}, "INVALID_MAIL_PROTOCOL"),
    ({"securityMode": "QUANTUM"}, "INVALID_SECURITY_MODE"),
    ({"defaultSenderId": "not-an-address"}, "INVALID_SENDER"),
    ({"port": 70000}, "INVALID_MAIL_PORT"),
    ({"authUser": ""}, "MISSING_AUTH_USER"),
    ({"authPwd": ""}, "MISSING_AUTH_PASSWORD"),
    ({"host": ""}, "INVALID_REQUEST"),
    ({"port": "abc"}, "INVALID_REQUEST"),
]


def test_bad_mail_config_is_a_400_and_stores_nothing(client_with: MakeClient) -> None:
    client = client_with()
    for change, code in BAD_MAIL:
        response = client.post("/api/v1/mailconfig", json={**MAIL, **change}, headers=basic())
        assert response.status_code == 400, change
        body = response.json()
        assert (body["id"], body["errorCode"]) == ("-1", code), change
        assert body["message"]
    assert _raw_row("EMAIL") is None


SECURITY_MODES = [
    ("SMTPS", "", 465, "ssl"),
    ("SMTP", "SSL", 465, "ssl"),
    ("SMTP", "TLS", 587, "starttls"),
    ("SMTP/SMTPS", "TLS/SSL", 465, "ssl"),
    ("SMTP/SMTPS", "TLS/SSL", 587, "starttls"),
    ("smtp", "none", 25, "none"),
]


def test_security_modes(client_with: MakeClient) -> None:
    client = client_with()
    for protocol, mode, port, security in SECURITY_MODES:
        body = {**MAIL, "protocol": protocol, "securityMode": mode, "port": port}
        assert client.post("/api/v1/mailconfig", json=body, headers=basic()).status_code == 200
        assert _effective()[0].security == security, (protocol, mode, port)


def test_stored_mail_config_really_sends(client_with: MakeClient) -> None:
    peer = start_peer(
        authenticator=authenticator_for("mailer", "Sup3r-Secret-Pw"),
        auth_required=True,
        auth_require_tls=False,
    )
    try:
        client = client_with(smtp_url="smtp://127.0.0.1:1")  # the environment points nowhere
        body = {**MAIL, "port": peer.port, "defaultSenderName": "Pass Post"}
        assert client.post("/api/v1/mailconfig", json=body, headers=basic()).status_code == 200
        smtp = _effective()[0]

        async def send() -> None:
            sender = SmtpSender(smtp)
            await sender.send(
                EmailMessage(key="x1", to="a@example.com", subject="s", html="<p>h</p>", text="h")
            )
            await sender.aclose()

        asyncio.run(send())
    finally:
        peer.controller.stop()
    [received] = peer.handler.messages
    assert received.login == "mailer"
    assert received.sender == "noreply@pp.example"
    assert b"From: Pass Post <noreply@pp.example>" in received.content


def test_sms_config_twilio_in_the_original_shape(client_with: MakeClient) -> None:
    client = client_with(sms_url="log:///tmp/never.jsonl")
    saved = client.post("/api/v1/smsconfig", json=TWILIO, headers=basic())
    assert saved.status_code == 200, saved.text
    assert saved.json()["message"] == "Details updated successfully"
    body = client.get("/api/v1/smsconfig", headers=basic()).json()
    assert body["provider"] == "TWILIO" and body["protocol"] == "HTTP"
    values = {p["key"]: p["value"] for p in body["properties"]}
    assert values["Auth Token"] == "********"
    assert values["Account SID"] == "AC0123"
    assert "tw-token-XYZ-987" not in str(body)
    raw = _raw_row("SMS")
    assert raw is not None and "tw-token-XYZ-987" not in raw["properties"] + raw["secrets"]
    _, url, limit = _effective()
    assert url == "twilio://AC0123:tw-token-XYZ-987@?from=%2B14155550000"
    assert limit == 140
    # The masked value posted back keeps the token.
    assert client.post("/api/v1/smsconfig", json=body, headers=basic()).status_code == 200
    assert _effective()[1] == url
    assert client.delete("/api/v1/smsconfig", headers=basic()).status_code == 200
    assert _effective()[1] == "log:///tmp/never.jsonl"


SMS_PROVIDERS: list[tuple[dict[str, Any], str]] = [
    (
        {
            "provider": "NEXMO",
            "properties": [
                {"key": "API Key", "value": "qAsds23"},
                {"key": "API Secret", "value": "zAew123_aPd"},
                {"key": "From", "value": "PassPost"},
                {"key": "Maximum Character Limit", "value": "140"},
                {"key": "inboundWhitelistIPs", "value": "1-255.1-255.1-255.1-255"},
            ],
        },
        "vonage://qAsds23:zAew123_aPd@?from=PassPost",
    ),
    (
        {
            "protocol": "SMPP",
            "provider": "NEXMO",
            "properties": [
                {"key": "Account SID", "value": "smppclient1"},
                {"key": "Secret Key", "value": "pw:/x"},
                {"key": "Sender ID", "value": "1234"},
                {"key": "Host URL", "value": "localhost"},
                {"key": "Port", "value": "2775"},
            ],
        },
        "smpp://smppclient1:pw%3A%2Fx@localhost:2775?source=1234",
    ),
]


def test_sms_config_providers(client_with: MakeClient) -> None:
    client = client_with()
    for body, url in SMS_PROVIDERS:
        response = client.post("/api/v1/smsconfig", json=body, headers=basic())
        assert response.status_code == 200, response.text
        assert _effective()[1] == url
        shown = client.get("/api/v1/smsconfig", headers=basic()).json()
        secrets = [p for p in shown["properties"] if p["key"] in ("API Secret", "Secret Key")]
        assert all(p["value"] == "********" for p in secrets)
        assert "zAew123_aPd" not in str(shown) and "pw:/x" not in str(shown)


BAD_SMS: list[tuple[dict[str, Any], str]] = [
    ({"provider": "CARRIER-PIGEON", "properties": []}, "INVALID_SMS_PROVIDER"),
    (
        {"provider": "TWILIO", "properties": [{"key": "Account SID", "value": "AC1"}]},
        "MISSING_SMS_PROPERTY",
    ),
    (
        {
            **TWILIO,
            "properties": [
                *TWILIO["properties"],
                {"key": "Maximum Character Limit", "value": "x"},
            ],
        },
        "INVALID_SMS_PROPERTY",
    ),
    ({"properties": []}, "INVALID_REQUEST"),
]


def test_bad_sms_config_is_a_400_and_stores_nothing(client_with: MakeClient) -> None:
    client = client_with()
    for body, code in BAD_SMS:
        response = client.post("/api/v1/smsconfig", json=body, headers=basic())
        assert response.status_code == 400, body
        assert response.json()["errorCode"] == code, body
    assert _raw_row("SMS") is None


# -- the LOG provider's path (issue 9, finding 3) ----------------------------------------


def _log_config(path: str) -> dict[str, Any]:
    return {"provider": "LOG", "properties": [{"key": "Path", "value": path}]}


def test_sms_log_path_inside_the_data_directory_is_stored_and_written(
    client_with: MakeClient, settings_env: Path
) -> None:
    client = client_with()
    root = settings_env.resolve()
    for given, stored in (
        ("sms/out.jsonl", root / "sms" / "out.jsonl"),
        (str(root / "other.jsonl"), root / "other.jsonl"),
        ("sms/../flat.jsonl", root / "flat.jsonl"),
    ):
        response = client.post("/api/v1/smsconfig", json=_log_config(given), headers=basic())
        assert response.status_code == 200, response.text
        assert _effective()[1] == f"log://{stored}"
    url = _effective()[1]
    assert url is not None
    provider = make_sms_provider(url)
    asyncio.run(provider.send(SmsMessage(to="+14155552671", text="hello", key="k1")))
    assert json.loads((root / "flat.jsonl").read_text())["text"] == "hello"


def test_sms_log_path_outside_the_data_directory_is_400_and_creates_nothing(
    client_with: MakeClient, settings_env: Path, tmp_path: Path
) -> None:
    client = client_with()
    settings_env.mkdir(parents=True, exist_ok=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (settings_env / "link").symlink_to(outside)
    saved = client.post("/api/v1/smsconfig", json=_log_config("ok.jsonl"), headers=basic())
    assert saved.status_code == 200
    for path in (
        str(tmp_path / "home" / ".bashrc"),
        "/etc/cron.d/passpost",
        "../escaped/.bashrc",
        "sms/../../escaped.jsonl",
        "link/via-symlink.jsonl",
        ".",
        "sms/",
    ):
        response = client.post("/api/v1/smsconfig", json=_log_config(path), headers=basic())
        assert response.status_code == 400, (path, response.text)
        body = response.json()
        assert body["errorCode"] == "SMS_LOG_PATH_OUTSIDE_DATA_DIR" and body["id"] == "-1"
    assert _effective()[1] == f"log://{settings_env.resolve() / 'ok.jsonl'}"  # unchanged
    assert not (tmp_path / "home").exists() and not (tmp_path / "escaped").exists()
    assert list(outside.iterdir()) == []


def test_a_stored_log_path_outside_the_data_directory_is_not_used(
    client_with: MakeClient, tmp_path: Path
) -> None:
    client_with()
    settings = get_settings()
    with session_scope(settings.resolved_database_url) as session:
        # As an older passpost stored it, before paths were confined.
        service.save_sms_config(
            session,
            data=SmsConfigIn.model_validate(_log_config(str(tmp_path / "evil" / ".bashrc"))),
            data_dir=Path("/"),
        )
    assert _effective()[1] is None
    assert not (tmp_path / "evil").exists()


def test_sms_properties_with_secret_looking_names_are_write_only(
    client_with: MakeClient,
) -> None:
    client = client_with()
    config = {
        **TWILIO,
        "properties": [
            *TWILIO["properties"],
            {"key": "API Password", "value": "api-pw-4711"},
            {"key": "Client Private Key", "value": "pk-0815"},
        ],
    }
    assert client.post("/api/v1/smsconfig", json=config, headers=basic()).status_code == 200
    body = client.get("/api/v1/smsconfig", headers=basic()).json()
    values = {p["key"]: p["value"] for p in body["properties"]}
    assert values["API Password"] == values["Client Private Key"] == "********"
    raw = _raw_row("SMS")
    assert raw is not None
    for secret in ("api-pw-4711", "pk-0815"):
        assert secret not in str(body) and secret not in raw["properties"]


def test_an_smpp_configuration_the_worker_cannot_bind_with_is_a_400(
    client_with: MakeClient,
) -> None:
    client = client_with()
    for key, value in (("Password", "123456789"), ("System ID", "a-system-id-of-20ch")):
        properties = {"System ID": "client1", "Password": "pw", "Host URL": "smsc.example"}
        properties[key] = value
        config = {
            "provider": "SMPP",
            "properties": [{"key": k, "value": v} for k, v in properties.items()],
        }
        response = client.post("/api/v1/smsconfig", json=config, headers=basic())
        assert response.status_code == 400, response.text
        assert response.json()["errorCode"] == "INVALID_SMS_CONFIG"
    assert _raw_row("SMS") is None
