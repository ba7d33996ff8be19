"""Personal download links ``/p/<token>`` in-process (SQLite and PostgreSQL)."""

from __future__ import annotations

import base64
import re
from email.utils import format_datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from passpost import secrets
from passpost.config import Settings
from passpost.db import session_scope
from passpost.distribution import service
from passpost.distribution.models import Delivery, DeliveryState, PassHolder
from passpost.passes.models import PassVersion
from tests.support.ledger import deliveries, import_request
from tests.support.passes import TestPki

IPHONE = {"User-Agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)"}
DESKTOP = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64)", "Accept": "text/html,*/*"}


def link_of(settings: Settings, request_id: int) -> tuple[str, PassHolder]:
    with session_scope(settings.resolved_database_url) as session:
        holder = session.scalars(
            select(PassHolder).where(PassHolder.request_id == request_id)
        ).one()
    return "/p/" + secrets.open_link_token(holder.link_token_enc), holder


def latest_version(settings: Settings) -> PassVersion:
    with session_scope(settings.resolved_database_url) as session:
        return session.scalars(select(PassVersion).order_by(PassVersion.version.desc())).first()


def set_state(settings: Settings, state: str) -> None:
    with session_scope(settings.resolved_database_url) as session:
        session.execute(update(Delivery).values(state=state))


def test_the_link_serves_the_latest_version_and_records_the_open(
    client: TestClient, settings: Settings, pki: TestPki
) -> None:
    result = import_request(settings, pki, [{"email": "ada@example.com"}], sms=False)
    path, holder = link_of(settings, result.request_id)
    set_state(settings, DeliveryState.SUBMITTED)
    first = client.get(path, headers=IPHONE)
    assert first.status_code == 200
    version = latest_version(settings)
    assert first.content == version.content
    assert first.headers["content-type"] == "application/vnd.apple.pkpass"
    assert first.headers["etag"] == f'"{version.sha256}"'
    assert first.headers["last-modified"] == format_datetime(
        version.created_at.replace(microsecond=0), usegmt=True
    )
    assert first.headers["content-disposition"] == 'attachment; filename="S1.pkpass"'
    assert [d.state for d in deliveries(settings)] == [DeliveryState.OPENED]
    # A new version: the same link now serves it.
    import_request(settings, pki, [{"email": "bob@example.com"}], pass_fields={"description": "v2"})
    second = client.get(path, headers=IPHONE)
    assert second.content == latest_version(settings).content != first.content
    with session_scope(settings.resolved_database_url) as session:
        stored = session.get(PassHolder, holder.id)
        assert stored is not None and stored.opened_count == 2
        assert stored.first_opened_at is not None


def test_not_modified_answers_and_does_not_count(
    client: TestClient, settings: Settings, pki: TestPki
) -> None:
    result = import_request(settings, pki, [{"email": "ada@example.com"}])
    path, holder = link_of(settings, result.request_id)
    served = client.get(path)
    etag, modified = served.headers["etag"], served.headers["last-modified"]
    assert client.get(path, headers={"If-None-Match": etag}).status_code == 304
    assert client.get(path, headers={"If-None-Match": '"other", ' + etag}).status_code == 304
    assert client.get(path, headers={"If-Modified-Since": modified}).status_code == 304
    assert client.get(path, headers={"If-Modified-Since": "garbage"}).status_code == 200
    assert client.get(path, headers={"If-None-Match": '"other"'}).status_code == 200
    with session_scope(settings.resolved_database_url) as session:
        stored = session.get(PassHolder, holder.id)
        assert stored is not None and stored.opened_count == 3


def test_a_queued_delivery_stays_queued_when_the_link_is_opened(
    client: TestClient, settings: Settings, pki: TestPki
) -> None:
    result = import_request(settings, pki, [{"email": "ada@example.com"}])
    path, _ = link_of(settings, result.request_id)
    assert client.get(path).status_code == 200
    assert [d.state for d in deliveries(settings)] == [DeliveryState.QUEUED]


def test_a_desktop_browser_gets_a_page_and_the_download_link(
    client: TestClient, settings: Settings, pki: TestPki
) -> None:
    ada = [{"email": "ada@example.com"}]
    result = import_request(settings, pki, ada, pass_fields={"description": "<Gala>"})
    path, holder = link_of(settings, result.request_id)
    page = client.get(path, headers=DESKTOP)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "&lt;Gala&gt;" in page.text and "<Gala>" not in page.text
    assert "download=1" in page.text
    download = client.get(path + "?download=1", headers=DESKTOP)
    assert download.headers["content-type"] == "application/vnd.apple.pkpass"
    with session_scope(settings.resolved_database_url) as session:
        stored = session.get(PassHolder, holder.id)
        assert stored is not None and stored.opened_count == 1  # the page is not an open


def test_unknown_revoked_and_voided_links(
    client: TestClient, settings: Settings, pki: TestPki
) -> None:
    unknown = client.get("/p/" + secrets.new_token())
    assert unknown.status_code == 404 and unknown.json()["errorCode"] == "LINK_NOT_FOUND"
    result = import_request(settings, pki, [{"email": "ada@example.com"}])
    path, _ = link_of(settings, result.request_id)
    with session_scope(settings.resolved_database_url, write=True) as session:
        service.cancel_request(session, result.request_id)
    revoked = client.get(path)
    assert revoked.status_code == 410 and revoked.json()["errorCode"] == "PASS_REVOKED"
    bob = [{"email": "bob@example.com"}]
    other = import_request(settings, pki, bob, serial="V", pass_fields={"voided": True})
    voided_path, _ = link_of(settings, other.request_id)
    voided = client.get(voided_path)
    assert voided.status_code == 410 and voided.json()["errorCode"] == "PASS_VOIDED"


def test_link_tokens_made_in_bulk_are_as_strong_as_one_by_one(settings: Settings) -> None:
    tokens = secrets.new_tokens(200)
    assert len(set(tokens)) == 200
    # 24 random bytes each, URL-safe base64 without padding, as ``new_token`` makes one.
    assert {len(t) for t in tokens} == {len(secrets.new_token())} == {32}
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{32}", t) for t in tokens)
    sealed = secrets.seal_link_tokens([*tokens, tokens[0]])
    # Every token sealed under its own nonce (the same token twice is sealed differently),
    # authenticated with the primary key: it opens to the token, and a changed byte fails.
    assert len(set(sealed)) == 201
    assert [secrets.open_link_token(s) for s in sealed] == [*tokens, tokens[0]]
    assert all(secrets.reseal_link_token(s) is None for s in sealed)
    raw = bytearray(base64.urlsafe_b64decode(sealed[0]))
    raw[-1] ^= 1
    with pytest.raises(ValueError):
        secrets.open_link_token(base64.urlsafe_b64encode(bytes(raw)).decode())
