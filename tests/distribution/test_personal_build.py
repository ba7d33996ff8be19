"""The lazy build of a personal pass (SPEC §11): once per holder, even when raced."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select

from passpost.certs import service as certs
from passpost.config import Settings
from passpost.db import session_scope
from passpost.distribution.models import PassHolder
from passpost.distribution.personal import build_personal_pass
from passpost.distribution.schemas import parse_pass_content
from passpost.distribution.service import import_pass
from passpost.errors import BadRequest
from passpost.passes.models import PassKind, PassVersion, WalletPass
from tests.support.passes import (
    ICON_PNG,
    PASSPHRASE,
    TestPki,
    make_p12,
    make_pki,
    pass_json,
    zip_bytes,
)


@pytest.fixture(scope="module")
def pki() -> TestPki:
    return make_pki()


def template(**extra: object) -> bytes:
    body = pass_json(
        serial="T-9",
        generic={"primaryFields": [{"key": "seat", "value": "##seat##"}]},
        barcodes=[
            {
                "format": "PKBarcodeFormatQR",
                "message": "##Serial Number##",
                "messageEncoding": "iso-8859-1",
            }
        ],
        **extra,
    )
    return zip_bytes({"pass.json": json.dumps(body).encode(), "icon.png": ICON_PNG})


def content(*recipients: dict) -> object:
    return parse_pass_content(json.dumps({"recipients": {"recipient": list(recipients)}}))


@pytest.fixture
def settings(settings_env: Path, database_url: str) -> Settings:
    return Settings(
        public_url="https://p.example", data_dir=settings_env, database_url=database_url
    )


def _import(database_url: str, settings: Settings, *recipients: dict) -> int:
    with session_scope(database_url, write=True) as session:
        result = import_pass(
            session,
            settings=settings,
            upload=template(),
            content=content(*recipients),  # type: ignore[arg-type]
            created_by="t",
        )
    return result.request_id


def test_without_a_certificate_a_template_is_refused(database_url: str, settings: Settings) -> None:
    with pytest.raises(BadRequest) as caught:
        _import(database_url, settings, {"email": "a@example.com", "fields": {"seat": "1"}})
    assert caught.value.error_code == "NO_SIGNING_CERTIFICATE"


def test_concurrent_first_downloads_build_one_pass(
    database_url: str, settings: Settings, pki: TestPki
) -> None:
    with session_scope(database_url) as session:
        certs.add_certificate(
            session, name="c", p12=make_p12(pki), passphrase=PASSPHRASE, created_by=None
        )
    request_id = _import(
        database_url,
        settings,
        {"email": "a@example.com", "fields": {"seat": "1A"}},
        {"email": "b@example.com", "fields": {"seat": "1B", "serialNumber": "CUSTOM-1"}},
        {"email": "c@example.com", "fields": {"seat": "1C", "serialNumber": "CUSTOM-1"}},
    )
    with session_scope(database_url) as session:
        holders = list(
            session.scalars(
                select(PassHolder)
                .where(PassHolder.request_id == request_id)
                .order_by(PassHolder.id)
            )
        )
    first, custom, duplicate = holders
    assert first.serial_number == f"T-9-{first.id}"
    assert custom.serial_number == "CUSTOM-1"
    assert duplicate.serial_number is None  # the serial was taken: that holder is refused

    built: list[int] = []
    errors: list[BaseException] = []

    def download() -> None:
        try:
            with session_scope(database_url, write=True) as session:
                built.append(build_personal_pass(session, settings=settings, holder_id=first.id))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=download) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(set(built)) == 1
    with session_scope(database_url) as session:
        wallet_pass = session.get(WalletPass, built[0])
        assert wallet_pass is not None and wallet_pass.kind == PassKind.PERSONAL
        assert wallet_pass.serial_number == first.serial_number
        versions = session.scalar(
            select(func.count()).select_from(PassVersion).where(PassVersion.pass_id == built[0])
        )
        assert versions == 1
        stored = json.loads(
            session.scalar(select(PassVersion.pass_json).where(PassVersion.pass_id == built[0]))
        )
    assert stored["generic"]["primaryFields"][0]["value"] == "1A"
    assert stored["barcodes"][0]["message"] == first.serial_number
    assert stored["webServiceURL"] == "https://p.example/api"


def test_a_change_with_notify_sends_the_update_messages_to_the_holder(
    database_url: str, settings: Settings, pki: TestPki
) -> None:
    from passpost.distribution.changes import PassChange, change_pass
    from passpost.distribution.jobs import notify_holders
    from passpost.distribution.models import Delivery, DistributionRequest

    with session_scope(database_url) as session:
        certs.add_certificate(
            session, name="c", p12=make_p12(pki), passphrase=PASSPHRASE, created_by=None
        )
    body = {
        "recipients": {"recipient": [{"email": "a@example.com", "fields": {"seat": "1A"}}]},
        "passIntegrationConfig": {
            "passIssueNotificationDetails": [
                {"channel": "EMAIL", "messageContent": "##Email Pass Link##"}
            ],
            "passUpdateNotificationDetails": [
                {"channel": "EMAIL", "subject": "Changed", "messageContent": "##Email Pass Link##"}
            ],
        },
    }
    with session_scope(database_url, write=True) as session:
        result = import_pass(
            session,
            settings=settings,
            upload=template(),
            content=parse_pass_content(json.dumps(body)),
            created_by="t",
        )
    with session_scope(database_url, write=True) as session:
        (holder,) = session.scalars(
            select(PassHolder).where(PassHolder.request_id == result.request_id)
        )
        pass_id = build_personal_pass(session, settings=settings, holder_id=holder.id)
    with session_scope(database_url, write=True) as session:
        changed = change_pass(
            session,
            settings=settings,
            pass_id=pass_id,
            change=PassChange(fields={"seat": "2B"}, changeMessage="Seat %@", notify=True),
        )
        update_id = notify_holders(session, pass_id=pass_id, created_by="t")
    assert changed.version == 2 and update_id is not None
    with session_scope(database_url) as session:
        update = session.get(DistributionRequest, update_id)
        assert update is not None and update.kind == "update"
        (copy,) = session.scalars(select(PassHolder).where(PassHolder.request_id == update_id))
        assert copy.personal_pass_id == pass_id and copy.notification == "update"
        (delivery,) = session.scalars(select(Delivery).where(Delivery.holder_id == copy.id))
        assert (delivery.channel, delivery.state) == ("EMAIL", "queued")
        stored = json.loads(
            session.scalar(
                select(PassVersion.pass_json)
                .where(PassVersion.pass_id == pass_id)
                .order_by(PassVersion.version.desc())
            )
            or "{}"
        )
    field = stored["generic"]["primaryFields"][0]
    assert (field["value"], field["changeMessage"]) == ("2B", "Seat %@")
