"""``prepare_pass``: re-sign with passpost's web service when passpost holds the certificate.

The certificate comes from ``passpost.certs`` (``signing_material_for``), as in an import.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from passpost import pkpass
from passpost.certs import service
from passpost.config import Settings
from passpost.db import session_scope
from passpost.passes.models import WalletPass
from passpost.passes.signing import PreparedPass, prepare_pass
from tests.support.passes import (
    PASS_TYPE_ID,
    PASSPHRASE,
    TEAM_ID,
    TestPki,
    make_p12,
    make_pki,
    signed_pass,
)

PUBLIC = "https://passes.example.com/"


@pytest.fixture
def settings(settings_env: Path) -> Settings:
    return Settings(public_url=PUBLIC, data_dir=settings_env)


def validated(data: bytes, pki: TestPki) -> pkpass.Report:
    # No bundled intermediates: the chain must come from the signature itself.
    report = pkpass.validate(data, trust_anchors=[pki.root], intermediates=[])
    assert report.ok, [f.to_dict() for f in report.findings]
    return report


def prepare(
    session: Session,
    data: bytes,
    pki: TestPki,
    settings: Settings,
    existing: WalletPass | None = None,
) -> PreparedPass:
    report = validated(data, pki)
    assert report.identity is not None
    signing = service.signing_material_for(
        session,
        pass_type_identifier=report.identity.pass_type_identifier,
        team_identifier=report.identity.team_identifier,
    )
    return prepare_pass(
        content=data,
        report=report,
        signing=signing,
        existing_token=existing.authentication_token if existing else None,
        settings=settings,
    )


def test_with_a_certificate_the_pass_is_rewritten_and_re_signed(
    database_url: str, pki: TestPki, settings: Settings
) -> None:
    upload = signed_pass(
        pki, webServiceURL="https://elsewhere.example/api", authenticationToken="t" * 20
    )
    with session_scope(database_url) as session:
        service.add_certificate(
            session, name="main", p12=make_p12(pki), passphrase=PASSPHRASE, created_by=None
        )
        prepared = prepare(session, upload, pki, settings)
    assert prepared.updatable is True
    assert prepared.content != upload
    token = prepared.authentication_token
    assert token is not None and len(token) >= 32
    report = validated(prepared.content, pki)
    assert report.pass_json is not None
    assert report.pass_json["webServiceURL"] == "https://passes.example.com/api"
    assert report.pass_json["authenticationToken"] == token
    assert prepared.pass_json == report.pass_json
    # Everything else is kept: the other fields and files.
    original = validated(upload, pki)
    assert original.pass_json is not None
    assert report.pass_json["barcodes"] == original.pass_json["barcodes"]
    assert report.files["icon.png"] == original.files["icon.png"]
    assert report.signer == pki.leaf
    assert pki.intermediate in report.chain


def test_the_token_is_stable_across_versions(
    database_url: str, pki: TestPki, settings: Settings
) -> None:
    with session_scope(database_url) as session:
        service.add_certificate(
            session, name="main", p12=make_p12(pki), passphrase=PASSPHRASE, created_by=None
        )
        first = prepare(session, signed_pass(pki), pki, settings)
        existing = WalletPass(
            pass_type_identifier=PASS_TYPE_ID,
            serial_number="SERIAL-1",
            team_identifier=TEAM_ID,
            authentication_token=first.authentication_token,
        )
        second = prepare(session, signed_pass(pki, description="v2"), pki, settings, existing)
        third = prepare(session, signed_pass(pki, description="v3"), pki, settings)
    assert second.authentication_token == first.authentication_token
    assert validated(second.content, pki).pass_json["authenticationToken"] == (  # type: ignore[index]
        first.authentication_token
    )
    # A new pass gets a new token.
    assert third.authentication_token != first.authentication_token


def test_without_a_certificate_the_upload_is_kept(
    database_url: str, pki: TestPki, settings: Settings
) -> None:
    elsewhere = signed_pass(
        pki, webServiceURL="https://elsewhere.example/api", authenticationToken="t" * 20
    )
    here = signed_pass(
        pki, webServiceURL="https://passes.example.com/api", authenticationToken="u" * 20
    )
    no_service = signed_pass(pki)
    with session_scope(database_url) as session:
        kept = prepare(session, elsewhere, pki, settings)
        ours = prepare(session, here, pki, settings)
        plain = prepare(session, no_service, pki, settings)
    assert kept.content == elsewhere and kept.updatable is False
    assert kept.authentication_token == "t" * 20
    assert ours.content == here and ours.updatable is True
    assert ours.authentication_token == "u" * 20
    assert plain.content == no_service and plain.updatable is False
    assert plain.authentication_token is None


def test_certificates_of_other_types_teams_or_expired_are_not_used(
    database_url: str, pki: TestPki, settings: Settings
) -> None:
    other_type = make_pki(pass_type_id="pass.dev.passpost.other")
    other_team = make_pki(team_id="OTHERTEAM1")
    expired = make_pki(not_before=datetime.now(UTC) - timedelta(days=400), leaf_days=30)
    upload = signed_pass(pki)
    with session_scope(database_url) as session:
        for chain in (other_type, other_team, expired):
            service.add_certificate(
                session, name="x", p12=make_p12(chain), passphrase=PASSPHRASE, created_by=None
            )
        prepared = prepare(session, upload, pki, settings)
    assert prepared.content == upload
    assert prepared.updatable is False


def test_the_newest_valid_certificate_signs(
    database_url: str, pki: TestPki, settings: Settings
) -> None:
    renewed = make_pki(leaf_days=800)  # same pass type and team, expires later
    with session_scope(database_url) as session:
        for chain in (pki, renewed):
            service.add_certificate(
                session, name="x", p12=make_p12(chain), passphrase=PASSPHRASE, created_by=None
            )
        prepared = prepare(session, signed_pass(pki), pki, settings)
    report = pkpass.validate(prepared.content, trust_anchors=[renewed.root], intermediates=[])
    assert report.ok
    assert report.signer == renewed.leaf
