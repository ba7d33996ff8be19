"""Pushes for pass updates: the ledger, the queue task, a real HTTP/2 APNs server on loopback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from typer.testing import CliRunner

from passpost.certs import service as certs
from passpost.config import get_settings
from passpost.db import session_scope, utcnow
from passpost.passes.models import WalletPass
from passpost.passkit.models import PassPush, PushState, Registration
from passpost.passkit.pushes import claim
from passpost.passkit.service import requeue_due_pushes
from passpost.passkit.tasks import push_pass_update
from passpost.queue import get_huey
from tests.passkit.helpers import PassStore, apple
from tests.peers.apns_server import Answer, ApnsPki, ApnsTestServer
from tests.support.passes import PASS_TYPE_ID, TestPki, make_p12

OK, GONE, BUSY, BAD = ("0a" * 32, "1b" * 32, "2c" * 32, "3d" * 32)


@pytest.fixture
def token_server(
    apns_pki: ApnsPki, monkeypatch: pytest.MonkeyPatch, client: TestClient
) -> Iterator[ApnsTestServer]:
    """APNs in token mode, and passpost configured for it (the .p8 key)."""
    with ApnsTestServer(apns_pki, mode="token") as server:
        for name, value in apns_pki.token_env(server.url).items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        yield server
    get_settings.cache_clear()


def register(client: TestClient, store: PassStore, serial: str, device: str, token: str) -> None:
    path = f"/api/v1/devices/{device}/registrations/{PASS_TYPE_ID}/{serial}"
    response = client.post(path, json={"pushToken": token}, headers=apple(store.token(serial)))
    assert response.status_code == 201


def pass_id_of(database_url: str, serial: str) -> int:
    with session_scope(database_url) as session:
        return int(
            session.scalars(select(WalletPass.id).where(WalletPass.serial_number == serial)).one()
        )


def pushes(database_url: str) -> dict[str, PassPush]:
    with session_scope(database_url) as session:
        return {p.push_token: p for p in session.scalars(select(PassPush).order_by(PassPush.id))}


def test_update_records_one_push_per_registration(
    client: TestClient, store: PassStore, database_url: str
) -> None:
    store.issue("S1")
    assert pushes(database_url) == {}  # nobody registered yet: nothing to push
    for n, token in enumerate((OK, GONE)):
        register(client, store, "S1", f"device-{n}", token)
    store.issue("S2")
    store.issue("S1")
    rows = pushes(database_url)
    assert set(rows) == {OK, GONE}
    assert {r.state for r in rows.values()} == {PushState.PENDING}
    assert {r.topic for r in rows.values()} == {PASS_TYPE_ID}
    with session_scope(database_url) as session:
        assert requeue_due_pushes(session) == [pass_id_of(database_url, "S1")]


def test_push_task_sends_and_records_each_answer(
    client: TestClient, store: PassStore, database_url: str, token_server: ApnsTestServer
) -> None:
    store.issue("S1")
    for n, token in enumerate((OK, GONE, BUSY, BAD)):
        register(client, store, "S1", f"device-{n}", token)
    token_server.program(GONE, Answer(410, "Unregistered"))
    token_server.program(BUSY, Answer(429, "TooManyRequests", retry_after="3600"))
    token_server.program(BAD, Answer(400, "BadDeviceToken"))
    store.issue("S1")
    pass_id = pass_id_of(database_url, "S1")

    push_pass_update(pass_id)

    seen = {r.path.removeprefix("/3/device/"): r for r in token_server.received}
    assert set(seen) == {OK, GONE, BUSY, BAD}
    for request in seen.values():
        assert request.method == "POST"
        assert request.headers["apns-topic"] == PASS_TYPE_ID
        assert request.headers["apns-push-type"] == "background"
        assert request.headers["authorization"].startswith("bearer ")
        assert json.loads(request.body) == {}
    rows = pushes(database_url)
    assert rows[OK].state == PushState.SENT and rows[OK].apns_status == 200
    assert rows[GONE].state == PushState.UNREGISTERED
    assert rows[BAD].state == PushState.FAILED and rows[BAD].last_error == "BadDeviceToken"
    busy = rows[BUSY]
    assert busy.state == PushState.PENDING and busy.attempts == 1
    assert busy.next_attempt_at is not None
    assert busy.next_attempt_at >= utcnow() + timedelta(minutes=59)  # Retry-After honoured
    with session_scope(database_url) as session:
        left = set(session.scalars(select(Registration.push_token)))
        assert left == {OK, BUSY, BAD}  # 410 deleted its registration
        assert requeue_due_pushes(session) == []  # the retry is not due yet
    # The retry went on the queue, not to run before the Retry-After.
    queued = get_huey().pending()
    assert len(queued) == 1
    assert queued[0].args == (pass_id,)
    assert queued[0].eta is not None and queued[0].eta >= utcnow().replace(tzinfo=None) + timedelta(
        minutes=59
    )

    # Time passes: the sweeper finds it due, and the next run delivers it.
    with session_scope(database_url) as session:
        session.execute(update(PassPush).values(next_attempt_at=utcnow() - timedelta(seconds=1)))
        assert requeue_due_pushes(session) == [pass_id]
    push_pass_update(pass_id)
    rows = pushes(database_url)
    assert rows[BUSY].state == PushState.SENT and rows[BUSY].attempts == 2
    assert rows[OK].attempts == 1  # sent rows are never sent again


def test_a_dead_workers_push_lease_runs_out_and_the_push_is_claimed_again(
    client: TestClient, store: PassStore, database_url: str, token_server: ApnsTestServer
) -> None:
    store.issue("S1")
    register(client, store, "S1", "device-0", OK)
    store.issue("S1")
    pass_id = pass_id_of(database_url, "S1")
    settings = get_settings()
    with session_scope(database_url, write=True) as session:
        batch = claim(session, pass_id=pass_id, settings=settings)
    assert batch is not None and batch.attempts == {pushes(database_url)[OK].id: 1}
    # The worker holding the lease dies; while the lease lasts nobody else takes the push.
    with session_scope(database_url, write=True) as session:
        assert claim(session, pass_id=pass_id, settings=settings) is None
        assert requeue_due_pushes(session) == []
        session.execute(update(PassPush).values(lease_until=utcnow() - timedelta(seconds=1)))
    with session_scope(database_url, write=True) as session:
        assert requeue_due_pushes(session) == [pass_id]
    push_pass_update(pass_id)
    row = pushes(database_url)[OK]
    assert (row.state, row.attempts, row.lease_until) == (PushState.SENT, 2, None)
    assert len(token_server.received) == 1


def test_one_request_per_device_for_several_pending_updates(
    client: TestClient, store: PassStore, database_url: str, token_server: ApnsTestServer
) -> None:
    store.issue("S1")
    register(client, store, "S1", "device-0", OK)
    store.issue("S1")
    store.issue("S1")
    push_pass_update(pass_id_of(database_url, "S1"))
    assert len(token_server.received) == 1
    with session_scope(database_url) as session:
        states = list(session.scalars(select(PassPush.state)))
    assert states == [PushState.SENT, PushState.SENT]


def test_without_apns_configuration_pushes_wait_and_finally_fail(
    client: TestClient,
    store: PassStore,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PASSPOST_RETRIES", "2")
    get_settings.cache_clear()
    store.issue("S1")
    register(client, store, "S1", "device-0", OK)
    store.issue("S1")
    pass_id = pass_id_of(database_url, "S1")
    push_pass_update(pass_id)
    row = pushes(database_url)[OK]
    assert row.state == PushState.PENDING
    assert row.last_error is not None and "not configured" in row.last_error
    with session_scope(database_url) as session:
        session.execute(update(PassPush).values(next_attempt_at=utcnow() - timedelta(seconds=1)))
    push_pass_update(pass_id)
    row = pushes(database_url)[OK]
    assert row.state == PushState.FAILED and row.attempts == 2


def test_certificate_auth_uses_the_stored_pass_certificate(
    client: TestClient,
    store: PassStore,
    database_url: str,
    pki: TestPki,
    apns_pki: ApnsPki,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    root = pki.write_root(tmp_path / "pass-root.pem")
    with ApnsTestServer(apns_pki, mode="certificate", client_ca_file=root) as server:
        monkeypatch.setenv("PASSPOST_APNS_URL", server.url)
        monkeypatch.setenv("PASSPOST_APNS_CA_FILE", str(apns_pki.ca_file))
        get_settings.cache_clear()
        with session_scope(database_url) as session:
            certs.add_certificate(
                session,
                name="test",
                p12=make_p12(pki, "secret"),
                passphrase="secret",
                created_by="test",
            )
        store.issue("S1")
        register(client, store, "S1", "device-0", OK)
        store.issue("S1")
        push_pass_update(pass_id_of(database_url, "S1"))
    assert len(server.received) == 1
    received = server.received[0]
    assert received.status == 200
    assert received.client_subject is not None
    assert f"UID={PASS_TYPE_ID}" in received.client_subject.split(",")
    assert "authorization" not in received.headers
    assert pushes(database_url)[OK].state == PushState.SENT


def test_cli_push_and_versions(
    client: TestClient, store: PassStore, database_url: str, token_server: ApnsTestServer
) -> None:
    from passpost.cli import app

    store.issue("S1")
    store.issue("S1")
    register(client, store, "S1", "device-0", OK)
    runner = CliRunner()
    versions = runner.invoke(app, ["pass", "versions", "S1"])
    assert versions.exit_code == 0, versions.output
    assert "devices: 1" in versions.output
    assert "current" in versions.output
    pushed = runner.invoke(app, ["push", "S1", "--type", PASS_TYPE_ID])
    assert pushed.exit_code == 0, pushed.output
    assert "1 push(es) queued" in pushed.output
    assert [p.state for p in pushes(database_url).values()] == [PushState.PENDING]
    assert len(get_huey().pending()) == 1
    missing = runner.invoke(app, ["push", "NOPE"])
    assert missing.exit_code == 1
    assert "PASS_NOT_FOUND" in missing.output
