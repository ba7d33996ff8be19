"""Large recipient lists: stored as sent by the import call, expanded by workers in chunks.

The expansion runs here in-process, chunk by chunk, against SQLite and PostgreSQL; the
killed-worker test runs real processes.
"""

from __future__ import annotations

import json
import re
import time
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from passpost.audience.models import Recipient
from passpost.config import Settings, get_settings
from passpost.db import session_scope
from passpost.distribution import expansion, recipient_list
from passpost.distribution.models import (
    Delivery,
    DistributionRequest,
    PassHolder,
    RecipientChunk,
    RequestExpansion,
)
from passpost.passes.models import PassVersion, WalletPass
from tests.conftest import MakeClient
from tests.support.app import basic
from tests.support.passes import shared_pki, signed_pass
from tests.support.service import email_content

PKI = shared_pki()
SIZE = recipient_list.INLINE_MAX + recipient_list.CHUNK + 100  # twelve chunks of 100


@pytest.fixture
def client(client_with: MakeClient) -> TestClient:
    return client_with(max_upload_bytes=str(4_000_000))


def _post(client: TestClient, serial: str, content: object, *, update: bool = False) -> Any:
    text = content if isinstance(content, str) else json.dumps(content)
    path = "/api/v1/message/pass/import" + ("/update" if update else "")
    files = {"pkPass": ("p.pkpass", signed_pass(PKI, serial=serial), "application/octet-stream")}
    return client.post(path, files=files, data={"passContent": text}, headers=basic())


def _entries(count: int, *, prefix: str = "r") -> list[dict[str, Any]]:
    # Ad-hoc addresses, each listed twice in places (one pass each), and unknown ids.
    entries: list[dict[str, Any]] = [{"email": f"{prefix}{i}@example.com"} for i in range(count)]
    entries[10] = {"email": f"{prefix}3@example.com"}
    entries[-1] = {"id": "999999999"}
    entries[recipient_list.CHUNK + 1] = {"email": f"{prefix}4@Example.com", "firstName": "Four"}
    return entries


def _expand(settings: Settings, request_id: int, *, chunks: int | None = None) -> None:
    """Run the expansion as the worker task does, all of it or ``chunks`` steps."""
    url = settings.resolved_database_url
    with session_scope(url, write=True) as session:
        owner = expansion.claim(session, request_id=request_id, settings=settings)
    assert owner is not None
    with session_scope(url) as session:
        run = expansion.start(session, request_id=request_id, owner=owner, settings=settings)
    done = 0
    while chunks is None or done < chunks:
        with session_scope(url) as session:
            batch = expansion.prepare(session, run=run)
        with session_scope(url, write=True) as session:
            step = expansion.expand_next(session, run=run, batch=batch, settings=settings)
        done += 1
        if step.finished:
            return
    with session_scope(url, write=True) as session:
        expansion.release(session, run=run, error=None)


def _ledger(request_id: int) -> list[tuple[Any, ...]]:
    """The request's ledger without ids or tokens: who gets what, in which state."""
    with session_scope(get_settings().resolved_database_url) as session:
        rows = session.execute(
            select(
                PassHolder.audience_id,
                PassHolder.notification,
                PassHolder.recipient_id.is_(None),
                Delivery.channel,
                Delivery.state,
                Delivery.last_error,
            )
            .join(Delivery, Delivery.holder_id == PassHolder.id)
            .where(PassHolder.request_id == request_id)
        )
        return sorted(tuple(row) for row in rows)


# What differs between two requests' ledgers whatever wrote them.
_OWN = {"id", "request_id", "pass_id", "holder_id", "link_hash", "link_token_enc"}


def _as_kept(request_id: int) -> list[tuple[Any, ...]]:
    """Every column of the request's ledger as the database keeps it (SQLite: timestamps as
    text, booleans as integers), ids and tokens left out, timestamps reduced to their form."""
    with session_scope(get_settings().resolved_database_url) as session:
        connection = session.connection()
        holders = connection.exec_driver_sql(
            f"SELECT * FROM pass_holder WHERE request_id = {request_id}"
        )
        deliveries = connection.exec_driver_sql(
            "SELECT d.* FROM delivery d JOIN pass_holder h ON h.id = d.holder_id "
            f"WHERE h.request_id = {request_id}"
        )
        rows = [("holder", *_form(row._mapping)) for row in holders]
        rows += [("delivery", *_form(row._mapping)) for row in deliveries]
    return sorted(rows, key=repr)


def _form(row: Any) -> tuple[Any, ...]:
    out = []
    for key, value in sorted(row.items()):
        if key in _OWN:
            continue
        if isinstance(value, datetime):
            value = ("datetime", value.tzinfo is not None)
        elif isinstance(value, str) and key.endswith("_at"):
            value = re.sub(r"[0-9]", "0", value)  # the text's form, not the moment
        out.append((key, value))
    return tuple(out)


def _count(model: Any, *where: Any) -> int:
    with session_scope(get_settings().resolved_database_url) as session:
        return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def test_a_large_list_is_stored_then_expanded_like_a_small_one(
    client: TestClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    entries = _entries(SIZE)
    response = _post(client, "BIG", email_content(entries))
    assert response.status_code == 200, response.text
    request_id = int(response.json()["requestId"])
    # Answered with the list stored as sent, in chunks, and nothing expanded yet.
    assert _count(PassHolder, PassHolder.request_id == request_id) == 0
    assert _count(RecipientChunk, RecipientChunk.request_id == request_id) == -(
        -SIZE // recipient_list.CHUNK
    )
    summary = client.get(f"/api/v1/requests/{request_id}", headers=basic()).json()
    assert summary["expansion"] == {"total": SIZE, "expanded": 0, "done": False}
    assert summary["state"] == "queued"
    assert summary["progress"] == 0.0
    assert summary["pending"] == SIZE  # each entry not yet expanded is still to come

    _expand(settings, request_id)
    assert _count(RecipientChunk, RecipientChunk.request_id == request_id) == 0
    summary = client.get(f"/api/v1/requests/{request_id}", headers=basic()).json()
    assert summary["expansion"] == {"total": SIZE, "expanded": SIZE, "done": True}
    assert summary["recipients"] == SIZE - 2  # two entries repeat an address
    assert summary["channels"] == {"EMAIL": {"queued": SIZE - 3, "rejected": 1}}
    meta = client.get(f"/api/v1/pass/meta/{request_id}?pageSize=1", headers=basic()).json()
    assert meta["total"] == SIZE - 2

    # The same list expanded inside the import call (as small lists are) gives the same
    # ledger: the same recipients, templates, states and reasons.
    monkeypatch.setattr(recipient_list, "INLINE_MAX", 10 * SIZE)
    inline = _post(client, "BIG-INLINE", email_content(entries))
    assert inline.status_code == 200, inline.text
    inline_id = int(inline.json()["requestId"])
    assert _count(RequestExpansion, RequestExpansion.request_id == inline_id) == 0
    assert _ledger(request_id) == _ledger(inline_id)
    # Written on the driver's cursor by the expansion, through SQLAlchemy by the import:
    # the same values in the same form, column by column.
    stored = _as_kept(request_id)
    assert stored == _as_kept(inline_id)
    # ... and the form SQLAlchemy gives a timestamp (the request's own row, an ORM insert).
    with session_scope(settings.resolved_database_url) as session:
        written = session.connection().exec_driver_sql(
            f"SELECT created_at FROM distribution_request WHERE id = {request_id}"
        )
        form = _form({"created_at": written.scalar_one()})[0][1]
    timestamps = {value for row in stored for key, value in row[1:] if key.endswith("_at")}
    assert timestamps - {None} == {form}
    with session_scope(settings.resolved_database_url) as session:
        counts = session.scalars(select(WalletPass.recipient_count).order_by(WalletPass.id)).all()
    assert counts == [SIZE - 3, SIZE - 3]


def test_new_addresses_become_the_recipients_an_import_creates(
    client: TestClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The expansion creates a chunk's new plain addresses in bulk on the driver's cursor;
    # the import call through the ORM: the same columns, in the same form.
    named = [{"email": f"x{i}@example.com", "firstName": "X"} for i in range(SIZE)]
    _expand(settings, int(_post(client, "NEW-X", email_content(named)).json()["requestId"]))
    monkeypatch.setattr(recipient_list, "INLINE_MAX", 10 * SIZE)
    other = [{"email": f"y{i}@example.com", "firstName": "X"} for i in range(SIZE)]
    assert _post(client, "NEW-Y", email_content(other)).status_code == 200

    def kept(prefix: str) -> set[tuple[Any, ...]]:
        with session_scope(settings.resolved_database_url) as session:
            rows = session.connection().exec_driver_sql(
                f"SELECT * FROM recipient WHERE substr(email, 1, 1) = '{prefix}'"
            )
            return {_form({**row._mapping, "id": 0, "email": ""}) for row in rows}

    assert kept("x") == kept("y")
    assert len(kept("x")) == 1  # every one alike but for its address


def test_progress_is_visible_while_expanding(client: TestClient, settings: Settings) -> None:
    response = _post(client, "PROGRESS", email_content(_entries(SIZE)))
    request_id = int(response.json()["requestId"])
    _expand(settings, request_id, chunks=1)
    summary = client.get(f"/api/v1/requests/{request_id}", headers=basic()).json()
    chunk = recipient_list.CHUNK
    assert summary["expansion"] == {"total": SIZE, "expanded": chunk, "done": False}
    assert summary["recipients"] == chunk - 1
    # Nothing pending in the ledger yet is not "done" while the list is expanding, and a
    # client polling for pending == 0 waits for the rest of the list.
    assert summary["state"] == "queued"
    ledger_pending = sum(summary["channels"]["EMAIL"].values())
    assert summary["pending"] == ledger_pending + SIZE - chunk
    listed = client.get("/api/v1/requests?state=active", headers=basic()).json()
    assert [r["requestId"] for r in listed["requests"]] == [str(request_id)]
    assert client.get("/api/v1/requests?state=done", headers=basic()).json()["total"] == 0

    # The next task continues where this one stopped: no recipient twice.
    _expand(settings, request_id)
    holders = _count(PassHolder, PassHolder.request_id == request_id)
    assert holders == SIZE - 2
    assert _count(Delivery, Delivery.request_id == request_id) == SIZE - 2


def test_a_lease_in_force_keeps_other_tasks_out(settings: Settings, client: TestClient) -> None:
    request_id = int(_post(client, "LEASE", email_content(_entries(SIZE))).json()["requestId"])
    url = settings.resolved_database_url
    with session_scope(url, write=True) as session:
        first = expansion.claim(session, request_id=request_id, settings=settings)
        second = expansion.claim(session, request_id=request_id, settings=settings)
    assert first is not None and second is None
    with session_scope(url) as session:
        run = expansion.start(session, request_id=request_id, owner=first, settings=settings)
    # Taken for dead (its lease ran out), then taken over: its next chunk is refused.
    with session_scope(url, write=True) as session:
        session.get(RequestExpansion, request_id).lease_until = None  # type: ignore[union-attr]
    with session_scope(url, write=True) as session:
        assert expansion.claim(session, request_id=request_id, settings=settings) is not None
    with session_scope(url) as session:
        batch = expansion.prepare(session, run=run)
    with pytest.raises(expansion.LostLease), session_scope(url, write=True) as session:
        expansion.expand_next(session, run=run, batch=batch, settings=settings)
    assert _count(PassHolder, PassHolder.request_id == request_id) == 0


def test_a_chunk_prepared_twice_is_written_once(settings: Settings, client: TestClient) -> None:
    # Prepared outside the write transaction: by the time it is written, the chunk may be
    # in the ledger already (the same batch, or another task's before this one's lease).
    request_id = int(_post(client, "TWICE", email_content(_entries(SIZE))).json()["requestId"])
    url = settings.resolved_database_url
    with session_scope(url, write=True) as session:
        owner = expansion.claim(session, request_id=request_id, settings=settings)
    assert owner is not None
    with session_scope(url) as session:
        run = expansion.start(session, request_id=request_id, owner=owner, settings=settings)
        batch = expansion.prepare(session, run=run)
    with session_scope(url, write=True) as session:
        step = expansion.expand_next(session, run=run, batch=batch, settings=settings)
    assert step.entries == recipient_list.CHUNK
    with pytest.raises(expansion.LostLease), session_scope(url, write=True) as session:
        expansion.expand_next(session, run=run, batch=batch, settings=settings)
    assert _count(PassHolder, PassHolder.request_id == request_id) == step.holders
    with session_scope(url) as session:
        assert session.get(RequestExpansion, request_id).expanded == recipient_list.CHUNK  # type: ignore[union-attr]


def test_an_update_waits_for_the_earlier_list_and_notifies_its_holders(
    client: TestClient, settings: Settings
) -> None:
    first = _post(client, "UPD", email_content(_entries(SIZE)))
    first_id = int(first.json()["requestId"])
    # A small update while the first list is expanding is staged too, and waits for it.
    second = _post(client, "UPD", email_content([{"email": "r5@example.com"}]), update=True)
    assert second.status_code == 200, second.text
    second_id = int(second.json()["requestId"])
    assert _count(RequestExpansion, RequestExpansion.request_id == second_id) == 1
    with session_scope(settings.resolved_database_url) as session:
        assert expansion.waits_for_earlier(session, request_id=second_id)
    _expand(settings, first_id)
    with session_scope(settings.resolved_database_url) as session:
        assert not expansion.waits_for_earlier(session, request_id=second_id)
    _expand(settings, second_id)
    # Everyone holding the pass gets the update message, r5 among them once.
    rows = _ledger(second_id)
    assert len(rows) == SIZE - 3
    assert {row[1] for row in rows} == {"update"}


def test_a_cancel_while_expanding_cancels_the_rest(client: TestClient, settings: Settings) -> None:
    request_id = int(_post(client, "CANCEL", email_content(_entries(SIZE))).json()["requestId"])
    _expand(settings, request_id, chunks=1)
    response = client.post(f"/api/v1/pass/cancel/{request_id}", headers=basic())
    assert response.status_code == 200
    _expand(settings, request_id)
    summary = client.get(f"/api/v1/requests/{request_id}", headers=basic()).json()
    assert summary["state"] == "cancelled"
    assert summary["channels"]["EMAIL"] == {"cancelled": SIZE - 3, "rejected": 1}


def _stored(client: TestClient) -> tuple[int, ...]:
    return tuple(
        _count(model)
        for model in (
            WalletPass,
            PassVersion,
            DistributionRequest,
            PassHolder,
            Delivery,
            RequestExpansion,
            RecipientChunk,
        )
    )


@pytest.mark.parametrize(
    ("entry", "code", "message"),
    [
        (
            {"email": 5},
            "INVALID_PASS_CONTENT",
            "passContent.recipients.recipient.{i}.email: Input should be a valid string.",
        ),
        (
            {"firstName": "x"},
            "INVALID_RECIPIENT",
            "Recipient {i} has neither an id nor an email or mobileNumber.",
        ),
        (
            {"mobileNumber": "", "mobile_number": "+15550100"},
            "INVALID_RECIPIENT",
            "Recipient {i} has neither an id nor an email or mobileNumber.",
        ),
        (
            {"id": True},
            "INVALID_PASS_CONTENT",
            "passContent.recipients.recipient.{i}.id: Input should be a valid string.",
        ),
        (
            {"id": "1", "fields": {"seat": {"row": 1}}},
            None,
            None,
        ),
        ("just text", None, None),
        ({"email": "\\ud800@example.com"}, "INVALID_PASS_CONTENT_JSON", None),
    ],
)
def test_a_bad_entry_is_the_400_a_small_list_gets_and_stores_nothing(
    client: TestClient, entry: object, code: str | None, message: str | None
) -> None:
    """Each bad entry answers exactly as in a list of one chunk, wherever it is."""
    small = [{"email": "a@example.com"}, entry]
    large = _entries(SIZE)
    where = recipient_list.CHUNK + 7
    large[where] = entry  # type: ignore[call-overload]
    before = _stored(client)
    answers = []
    for entries in (small, large):
        text = json.dumps(email_content(entries)).replace("\\\\ud800", "\\ud800")
        response = _post(client, "BAD", text)
        assert response.status_code == 400, response.text
        answers.append(response.json())
    assert _stored(client) == before
    small_answer, large_answer = answers
    assert large_answer["errorCode"] == small_answer["errorCode"]
    expected = small_answer["message"].replace("recipient.1", f"recipient.{where}")
    assert large_answer["message"] == expected.replace("Recipient 1 ", f"Recipient {where} ")
    if code is not None:
        assert large_answer["errorCode"] == code
    if message is not None:
        assert large_answer["message"] == message.format(i=where)


def test_a_list_built_in_code_is_staged_too(settings: Settings) -> None:
    """``passpost send`` and the console pass models: a large list is chunked the same way."""
    from passpost.distribution.schemas import RecipientRef

    size = SIZE + 30
    refs = [RecipientRef(email=f"c{i}@example.com") for i in range(size)]
    listed = recipient_list.from_refs(refs)
    assert listed.total == size
    chunk = recipient_list.CHUNK
    assert [c.size for c in listed.chunks] == [chunk] * (size // chunk) + [size % chunk]
    loaded = recipient_list.load_chunk(listed.chunks[2].entries)
    assert loaded[0] == refs[2 * chunk]


def _mixed(p: str, n: int) -> list[dict[str, Any]]:
    """Entries of every kind, ``p`` naming this list's addresses and ``n`` its numbers."""
    entries: list[dict[str, Any]] = [{"email": f"{p}{i}@example.com"} for i in range(SIZE)]
    entries[5] = {"email": f"{p}known@example.com", "firstName": "Completed"}  # no name yet
    entries[6] = {"email": f"{p}named@example.com", "firstName": "Other"}  # keeps its name
    entries[7] = {"email": f"{p}both@example.com", "mobileNumber": f"+120255501{n}1"}
    entries[8] = {"email": f"{p}both@example.com"}  # the one above, its number first
    entries[9] = {"mobileNumber": f"+120255501{n}2", "firstName": "Mobile"}
    entries[10] = {"mobileNumber": f"+120255501{n}3"}  # an existing recipient's number
    entries[11] = {"email": "not an address"}
    entries[12] = {"email": f"{p}bad-name@example.com", "mobileNumber": "12"}
    entries[recipient_list.CHUNK + 3] = {"email": f"{p}5@Example.com", "lastName": "Again"}
    entries[recipient_list.CHUNK + 4] = {"email": f"{p}named@example.com"}
    return entries


def _audience(request_id: int, p: str, n: int) -> list[tuple[Any, ...]]:
    """Who got what: each holder's recipient (``p`` and ``n`` left out) and deliveries."""
    url = get_settings().resolved_database_url
    with session_scope(url) as session:
        rows = session.execute(
            select(
                Recipient.email,
                Recipient.mobile_number,
                Recipient.first_name,
                Recipient.last_name,
                PassHolder.audience_id.startswith(p),
                Delivery.state,
                Delivery.last_error,
            )
            .select_from(PassHolder)
            .join(Delivery, Delivery.holder_id == PassHolder.id)
            .outerjoin(Recipient, Recipient.id == PassHolder.recipient_id)
            .where(PassHolder.request_id == request_id)
        )
        return sorted(
            (
                (email or "").replace(p, "*", 1),
                (mobile or "").replace(f"+120255501{n}", "*"),
                *(str(v) for v in rest),
            )
            for email, mobile, *rest in rows
        )


def test_every_kind_of_entry_is_expanded_as_in_the_import_call(
    client: TestClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Recipients and ledgers of the same list expanded by a worker ("sx-") and in the
    # import call ("ix-"): the same, whatever each entry needs.
    for p, n in (("sx-", 1), ("ix-", 2)):
        for body in (
            {"email": f"{p}known@example.com"},
            {"email": f"{p}named@example.com", "firstName": "Named"},
            {"mobileNumber": f"+120255501{n}3", "lastName": "Phone"},
        ):
            response = client.post("/api/v1/audience", json=body, headers=basic())
            assert response.status_code in (200, 201), response.text
    staged = int(_post(client, "MIXED-S", email_content(_mixed("sx-", 1))).json()["requestId"])
    _expand(settings, staged)
    monkeypatch.setattr(recipient_list, "INLINE_MAX", 10 * SIZE)
    inline = _post(client, "MIXED-I", email_content(_mixed("ix-", 2)))
    assert inline.status_code == 200, inline.text
    expanded = _audience(staged, "sx-", 1)
    assert expanded == _audience(int(inline.json()["requestId"]), "ix-", 2)
    people = {row[0]: row for row in expanded}
    assert people["*known@example.com"][2] == "Completed"
    assert people["*named@example.com"][2] == "Named"
    assert people["*both@example.com"][1] == "*1"


def test_the_sends_are_fed_only_once_they_may_start(client: TestClient, settings: Settings) -> None:
    later = int(time.time() + 3600) * 1000
    url = settings.resolved_database_url
    fed = {}
    for serial, start in (("FEED-LATER", later), ("FEED-NOW", 0)):
        content = email_content(_entries(SIZE, prefix=serial), startTimeStamp=start)
        request_id = int(_post(client, serial, content).json()["requestId"])
        _expand(settings, request_id, chunks=1)
        with session_scope(url) as session:
            fed[serial] = expansion.feed_stopped(session, request_id=request_id)
    # Nothing is due for an hour: feeding would only search the ledger for due rows.
    assert fed == {"FEED-LATER": False, "FEED-NOW": True}
