"""The polled PassKit GETs answered before the middleware stack (``web/polled.py``).

What the stack did for these calls must still happen (rate limits on the same counters,
the body cap, security headers, metrics under the route template); the SQLite reads that
skip SQLAlchemy's execution layer must answer exactly as the SQLAlchemy path does; the
pass bytes cache must never serve an old version.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from sqlalchemy import event

from passpost.db import get_engine
from passpost.passkit.content_cache import ContentCache
from passpost.passkit.polls import Answer, AnswerMemo
from passpost.web.rate_limit import SweptMemoryStorage
from tests.conftest import MakeClient
from tests.passkit.helpers import PassStore, apple
from tests.passkit.test_passkit_metrics import scrape, value
from tests.passkit.test_webservice import PUSH_TOKEN, pass_path, reg_path, serials_path

LATEST_ROUTE = "/api/v1/passes/{pass_type_identifier}/{serial_number}"
SERIALS_ROUTE = "/api/v1/devices/{device_library_identifier}/registrations/{pass_type_identifier}"


def register(client: TestClient, store: PassStore, serial: str, device: str = "dev-1") -> None:
    response = client.post(
        reg_path(serial, device), json={"pushToken": PUSH_TOKEN}, headers=apple(store.token(serial))
    )
    assert response.status_code in (200, 201), response.text


def answers(client: TestClient, store: PassStore) -> list[tuple[int, dict[str, str], bytes]]:
    """Every polled answer worth comparing: 200, 304, 401, 400, 204 and the serials."""
    headers = apple(store.token("P1"))
    first = client.get(pass_path("P1"), headers=headers)
    since = {**headers, "If-Modified-Since": first.headers["last-modified"]}
    calls = [
        client.get(pass_path("P1"), headers=headers),
        client.get(pass_path("P1"), headers=since),
        client.get(pass_path("P1"), headers=apple("wrong")),
        client.get(pass_path("nope"), headers=headers),
        client.get(serials_path("dev-1")),
        client.get(serials_path("dev-1"), params={"passesUpdatedSince": "1"}),
        client.get(serials_path("dev-1"), params={"passesUpdatedSince": "999999"}),
        client.get(serials_path("dev-1"), params={"passesUpdatedSince": "x"}),
        client.get(serials_path("nobody")),
    ]
    ignored = {"date", "server"}
    return [
        (r.status_code, {k: v for k, v in r.headers.items() if k not in ignored}, r.content)
        for r in calls
    ]


def _two_registered_one_updated(client: TestClient, store: PassStore) -> None:
    """P1 and P2 issued and registered on dev-1, then P1 issued again."""
    store.issue("P1")
    store.issue("P2")
    register(client, store, "P1")
    register(client, store, "P2")
    store.issue("P1")


def test_direct_sqlite_reads_answer_as_sqlalchemy_does(
    client: TestClient, store: PassStore, database_url: str
) -> None:
    """A cursor listener sends the reads through SQLAlchemy: the answers must not change."""
    _two_registered_one_updated(client, store)
    direct = answers(client, store)
    seen: list[str] = []
    engine = get_engine(database_url)
    listener = lambda _c, _cur, statement, *_a: seen.append(statement)  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        through_sqlalchemy = answers(client, store)
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    assert seen, "the listener saw the polled statements"
    assert through_sqlalchemy == direct
    statuses = [status for status, _, _ in direct]
    assert statuses == [200, 304, 401, 401, 200, 200, 200, 400, 204]


@pytest.fixture
def traced(client: TestClient, database_url: str) -> Iterator[list[str]]:
    """Statements SQLite itself runs on the fast path's kept connection (SQLite only: its
    users run on ``database_url`` parametrized to SQLite alone)."""
    assert database_url.startswith("sqlite"), "the inline connection is SQLite's"
    client.get(serials_path("warm-up"))  # opens the kept connection
    reads = client.app.state.passkit_polls.reads  # type: ignore[attr-defined]
    connection, _, _ = reads._inline[database_url]
    dbapi: sqlite3.Connection = connection.connection.dbapi_connection
    statements: list[str] = []
    dbapi.set_trace_callback(statements.append)
    yield statements
    dbapi.set_trace_callback(None)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_direct_304_reads_no_bytes_and_cached_bytes_are_not_read_again(
    client: TestClient, store: PassStore, traced: list[str]
) -> None:
    content = store.issue("P1")
    headers = apple(store.token("P1"))
    reads_of_bytes = lambda: sum("pass_content" in s for s in traced)  # noqa: E731
    first = client.get(pass_path("P1"), headers=headers)
    assert first.content == content
    assert reads_of_bytes() == 1
    since = {**headers, "If-Modified-Since": first.headers["last-modified"]}
    store.issue("P2")  # a commit elsewhere: the answers remembered so far are forgotten
    assert client.get(pass_path("P1"), headers=since).status_code == 304
    assert reads_of_bytes() == 1
    # Second download: read again and kept; the third comes from memory.
    assert client.get(pass_path("P1"), headers=headers).content == content
    store.issue("P3")
    assert client.get(pass_path("P1"), headers=headers).content == content
    assert reads_of_bytes() == 2
    assert not any(s.strip().upper().startswith("BEGIN") for s in traced)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_remembered_answer_runs_no_statement_until_something_is_committed(
    client: TestClient, store: PassStore, traced: list[str]
) -> None:
    store.issue("P1")
    store.issue("P2")
    register(client, store, "P1")
    register(client, store, "P2")
    tag = client.get(serials_path("dev-1")).json()["lastUpdated"]
    since = {"passesUpdatedSince": tag}
    selects = lambda: sum(s.lstrip().upper().startswith("SELECT") for s in traced)  # noqa: E731
    assert client.get(serials_path("dev-1"), params=since).status_code == 204
    before = selects()
    for _ in range(3):
        assert client.get(serials_path("dev-1"), params=since).status_code == 204
    assert selects() == before  # only PRAGMA data_version ran
    store.issue("P2")  # another connection commits an update
    listed = client.get(serials_path("dev-1"), params=since)
    assert listed.json()["serialNumbers"] == ["P2"]
    assert int(listed.json()["lastUpdated"]) > int(tag)
    assert selects() == before + 1


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_client_error_keeps_the_connection_and_what_it_remembers(
    client: TestClient, store: PassStore, database_url: str, traced: list[str]
) -> None:
    store.issue("P1")
    register(client, store, "P1")
    reads = client.app.state.passkit_polls.reads  # type: ignore[attr-defined]
    kept = reads._inline[database_url]
    selects = lambda: sum(s.lstrip().upper().startswith("SELECT") for s in traced)  # noqa: E731
    assert client.get(serials_path("dev-1")).status_code == 200
    before = selects()
    assert client.get(pass_path("P1"), headers=apple("stale")).status_code == 401
    assert reads._inline[database_url] is kept
    assert client.get(serials_path("dev-1")).status_code == 200
    assert selects() == before + 1  # the 401's own look-up; the serials were remembered


def test_polls_see_every_commit_at_once(client: TestClient, store: PassStore) -> None:
    """Updates, registrations and new versions committed between two identical polls."""
    store.issue("P1")
    store.issue("P2")
    register(client, store, "P1")
    first = client.get(serials_path("dev-1")).json()
    assert first["serialNumbers"] == ["P1"]
    assert client.get(serials_path("dev-1")).json() == first  # remembered
    register(client, store, "P2")  # through the API's own engine, another connection
    assert client.get(serials_path("dev-1")).json()["serialNumbers"] == ["P1", "P2"]
    since = {"passesUpdatedSince": first["lastUpdated"]}
    assert client.get(serials_path("dev-1"), params=since).status_code == 204
    store.issue("P2")
    updated = client.get(serials_path("dev-1"), params=since).json()
    assert updated["serialNumbers"] == ["P2"]
    unregistered = client.delete(reg_path("P2", "dev-1"), headers=apple(store.token("P2")))
    assert unregistered.status_code == 200
    assert client.get(serials_path("dev-1"), params=since).status_code == 204
    # The latest pass: a 304 remembered, then a newer version is a 200 with the new bytes.
    headers = apple(store.token("P1"))
    last_modified = client.get(pass_path("P1"), headers=headers).headers["last-modified"]
    not_modified = {**headers, "If-Modified-Since": last_modified}
    assert client.get(pass_path("P1"), headers=not_modified).status_code == 304
    assert client.get(pass_path("P1"), headers=not_modified).status_code == 304
    time.sleep(1.01)  # Last-Modified has whole seconds
    newer = store.issue("P1")
    response = client.get(pass_path("P1"), headers=not_modified)
    assert response.status_code == 200
    assert response.content == newer


def test_a_cached_pass_never_hides_a_newer_version(client: TestClient, store: PassStore) -> None:
    store.issue("P1")
    headers = apple(store.token("P1"))
    for _ in range(3):  # admitted on the second download, served from memory on the third
        client.get(pass_path("P1"), headers=headers)
    newer = store.issue("P1")  # committed by another connection, as an import would
    response = client.get(pass_path("P1"), headers=headers)
    assert response.content == newer


def test_security_headers_on_every_polled_answer(client: TestClient, store: PassStore) -> None:
    store.issue("P1")
    ok = client.get(pass_path("P1"), headers=apple(store.token("P1")))
    assert ok.headers["x-content-type-options"] == "nosniff"
    assert ok.headers["cache-control"] == "no-cache"  # the route's own, kept
    assert ok.headers["content-length"] == str(len(ok.content))
    denied = client.get(pass_path("P1"), headers=apple("wrong"))
    assert denied.status_code == 401
    assert denied.json()["errorCode"] == "PASS_UNAUTHORIZED"
    assert denied.headers["www-authenticate"].startswith("Bearer")
    assert denied.headers["cache-control"] == "no-store"
    assert denied.headers["x-content-type-options"] == "nosniff"
    register(client, store, "P1")
    listed = client.get(serials_path("dev-1"))
    assert listed.headers["content-type"] == "application/json"
    assert listed.headers["cache-control"] == "no-store"
    none = client.get(serials_path("nobody"))
    assert none.status_code == 204
    assert none.content == b""
    assert none.headers["x-content-type-options"] == "nosniff"


def test_the_rate_limit_counts_polls_and_registrations_together(
    client_with: MakeClient, store: PassStore
) -> None:
    client = client_with(rate_limit_passkit="3/minute")
    store.issue("P1")
    headers = apple(store.token("P1"))
    before = scrape(client)
    assert client.get(pass_path("P1"), headers=headers).status_code == 200
    register(client, store, "P1")  # the FastAPI route, the same allowance
    assert client.get(serials_path("dev-1")).status_code == 200
    refused = client.get(pass_path("P1"), headers=headers)
    assert refused.status_code == 429
    assert refused.json()["errorCode"] == "RATE_LIMITED"
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["x-content-type-options"] == "nosniff"
    after = scrape(client)
    requests = "passpost_http_requests_total"

    def delta(**labels: str) -> float:
        return value(after, requests, **labels) - value(before, requests, **labels)

    # Refused before routing: counted as <unmatched>, as the middleware stack counts it.
    assert delta(method="GET", route="<unmatched>", status="429") == 1
    assert delta(method="GET", route=LATEST_ROUTE, status="200") == 1
    assert delta(method="GET", route=SERIALS_ROUTE, status="200") == 1
    timings = "passpost_http_request_duration_seconds_count"
    assert (
        value(after, timings, method="GET", route=LATEST_ROUTE)
        - value(before, timings, method="GET", route=LATEST_ROUTE)
        == 1
    )


def test_a_declared_body_above_the_cap_is_413(client: TestClient, store: PassStore) -> None:
    """The caps of ``web.body_limit``: 256 KiB under /devices/, 1 MiB elsewhere."""
    store.issue("P1")
    headers = apple(store.token("P1"))
    for path, size in ((serials_path("dev-1"), 300 * 1024), (pass_path("P1"), 1100 * 1024)):
        response = client.request("GET", path, headers=headers, content=b"x" * size)
        assert response.status_code == 413, path
        assert response.json()["errorCode"] == "PAYLOAD_TOO_LARGE"
    assert client.request("GET", pass_path("P1"), headers=headers, content=b"x").status_code == 200


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_unexpected_error_is_answered_by_the_500_handler_and_raised(
    client: TestClient, store: PassStore, database_url: str
) -> None:
    store.issue("P1")
    register(client, store, "P1")
    with get_engine(database_url).begin() as connection:  # breaks the serials statement
        connection.exec_driver_sql("ALTER TABLE passkit_registration RENAME TO gone")
    with pytest.raises(sqlite3.OperationalError):
        client.get(serials_path("dev-1"))  # raised on to the server (its log)
    labels = {"method": "GET", "route": SERIALS_ROUTE, "status": "500"}
    counted = lambda: REGISTRY.get_sample_value("passpost_http_requests_total", labels) or 0  # noqa: E731
    before = counted()
    quiet = TestClient(client.app, raise_server_exceptions=False)
    failed = quiet.get(serials_path("dev-1"))
    assert failed.status_code == 500
    assert failed.json() == {
        "id": "-1",
        "message": "Internal server error.",
        "errorCode": "INTERNAL_ERROR",
    }
    assert failed.headers["x-content-type-options"] == "nosniff"
    assert counted() == before + 1


def test_paths_and_methods_the_fast_path_leaves_to_the_router(
    client: TestClient, store: PassStore
) -> None:
    store.issue("P1")
    headers = apple(store.token("P1"))
    # PATCH on the same path is the operators' pass update: no operator, no entry.
    assert client.patch(pass_path("P1"), headers=headers, json={}).status_code == 401
    # One more segment is another route (the operators' detail), a trailing slash none.
    assert client.get(pass_path("P1") + "/detail", headers=headers).status_code == 401
    slash = client.get(pass_path("P1") + "/", headers=headers, follow_redirects=False)
    assert slash.status_code in (307, 404)
    assert client.head(pass_path("P1"), headers=headers).status_code == 405


def test_the_last_passes_updated_since_counts(client: TestClient, store: PassStore) -> None:
    store.issue("P1")
    register(client, store, "P1")
    tag = client.get(serials_path("dev-1")).json()["lastUpdated"]
    query = f"passesUpdatedSince=0&passesUpdatedSince={tag}"
    assert client.get(f"{serials_path('dev-1')}?{query}").status_code == 204
    assert client.get(f"{serials_path('dev-1')}?passesUpdatedSince=").status_code == 200


def test_the_first_of_repeated_headers_counts(client: TestClient, store: PassStore) -> None:
    store.issue("P1")
    good, bad = apple(store.token("P1"))["Authorization"], "ApplePass wrong"
    first_good = [("Authorization", good), ("Authorization", bad)]
    first_bad = [("Authorization", bad), ("Authorization", good)]
    assert client.get(pass_path("P1"), headers=first_good).status_code == 200
    assert client.get(pass_path("P1"), headers=first_bad).status_code == 401


def test_long_identifiers_answer_as_the_service_does(client: TestClient, store: PassStore) -> None:
    store.issue("P1")
    headers = apple(store.token("P1"))
    assert client.get(pass_path("S" * 300), headers=headers).status_code == 401
    assert client.get(serials_path("d" * 300)).json()["errorCode"] == "INVALID_DEVICE"
    assert client.get(serials_path("dev-1", pass_type="t" * 300)).status_code == 204


def test_two_event_loops_at_once_both_answer(client: TestClient, store: PassStore) -> None:
    """A second loop finds the kept SQLite connection busy and reads on a worker thread."""
    content = store.issue("P1")
    headers = apple(store.token("P1"))
    app = client.app
    results: list[bytes] = []

    def fetch() -> None:
        with TestClient(app) as other:  # its own event loop, in its own thread
            for _ in range(20):
                results.append(other.get(pass_path("P1"), headers=headers).content)

    threads = [threading.Thread(target=fetch) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results == [content] * 60


# -- the cache and the limiter's storage -----------------------------------------------


def test_the_cache_admits_on_second_sight_and_stays_within_its_bytes() -> None:
    cache = ContentCache(max_bytes=100)
    cache.offer(1, b"a" * 40)
    assert cache.get(1) is None  # seen once: not kept
    cache.offer(1, b"a" * 40)
    assert cache.get(1) == b"a" * 40
    for version in (2, 3):
        cache.offer(version, b"b" * 40)
        cache.offer(version, b"b" * 40)
    assert cache.size <= 100
    assert 1 not in cache  # least recently used went first
    assert cache.get(3) == b"b" * 40
    cache.offer(9, b"c" * 101)
    cache.offer(9, b"c" * 101)
    assert 9 not in cache  # larger than the whole cache


def test_the_answer_memo_forgets_on_a_new_version_and_stays_bounded() -> None:
    memo = AnswerMemo(max_entries=2, max_bytes=10)
    small = Answer(200, (), b"abc")
    memo.keep(1, "a", small)
    assert memo.get(1, "a") is small
    assert memo.get(2, "a") is None  # something was committed: all forgotten
    assert memo.get(1, "a") is None
    memo.keep(1, "a", small)
    memo.keep(1, "b", small)
    memo.keep(1, "c", small)  # a third entry: the memo starts again
    assert len(memo) == 1 and memo.get(1, "c") is small
    memo.keep(1, "d", Answer(200, (), b"x" * 11))  # larger than the memo: not kept
    assert memo.get(1, "d") is None and memo.get(1, "c") is small
    memo.keep(1, "e", Answer(200, (), b"y" * 8))  # 3 + 8 bytes > 10: starts again
    assert len(memo) == 1


def test_the_doorkeeper_forgets_when_full() -> None:
    cache = ContentCache(max_bytes=1000, doorkeeper=2)
    cache.offer(1, b"x")
    cache.offer(2, b"x")
    cache.offer(3, b"x")  # the doorkeeper was full: 1 and 2 are forgotten
    cache.offer(1, b"x")
    assert 1 not in cache


def test_the_limiter_storage_starts_no_thread() -> None:
    from limits import parse
    from limits.strategies import SlidingWindowCounterRateLimiter

    before = set(threading.enumerate())
    limiter = SlidingWindowCounterRateLimiter(SweptMemoryStorage())
    item = parse("3/minute")
    assert [limiter.hit(item, "g", "a") for _ in range(4)] == [True, True, True, False]
    assert limiter.hit(item, "g", "b")
    assert set(threading.enumerate()) <= before  # started none (others may have ended)


def test_the_documented_routes_answer_as_the_fast_path_does(
    client: TestClient, store: PassStore, database_url: str
) -> None:
    """The FastAPI routes (kept for OpenAPI) reached without the fast path in front."""
    from fastapi import FastAPI

    from passpost.passkit.api import router
    from passpost.passkit.polls import PollState
    from passpost.web import errors

    _two_registered_one_updated(client, store)
    fast = answers(client, store)
    bare = FastAPI()
    bare.state.passkit_polls = PollState()
    errors.install(bare)
    bare.include_router(router)
    with TestClient(bare) as routed:
        through_routes = answers(routed, store)
    # The stack's security headers are not on the bare app; everything else must match.
    added = {"x-content-type-options", "cache-control"}
    strip = lambda all_: [  # noqa: E731
        (status, {k: v for k, v in headers.items() if k not in added}, body)
        for status, headers, body in all_
    ]
    assert strip(through_routes) == strip(fast)
