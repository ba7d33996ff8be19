"""``rotate-key``: every stored secret re-encrypted under a new key and still readable;
download links keep opening; the old key is gone at the end."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient
from sqlalchemy import select

from passpost import secrets
from passpost.certs.models import PassCertificate
from passpost.channels.models import ChannelConfig
from passpost.config import get_settings
from passpost.db import session_scope
from passpost.distribution.models import PassHolder
from passpost.ops import keys
from tests.support.app import basic
from tests.support.passes import make_p12, shared_pki, signed_pass
from tests.support.service import email_content

PKI = shared_pki()


def _import(client: TestClient, serial: str, count: int) -> None:
    content = email_content([{"email": f"{serial.lower()}-{i}@example.com"} for i in range(count)])
    response = client.post(
        "/api/v1/message/pass/import",
        files={
            "passContent": (None, json.dumps(content)),
            "pkPass": ("p.pkpass", signed_pass(PKI, serial=serial), "application/octet-stream"),
        },
        headers=basic(),
    )
    assert response.status_code == 200, response.text


def _store_secrets(client: TestClient) -> None:
    sms = {
        "provider": "TWILIO",
        "properties": [
            {"key": "Account SID", "value": "AC0123456789"},
            {"key": "Auth Token", "value": "twilio-auth-token"},
            {"key": "From", "value": "+15550001"},
        ],
    }
    response = client.post("/api/v1/smsconfig", json=sms, headers=basic())
    assert response.status_code == 200, response.text
    p12 = make_p12(PKI, "p12 phrase")
    response = client.post(
        "/api/v1/passcerts",
        files={"passCert": ("c.p12", p12, "application/x-pkcs12")},
        data={"passCertPassPhrase": "p12 phrase", "certName": "test"},
        headers=basic(),
    )
    assert response.status_code == 200, response.text


def _plaintexts(url: str) -> dict[str, list[bytes | str]]:
    with session_scope(url) as session:
        holders = session.scalars(select(PassHolder.link_token_enc).order_by(PassHolder.id))
        configs = session.scalars(
            select(ChannelConfig.secrets).where(ChannelConfig.secrets.is_not(None))
        )
        certs = session.execute(
            select(PassCertificate.private_key_enc, PassCertificate.passphrase_enc)
        )
        return {
            "links": [secrets.open_link_token(h) for h in holders],
            "configs": [secrets.decrypt(c) for c in configs],
            "certs": [secrets.decrypt(v) for row in certs for v in row],
        }


def test_rotate_key_file_reencrypts_everything(client: TestClient, settings_env: Path) -> None:
    url = get_settings().resolved_database_url
    _store_secrets(client)
    _import(client, "ROT-1", 25)
    before = _plaintexts(url)
    assert len(before["links"]) == 25 and len(before["configs"]) == 1 and len(before["certs"]) == 2
    old = secrets.secret_keys()
    assert len(old) == 1

    rotation = keys.rotate(get_settings(), settle=0)

    new = secrets.secret_keys()
    assert len(new) == 1 and new != old
    assert (settings_env / "secret.key").read_bytes().strip() == new[0]
    assert sum(rotation.changed.values()) == 25 + 1 + 2
    assert rotation.survey.total("older") == 0 and rotation.survey.total("unreadable") == 0
    assert rotation.survey.counts["pass_holder.link_token_enc"]["primary"] == 25
    assert _plaintexts(url) == before  # every secret readable, every link the same
    with session_scope(url) as session:
        stored = session.scalar(
            select(ChannelConfig.secrets).where(ChannelConfig.secrets.is_not(None))
        )
    with pytest.raises(Exception):  # noqa: B017 - InvalidToken: the old key no longer fits
        Fernet(old[0]).decrypt(stored.encode())
    assert keys.survey(url).total("primary") == 28


def test_imports_while_rotating_lose_nothing(client: TestClient, settings_env: Path) -> None:
    url = get_settings().resolved_database_url
    _import(client, "ROT-0", 10)
    done = threading.Event()
    errors: list[BaseException] = []

    def keep_importing() -> None:
        n = 0
        while not done.is_set():
            try:
                _import(client, f"ROT-BG{n}", 20)
            except BaseException as exc:  # noqa: BLE001 - reported by the main thread
                errors.append(exc)
                return
            n += 1

    worker = threading.Thread(target=keep_importing)
    worker.start()
    try:
        keys.rotate(get_settings(), settle=1.2 * secrets.KEY_RELOAD_SECONDS)
    finally:
        done.set()
        worker.join(60)
    assert not errors, errors
    found = keys.survey(url)
    assert found.total("older") == 0 and found.total("unreadable") == 0
    assert found.counts["pass_holder.link_token_enc"]["primary"] >= 30
    assert len(_plaintexts(url)["links"]) == found.counts["pass_holder.link_token_enc"]["primary"]


def test_rotate_onto_configured_keys(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, settings_env: Path
) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    monkeypatch.setenv("PASSPOST_SECRET_KEY", old)
    get_settings.cache_clear()
    url = get_settings().resolved_database_url
    _store_secrets(client)
    _import(client, "ROT-2", 5)
    before = _plaintexts(url)
    with pytest.raises(keys.RotationError, match="one key"):
        keys.rotate(get_settings(), settle=0)

    monkeypatch.setenv("PASSPOST_SECRET_KEY", f"{new},{old}")  # the new key first, everywhere
    get_settings.cache_clear()
    assert keys.survey(url).total("older") == 8
    rotation = keys.rotate(get_settings(), settle=0)
    assert rotation.survey.total("older") == 0 and sum(rotation.changed.values()) == 8

    monkeypatch.setenv("PASSPOST_SECRET_KEY", new)  # the old key removed
    get_settings.cache_clear()
    assert _plaintexts(url) == before
