"""GET /api/v1/requests: newest first, counts from the tally, filters, errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from passpost.config import get_settings
from passpost.db import session_scope
from passpost.distribution.models import Delivery, RequestTallyDelta
from tests.support.app import basic
from tests.support.passes import shared_pki, signed_pass
from tests.support.service import email_content

PKI = shared_pki()


def _import(client: TestClient, serial: str, emails: list[str]) -> str:
    content = email_content([{"email": e} for e in emails])
    response = client.post(
        "/api/v1/message/pass/import",
        files={"pkPass": ("p.pkpass", signed_pass(PKI, serial=serial))},
        data={"passContent": json.dumps(content)},
        headers=basic(),
    )
    assert response.status_code == 200, response.text
    return response.json()["requestId"]


def _list(client: TestClient, **params: object) -> dict:
    response = client.get("/api/v1/requests", params=params, headers=basic())
    assert response.status_code == 200, response.text
    return response.json()


def test_list_newest_first_with_the_detail_counts(client: TestClient) -> None:
    first = _import(client, "L1", ["a@example.com", "b@example.com"])
    second = _import(client, "L2", ["c@example.com"])
    third = _import(client, "L3", ["d@example.com", "e@example.com", "f@example.com"])
    body = _list(client)
    assert body["total"] == 3
    assert [r["requestId"] for r in body["requests"]] == [third, second, first]
    # Every number is the one GET /api/v1/requests/{id} gives.
    for item in body["requests"]:
        detail = client.get(f"/api/v1/requests/{item['requestId']}", headers=basic()).json()
        for key in ("state", "channels", "progress", "recipients", "deliveries", "pending"):
            assert item[key] == detail[key]
    assert body["requests"][0]["channels"] == {"EMAIL": {"queued": 3}}
    assert body["requests"][0]["recipients"] == 3
    page = _list(client, start=1, pageSize=1)
    assert page["total"] == 3 and [r["requestId"] for r in page["requests"]] == [second]


def _deltas() -> int:
    with session_scope(get_settings().resolved_database_url) as session:
        return session.scalar(select(func.count()).select_from(RequestTallyDelta)) or 0


def test_state_filters_follow_the_ledger(client: TestClient) -> None:
    done = _import(client, "F1", ["a@example.com", "b@example.com"])
    partial = _import(client, "F2", ["c@example.com", "d@example.com"])
    queued = _import(client, "F3", ["e@example.com"])
    cancelled = _import(client, "F4", ["f@example.com"])
    with session_scope(get_settings().resolved_database_url) as session:
        session.execute(
            update(Delivery).where(Delivery.request_id == int(done)).values(state="submitted")
        )
        one = session.scalars(
            Delivery.__table__.select()
            .with_only_columns(Delivery.id)
            .where(Delivery.request_id == int(partial))
            .limit(1)
        ).one()
        session.execute(update(Delivery).where(Delivery.id == one).values(state="rejected"))
    assert client.post(f"/api/v1/pass/cancel/{cancelled}", headers=basic()).status_code == 200

    def ids(state: str) -> list[str]:
        return [r["requestId"] for r in _list(client, state=state)["requests"]]

    deltas = _deltas()
    assert ids("done") == [done]
    assert ids("in progress") == [partial]
    assert ids("queued") == [queued]
    assert ids("active") == [queued, partial]
    assert ids("cancelled") == [cancelled]
    # A filtered listing reads the unfolded deltas (PostgreSQL) and never folds them: GETs
    # write nothing.
    assert _deltas() == deltas
    if get_settings().resolved_database_url.startswith("postgresql"):
        assert deltas > 0
    detail = client.get(f"/api/v1/requests/{partial}", headers=basic()).json()
    assert detail["channels"] == {"EMAIL": {"queued": 1, "rejected": 1}}
    assert detail["progress"] == 0.5
    assert detail["firstSubmittedAt"] is None and detail["inFlight"] == 0
    sent = datetime(2026, 11, 27, 9, 0, 0, tzinfo=UTC)
    with session_scope(get_settings().resolved_database_url) as session:
        session.execute(
            update(Delivery)
            .where(Delivery.request_id == int(done))
            .values(submitted_at=sent, lease_until=sent + timedelta(days=3650))
        )
    detail = client.get(f"/api/v1/requests/{done}", headers=basic()).json()
    assert detail["firstSubmittedAt"] == detail["lastSubmittedAt"] == "2026-11-27T09:00:00Z"
    assert detail["inFlight"] == 0  # leased but submitted: not in flight


def test_date_filter_and_errors(client: TestClient) -> None:
    _import(client, "D1", ["a@example.com"])
    assert _list(client, createdFrom="2000-01-01T00:00:00Z")["total"] == 1
    assert _list(client, createdTo="2000-01-01T00:00:00Z")["total"] == 0
    assert _list(client, createdFrom="2999-01-01")["total"] == 0
    bad = client.get("/api/v1/requests", params={"state": "lost"}, headers=basic())
    assert bad.status_code == 400 and bad.json()["errorCode"] == "INVALID_STATE"
    assert bad.json()["id"] == "-1"
    bad = client.get("/api/v1/requests", params={"pageSize": 0}, headers=basic())
    assert bad.status_code == 400 and bad.json()["errorCode"] == "INVALID_REQUEST"
    assert client.get("/api/v1/requests").status_code == 401
