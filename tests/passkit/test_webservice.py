"""Conformance of the PassKit Web Service (SPEC §8), one test per trap the peers fall into."""

from __future__ import annotations

import itertools
import re
import threading
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, select, update

from passpost.db import get_engine, session_scope
from passpost.passes.models import PassUpdate
from passpost.passkit.models import Registration
from tests.passkit.helpers import PassStore, add_version, apple
from tests.support.passes import PASS_TYPE_ID

DEVICE = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
PUSH_TOKEN = "ab" * 32
HTTP_DATE = re.compile(r"^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$")


def reg_path(serial: str, device: str = DEVICE, pass_type: str = PASS_TYPE_ID) -> str:
    return f"/api/v1/devices/{device}/registrations/{pass_type}/{serial}"


def serials_path(device: str = DEVICE, pass_type: str = PASS_TYPE_ID) -> str:
    return f"/api/v1/devices/{device}/registrations/{pass_type}"


def pass_path(serial: str, pass_type: str = PASS_TYPE_ID) -> str:
    return f"/api/v1/passes/{pass_type}/{serial}"


def register(client: TestClient, store: PassStore, serial: str, device: str = DEVICE) -> int:
    response = client.post(
        reg_path(serial, device), json={"pushToken": PUSH_TOKEN}, headers=apple(store.token(serial))
    )
    return response.status_code


# -- registration ------------------------------------------------------------------------


def test_register_201_then_200_and_delete(client: TestClient, store: PassStore) -> None:
    store.issue("S1")
    assert register(client, store, "S1") == 201
    assert register(client, store, "S1") == 200
    response = client.delete(reg_path("S1"), headers=apple(store.token("S1")))
    assert response.status_code == 200
    assert register(client, store, "S1") == 201


def test_android_pass_scheme_is_accepted(client: TestClient, store: PassStore) -> None:
    store.issue("S1")
    headers = {"Authorization": f"AndroidPass {store.token('S1')}"}
    response = client.post(reg_path("S1"), json={"pushToken": PUSH_TOKEN}, headers=headers)
    assert response.status_code == 201
    assert client.get(pass_path("S1"), headers=headers).status_code == 200


def test_new_push_token_applies_to_every_registration_of_the_device(
    client: TestClient, store: PassStore, database_url: str
) -> None:
    store.issue("S1")
    store.issue("S2")
    assert register(client, store, "S1") == 201
    response = client.post(
        reg_path("S2"), json={"pushToken": "cd" * 32}, headers=apple(store.token("S2"))
    )
    assert response.status_code == 201
    with session_scope(database_url) as session:
        tokens = set(session.scalars(select(Registration.push_token)))
    assert tokens == {"cd" * 32}


def test_unknown_serial_and_wrong_token_answer_alike(client: TestClient, store: PassStore) -> None:
    store.issue("S1")
    good = store.token("S1")
    wrong = client.post(reg_path("S1"), json={"pushToken": PUSH_TOKEN}, headers=apple("x" * 43))
    unknown = client.post(reg_path("NOPE"), json={"pushToken": PUSH_TOKEN}, headers=apple(good))
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    for method in ("get", "delete"):
        path = pass_path if method == "get" else reg_path
        wrong = client.request(method, path("S1"), headers=apple("x" * 43))
        unknown = client.request(method, path("NOPE"), headers=apple(good))
        assert wrong.status_code == unknown.status_code == 401
        assert wrong.json() == unknown.json()


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": ""},
        {"Authorization": "ApplePass"},
        {"Authorization": "ApplePass "},
        {"Authorization": "Basic b3BzOnB3"},
        {"Authorization": "Bearer TOKEN"},
    ],
)
def test_missing_or_foreign_authorization_is_401(
    client: TestClient, store: PassStore, headers: dict[str, str]
) -> None:
    store.issue("S1")
    response = client.post(reg_path("S1"), json={"pushToken": PUSH_TOKEN}, headers=headers)
    assert response.status_code == 401
    assert client.get(pass_path("S1"), headers=headers).status_code == 401


def test_pass_without_token_cannot_be_reached(
    client: TestClient, store: PassStore, database_url: str
) -> None:
    with session_scope(database_url) as session:
        add_version(session, pass_type=PASS_TYPE_ID, serial="NT", token=None, content=b"PK")
    assert client.get(pass_path("NT"), headers=apple("")).status_code == 401
    assert client.get(pass_path("NT"), headers={"Authorization": "ApplePass x"}).status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"\xff\xfe",
        b"[]",
        b"null",
        b'"pushToken"',
        b"{}",
        b'{"pushToken": null}',
        b'{"pushToken": 42}',
        b'{"pushToken": ""}',
        b'{"pushToken": ["a"]}',
        b'{"pushToken": "' + b"a" * 300 + b'"}',
        b'{"pushToken": "abc"',
    ],
)
def test_bad_registration_body_is_400(client: TestClient, store: PassStore, body: bytes) -> None:
    store.issue("S1")
    response = client.post(reg_path("S1"), content=body, headers=apple(store.token("S1")))
    assert response.status_code == 400
    assert response.json()["errorCode"] in ("INVALID_JSON", "PUSH_TOKEN_REQUIRED")


def test_bad_body_with_bad_token_is_401_not_400(client: TestClient, store: PassStore) -> None:
    store.issue("S1")
    response = client.post(reg_path("S1"), content=b"{}", headers=apple("wrong"))
    assert response.status_code == 401


def test_oversized_device_identifier_is_400(client: TestClient, store: PassStore) -> None:
    store.issue("S1")
    response = client.post(
        reg_path("S1", device="d" * 300),
        json={"pushToken": PUSH_TOKEN},
        headers=apple(store.token("S1")),
    )
    assert response.status_code == 400
    assert client.get(serials_path(device="d" * 300)).status_code == 400


# -- serials since a tag -----------------------------------------------------------------


def test_device_without_registrations_gets_204(client: TestClient, store: PassStore) -> None:
    store.issue("S1")
    assert client.get(serials_path()).status_code == 204
    assert client.get(serials_path(), params={"passesUpdatedSince": "0"}).status_code == 204
    assert client.get(serials_path(device="never-seen")).status_code == 204


def test_first_call_lists_every_serial_with_a_string_tag(
    client: TestClient, store: PassStore
) -> None:
    for serial in ("S1", "S2", "S3"):
        store.issue(serial)
        assert register(client, store, serial) == 201
    response = client.get(serials_path())
    assert response.status_code == 200
    body = response.json()
    assert body["serialNumbers"] == ["S1", "S2", "S3"]
    assert isinstance(body["lastUpdated"], str)
    assert body["lastUpdated"].isdigit()


def test_every_serial_updated_after_the_tag_not_only_the_newest(
    client: TestClient, store: PassStore
) -> None:
    for serial in ("S1", "S2", "S3", "S4"):
        store.issue(serial)
        assert register(client, store, serial) == 201
    tag = client.get(serials_path()).json()["lastUpdated"]
    assert client.get(serials_path(), params={"passesUpdatedSince": tag}).status_code == 204
    # Three updates, back to back (the same second, most likely the same millisecond).
    for serial in ("S3", "S1", "S2"):
        store.issue(serial)
    response = client.get(serials_path(), params={"passesUpdatedSince": tag})
    assert response.status_code == 200
    body = response.json()
    assert body["serialNumbers"] == ["S1", "S2", "S3"]
    assert int(body["lastUpdated"]) > int(tag)
    # The new tag covers them: nothing more to report.
    again = client.get(serials_path(), params={"passesUpdatedSince": body["lastUpdated"]})
    assert again.status_code == 204


def test_updates_within_the_same_second_are_not_lost(client: TestClient, store: PassStore) -> None:
    store.issue("S1")
    store.issue("S2")
    register(client, store, "S1")
    register(client, store, "S2")
    tags = []
    for serial in ("S1", "S2", "S1"):
        tag = client.get(serials_path(), params={"passesUpdatedSince": "0"}).json()["lastUpdated"]
        tags.append(tag)
        store.issue(serial)
        listed = client.get(serials_path(), params={"passesUpdatedSince": tag}).json()
        assert listed["serialNumbers"] == [serial]
    assert len(set(tags)) == 3


def test_tags_are_per_pass_type(client: TestClient, store: PassStore) -> None:
    other = "pass.dev.passpost.other"
    store.issue("S1")
    store.issue("O1", pass_type=other)
    register(client, store, "S1")
    response = client.post(
        reg_path("O1", pass_type=other),
        json={"pushToken": PUSH_TOKEN},
        headers=apple(store.token("O1")),
    )
    assert response.status_code == 201
    tag = client.get(serials_path()).json()["lastUpdated"]
    store.issue("O1", pass_type=other)
    assert client.get(serials_path(), params={"passesUpdatedSince": tag}).status_code == 204
    listed = client.get(serials_path(pass_type=other), params={"passesUpdatedSince": "1"})
    assert listed.json()["serialNumbers"] == ["O1"]


def test_a_tag_from_the_future_reports_everything(client: TestClient, store: PassStore) -> None:
    store.issue("S1")
    register(client, store, "S1")
    response = client.get(serials_path(), params={"passesUpdatedSince": "999999999"})
    assert response.status_code == 200
    assert response.json()["serialNumbers"] == ["S1"]


@pytest.mark.parametrize(
    "tag", ["abc", "-1", "1.5", "1e3", " 1", "0x10", "١٢", "9" * 40, "2024-01-01T00:00:00Z"]
)
def test_malformed_tag_is_400(client: TestClient, store: PassStore, tag: str) -> None:
    store.issue("S1")
    register(client, store, "S1")
    response = client.get(serials_path(), params={"passesUpdatedSince": tag})
    assert response.status_code == 400
    assert response.json()["errorCode"] == "INVALID_TAG"


def test_commits_out_of_order_are_not_lost(
    client: TestClient, store: PassStore, database_url: str, pki: object
) -> None:
    """An import that started first but commits last is still reported after a tag.

    Transaction A records an update of S1 and stays open; B records an update of S2 in
    another thread. A device asks in between; then both commit. The tag the device got
    must still report both serials.
    """
    store.issue("S1")
    store.issue("S2")
    register(client, store, "S1")
    register(client, store, "S2")
    tag0 = client.get(serials_path()).json()["lastUpdated"]
    content_a = b"version-a"
    content_b = b"version-b"
    b_done = threading.Event()
    errors: list[BaseException] = []

    def transaction_b() -> None:
        try:
            with session_scope(database_url, write=True) as session:
                add_version(
                    session, pass_type=PASS_TYPE_ID, serial="S2", token=None, content=content_b
                )
        except BaseException as exc:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(exc)
        finally:
            b_done.set()

    # Writer transactions, as the import call's (BEGIN IMMEDIATE on SQLite).
    with session_scope(database_url, write=True) as session_a:
        add_version(session_a, pass_type=PASS_TYPE_ID, serial="S1", token=None, content=content_a)
        thread = threading.Thread(target=transaction_b)
        thread.start()
        # B cannot commit before A: it waits for the clock row (or SQLite's write lock).
        assert not b_done.wait(0.5)
        middle = client.get(serials_path(), params={"passesUpdatedSince": tag0})
        assert middle.status_code == 204
        tag_middle = client.get(serials_path()).json()["lastUpdated"]
        assert tag_middle == tag0
    thread.join(timeout=30)
    assert not errors, errors
    assert b_done.is_set()
    listed = client.get(serials_path(), params={"passesUpdatedSince": tag_middle})
    assert listed.json()["serialNumbers"] == ["S1", "S2"]


# -- the latest pass ---------------------------------------------------------------------


def test_latest_pass_is_the_newest_version_with_an_http_date(
    client: TestClient, store: PassStore
) -> None:
    store.issue("S1")
    newest = store.issue("S1")
    response = client.get(pass_path("S1"), headers=apple(store.token("S1")))
    assert response.status_code == 200
    assert response.content == newest
    assert response.headers["content-type"] == "application/vnd.apple.pkpass"
    last_modified = response.headers["last-modified"]
    assert HTTP_DATE.match(last_modified), last_modified
    moment = parsedate_to_datetime(last_modified)
    assert abs(moment - datetime.now(UTC)) < timedelta(minutes=1)


def test_304_when_not_modified_and_200_after_a_same_second_update(
    client: TestClient, store: PassStore
) -> None:
    store.issue("S1")
    headers = apple(store.token("S1"))
    first = client.get(pass_path("S1"), headers=headers)
    last_modified = first.headers["last-modified"]
    not_modified = client.get(
        pass_path("S1"), headers={**headers, "If-Modified-Since": last_modified}
    )
    assert not_modified.status_code == 304
    assert not_modified.content == b""
    assert not_modified.headers["last-modified"] == last_modified
    # A new version right away (same second): the device holding v1 must get it.
    v2 = store.issue("S1")
    changed = client.get(pass_path("S1"), headers={**headers, "If-Modified-Since": last_modified})
    assert changed.status_code == 200
    assert changed.content == v2
    assert parsedate_to_datetime(changed.headers["last-modified"]) > parsedate_to_datetime(
        last_modified
    )


@pytest.mark.parametrize("value", ["yesterday", "", "Mon, 99 Foo 2020 99:99:99 GMT", "0"])
def test_garbage_if_modified_since_serves_the_pass(
    client: TestClient, store: PassStore, value: str
) -> None:
    content = store.issue("S1")
    headers = {**apple(store.token("S1")), "If-Modified-Since": value}
    response = client.get(pass_path("S1"), headers=headers)
    assert response.status_code == 200
    assert response.content == content


def test_older_if_modified_since_serves_the_pass(client: TestClient, store: PassStore) -> None:
    content = store.issue("S1")
    old = format_datetime(datetime.now(UTC) - timedelta(days=1), usegmt=True)
    headers = {**apple(store.token("S1")), "If-Modified-Since": old}
    response = client.get(pass_path("S1"), headers=headers)
    assert response.status_code == 200
    assert response.content == content


def test_304_does_not_read_the_pass_bytes(
    client: TestClient, store: PassStore, database_url: str
) -> None:
    store.issue("S1")
    headers = apple(store.token("S1"))
    last_modified = client.get(pass_path("S1"), headers=headers).headers["last-modified"]
    statements: list[str] = []

    def capture(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    engine = get_engine(database_url)
    event.listen(engine, "before_cursor_execute", capture)
    try:
        response = client.get(
            pass_path("S1"), headers={**headers, "If-Modified-Since": last_modified}
        )
        assert response.status_code == 304
        not_modified_statements = list(statements)
        statements.clear()
        assert client.get(pass_path("S1"), headers=headers).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    assert not_modified_statements, "the 304 path must have queried the database"
    assert not any("pass_content.content" in s for s in not_modified_statements)
    assert not any("sha256" in s for s in not_modified_statements)
    # The probe sees the bytes being read on the 200 path.
    assert any("pass_content.content" in s for s in statements)


def test_last_modified_strictly_increases_per_version(store: PassStore, database_url: str) -> None:
    for _ in range(4):
        store.issue("S1")
    with session_scope(database_url) as session:
        stamps = list(session.scalars(select(PassUpdate.last_modified).order_by(PassUpdate.seq)))
    assert len(stamps) == 4
    assert all(b - a >= timedelta(seconds=1) for a, b in itertools.pairwise(stamps))
    assert all(s.microsecond == 0 for s in stamps)


# -- device logs -------------------------------------------------------------------------


def test_logs_are_stored_and_listed_for_operators(client: TestClient) -> None:
    from tests.support.app import basic

    response = client.post("/api/v1/log", json={"logs": ["first problem", "second problem"]})
    assert response.status_code == 200
    assert client.post("/api/v1/log", json={"logs": []}).status_code == 200
    assert client.get("/api/v1/passkit/logs").status_code == 401
    listed = client.get("/api/v1/passkit/logs", headers=basic())
    assert listed.status_code == 200
    body = listed.json()
    assert body["total"] == 2
    assert [entry["message"] for entry in body["logs"]] == ["second problem", "first problem"]
    page = client.get("/api/v1/passkit/logs", params={"start": 1, "pageSize": 1}, headers=basic())
    assert [entry["message"] for entry in page.json()["logs"]] == ["first problem"]


@pytest.mark.parametrize(
    "body",
    [b'{"logs": "one line"}', b'{"logs": {"a": 1}}', b'{"logs": null}', b"{}", b"[]", b"x", b""],
)
def test_logs_that_are_not_a_list_are_400(client: TestClient, body: bytes) -> None:
    response = client.post("/api/v1/log", content=body)
    assert response.status_code == 400


def test_oversized_bodies_are_413(client: TestClient, store: PassStore) -> None:
    store.issue("S1")
    huge = b'{"logs": ["' + b"x" * 300_000 + b'"]}'
    assert client.post("/api/v1/log", content=huge).status_code == 413
    response = client.post(reg_path("S1"), content=huge, headers=apple(store.token("S1")))
    assert response.status_code == 413


@pytest.mark.parametrize("depth", [100, 5000])
def test_deeply_nested_json_is_400_not_500(
    client: TestClient, store: PassStore, depth: int
) -> None:
    store.issue("S1")
    nested = b"[" * depth + b"]" * depth
    response = client.post("/api/v1/log", content=b'{"logs": ' + nested + b"}")
    assert response.status_code == 400, response.text
    assert response.json()["errorCode"] == "JSON_TOO_DEEP"
    body = b'{"pushToken": "t", "x": ' + nested + b"}"
    response = client.post(reg_path("S1"), content=body, headers=apple(store.token("S1")))
    assert response.status_code == 400, response.text
    assert response.json()["errorCode"] == "JSON_TOO_DEEP"


def test_lone_surrogate_log_is_400_not_500(client: TestClient) -> None:
    response = client.post("/api/v1/log", content=b'{"logs": ["bad \\ud800 text"]}')
    assert response.status_code == 400, response.text
    assert response.json()["errorCode"] == "INVALID_JSON"


# -- device logs are bounded (issue 9, finding 2) ----------------------------------------


def _logged(client: TestClient) -> list[str]:
    from tests.support.app import basic

    listed = client.get("/api/v1/passkit/logs", params={"pageSize": 500}, headers=basic())
    assert listed.status_code == 200
    return [entry["message"] for entry in listed.json()["logs"]]


def test_log_calls_are_capped_in_entries_and_characters(client: TestClient) -> None:
    too_many = client.post("/api/v1/log", json={"logs": ["x"] * 101})
    assert too_many.status_code == 400
    assert too_many.json()["errorCode"] == "TOO_MANY_LOGS"
    too_large = client.post("/api/v1/log", json={"logs": ["y" * 2000] * 9})
    assert too_large.status_code == 400
    assert too_large.json()["errorCode"] == "LOGS_TOO_LARGE"
    assert _logged(client) == []  # a refused call stores nothing
    ok = client.post("/api/v1/log", json={"logs": ["z" * 50_000, *["w"] * 99]})
    assert ok.status_code == 200
    stored = _logged(client)
    assert len(stored) == 100 and stored[-1] == "z" * 2000


def test_log_table_keeps_only_the_newest_rows(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from passpost.config import get_settings

    monkeypatch.setenv("PASSPOST_DEVICE_LOG_MAX_ROWS", "5")
    get_settings.cache_clear()
    for call in range(4):
        response = client.post("/api/v1/log", json={"logs": [f"{call}-a", f"{call}-b"]})
        assert response.status_code == 200
    assert _logged(client) == ["3-b", "3-a", "2-b", "2-a", "1-b"]
    big = client.post("/api/v1/log", json={"logs": [f"big-{n}" for n in range(8)]})
    assert big.status_code == 200
    assert _logged(client) == [f"big-{n}" for n in range(7, 2, -1)]


# -- device registrations are bounded (issue 9, finding 10) ------------------------------


def _limits(monkeypatch: pytest.MonkeyPatch, **values: int) -> None:
    from passpost.config import get_settings

    for key, value in values.items():
        monkeypatch.setenv(f"PASSPOST_{key.upper()}", str(value))
    get_settings.cache_clear()


def _set_recipients(database_url: str, serial: str, count: int) -> None:
    from passpost.passes.models import WalletPass

    with session_scope(database_url) as session:
        wallet_pass = session.scalars(
            select(WalletPass).where(WalletPass.serial_number == serial)
        ).one()
        wallet_pass.recipient_count = count


def test_a_pass_accepts_a_bounded_number_of_devices(
    client: TestClient, store: PassStore, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    _limits(monkeypatch, devices_per_pass=3, devices_per_recipient=2)
    store.issue("S1")
    for n in range(3):
        assert register(client, store, "S1", device=f"device-{n}") == 201
    refused = client.post(
        reg_path("S1", device="device-3"),
        json={"pushToken": PUSH_TOKEN},
        headers=apple(store.token("S1")),
    )
    assert refused.status_code == 429
    assert refused.json()["errorCode"] == "TOO_MANY_DEVICES"
    assert int(refused.headers["Retry-After"]) > 0
    assert register(client, store, "S1", device="device-0") == 200  # known devices still renew
    client.delete(reg_path("S1", device="device-0"), headers=apple(store.token("S1")))
    assert register(client, store, "S1", device="device-3") == 201  # a freed slot is reusable
    # A pass sent to 4 recipients accepts 2 devices each.
    _set_recipients(database_url, "S1", 4)
    for n in range(4, 9):
        assert register(client, store, "S1", device=f"device-{n}") == 201
    assert (
        client.post(
            reg_path("S1", device="device-9"),
            json={"pushToken": PUSH_TOKEN},
            headers=apple(store.token("S1")),
        ).status_code
        == 429
    )


def test_one_address_registers_a_bounded_number_of_devices_an_hour(
    client: TestClient, store: PassStore, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    _limits(monkeypatch, registrations_per_address=4)
    for serial in ("S1", "S2"):
        store.issue(serial)
        for n in range(2):
            assert register(client, store, serial, device=f"{serial}-device-{n}") == 201
    refused = client.post(
        reg_path("S2", device="one-too-many"),
        json={"pushToken": PUSH_TOKEN},
        headers=apple(store.token("S2")),
    )
    assert refused.status_code == 429
    assert refused.json()["errorCode"] == "TOO_MANY_REGISTRATIONS"
    assert "Retry-After" in refused.headers
    with session_scope(database_url) as session:
        two_hours_ago = datetime.now(UTC) - timedelta(hours=2)
        session.execute(update(Registration).values(created_at=two_hours_ago))
    assert register(client, store, "S2", device="one-too-many") == 201
