"""The two calls Wallet polls — the latest pass and serials-since — as plain answers.

Each call is one read-only transaction on a Core connection: the latest pass is one
statement (token, newest version and Last-Modified, ``passes.latest``) plus the pass bytes
unless they are cached (``ContentCache``), serials-since one statement. ``web.polled``
serves them straight from ASGI; the FastAPI routes in ``passkit.api`` (which document them
in OpenAPI) answer through the same functions.

Where a read runs (``Reads``): on SQLite, on the event loop itself, through one connection
kept for it and its DBAPI cursor (``sqlite_reads``). An indexed read in WAL mode never
waits for writers, and costs less than the hop to a worker thread would (measured: README,
"Speed"). On PostgreSQL a statement is a network round trip, so it goes to a worker thread
with a pooled connection.

On that kept SQLite connection an answer is remembered (``AnswerMemo``) for as long as
nothing at all was committed to the database: SQLite's ``data_version`` tells, for one
cheap pragma, whether any other connection (of any process) committed since. A remembered
answer is the very answer the statements would give again; the first commit anywhere
forgets them all, so no update, registration or tag can be hidden by one.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import cast

import msgspec
from sqlalchemy import Connection, Engine
from starlette.concurrency import run_in_threadpool

from passpost.config import Settings, get_settings
from passpost.db import get_engine
from passpost.errors import PasspostError
from passpost.passes.latest import version_content
from passpost.passkit import service
from passpost.passkit.content_cache import ContentCache
from passpost.passkit.sqlite_reads import DirectReads, observed
from passpost.timestamps import http_date, parse_http_date

PKPASS_MEDIA_TYPE = "application/vnd.apple.pkpass"
_PKPASS = (b"content-type", PKPASS_MEDIA_TYPE.encode())
_JSON = (b"content-type", b"application/json")
_NO_CACHE = (b"cache-control", b"no-cache")

# Devices send back the Last-Modified they were given: few distinct dates, parsed and
# formatted again and again (email.utils costs ~10 µs a call).
_http_date = lru_cache(maxsize=4096)(http_date)
_parsed_dates = lru_cache(maxsize=1024)(parse_http_date)
HTTP_DATE_CHARS = 29  # "Sun, 06 Nov 1994 08:49:37 GMT"


def _parse_http_date(value: str | None) -> datetime | None:
    # Only the preferred format's length is remembered: the header is the client's.
    if value is not None and len(value) == HTTP_DATE_CHARS:
        return _parsed_dates(value)
    return parse_http_date(value)


@dataclass(frozen=True, slots=True)
class Answer:
    """A complete HTTP answer: status, raw headers (content-length excluded), body."""

    status: int
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes = b""


# What a connection's memo may hold: answers are small (a 304, a list of serials) or share
# their bytes with the ContentCache; the limits only bound what a flood of new keys costs.
MEMO_ENTRIES = 4096
MEMO_BYTES = 16 * 1024 * 1024


class AnswerMemo:
    """Answers computed while the database stood at one ``data_version``.

    Keyed by the function and its arguments. Any other ``data_version`` (a commit
    elsewhere since the answers were computed) forgets every answer at once. An answer
    computed just after a commit may be kept under the version read just before it: the
    next look-up then sees a newer version and forgets it, which only costs a statement.
    """

    def __init__(self, *, max_entries: int = MEMO_ENTRIES, max_bytes: int = MEMO_BYTES) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._version: int | None = None
        self._answers: dict[Hashable, Answer] = {}
        self._bytes = 0

    def get(self, version: int, key: Hashable) -> Answer | None:
        """The answer kept for ``key`` at ``version``, if any."""
        if version != self._version:
            self._forget(version)
            return None
        return self._answers.get(key)

    def keep(self, version: int, key: Hashable, answer: Answer) -> None:
        """Remember ``answer`` for ``key`` (computed at ``version`` or later)."""
        size = len(answer.body)
        if size > self.max_bytes:
            return
        full = len(self._answers) >= self.max_entries or self._bytes + size > self.max_bytes
        if version != self._version or full:
            self._forget(version)  # full: start again rather than track ages
        self._bytes += size - len(getattr(self._answers.get(key), "body", b""))
        self._answers[key] = answer

    def __len__(self) -> int:
        return len(self._answers)

    def _forget(self, version: int) -> None:
        self._version = version
        self._answers.clear()
        self._bytes = 0


class Reads:
    """Runs a short read-only function ``fn(connection, ...) -> Answer`` for the polled calls."""

    def __init__(self) -> None:
        self._inline: dict[str, tuple[Connection, DirectReads, AnswerMemo]] = {}
        # One event loop uses the inline connections; another (a second test client's)
        # finds them busy and takes the thread path, never waiting on the loop.
        self._lock = threading.Lock()

    async def answer(self, url: str, fn: Callable[..., Answer], *args: Hashable) -> Answer:
        """``fn(connection, *args)`` in one transaction that is rolled back afterwards.

        On SQLite's kept connection the answer is remembered until anything is committed
        (``AnswerMemo``).
        """
        engine = get_engine(url)
        if engine.dialect.name == "sqlite" and self._lock.acquire(blocking=False):
            try:
                return self._run_inline(url, engine, fn, args)
            finally:
                self._lock.release()
        return await run_in_threadpool(_run_pooled, engine, fn, args)

    def _run_inline(
        self, url: str, engine: Engine, fn: Callable[..., Answer], args: tuple[Hashable, ...]
    ) -> Answer:
        kept = self._inline.get(url)
        if kept is None or kept[0].closed or kept[0].engine is not engine:
            connection = engine.connect()
            dbapi = cast(sqlite3.Connection, connection.connection.dbapi_connection)
            direct = DirectReads(dbapi, engine.dialect)
            kept = self._inline[url] = (connection, direct, AnswerMemo())
        connection, direct, memo = kept
        try:
            if observed(connection):
                result = fn(connection, *args)
            else:
                version = direct.data_version()
                key = (fn, args)
                remembered = memo.get(version, key)
                if remembered is not None:
                    return remembered
                result = fn(direct, *args)
                memo.keep(version, key, result)
        except PasspostError:
            # A client's error (a stale token, a bad device): an ordinary answer, which
            # keeps the connection and what it remembers.
            if connection.in_transaction():
                connection.rollback()
            raise
        except BaseException:
            # Whatever went wrong, the next call starts on a fresh connection.
            self._inline.pop(url, None)
            connection.close()
            raise
        if connection.in_transaction():
            connection.rollback()
        return result

    def close(self) -> None:
        """Give the kept connections back to their pools."""
        with self._lock:
            kept, self._inline = list(self._inline.values()), {}
        for connection, _, _ in kept:
            connection.close()


def _run_pooled(engine: Engine, fn: Callable[..., Answer], args: tuple[Hashable, ...]) -> Answer:
    with engine.connect() as connection:  # closing rolls the transaction back
        return fn(connection, *args)


@dataclass
class PollState:
    """What the polled calls share in one application: where reads run, the pass bytes."""

    reads: Reads = field(default_factory=Reads)
    cache: ContentCache = field(default_factory=ContentCache)
    _settings: Settings | None = None
    _url: str = ""

    def database_url(self) -> str:
        """The settings' database URL (resolving it touches the file system: kept)."""
        settings = get_settings()
        if settings is not self._settings:
            self._settings, self._url = settings, settings.resolved_database_url
        return self._url


# -- the latest pass ---------------------------------------------------------------------


def _latest_pass(
    connection: Connection,
    cache: ContentCache,
    pass_type: str,
    serial: str,
    authorization: str | None,
    since: datetime | None,
) -> Answer:
    latest = service.authenticate_latest(
        connection,
        pass_type_identifier=pass_type,
        serial_number=serial,
        authorization=authorization,
    )
    headers = ((b"last-modified", _http_date(latest.last_modified).encode()), _NO_CACHE)
    if since is not None and latest.last_modified <= since:
        return Answer(304, headers)
    content = cache.get(latest.version_id)
    if content is None:
        content = version_content(connection, version_id=latest.version_id)
        cache.offer(latest.version_id, content)
    return Answer(200, (*headers, _PKPASS), content)


async def latest_pass(
    reads: Reads,
    cache: ContentCache,
    *,
    url: str,
    pass_type_identifier: str,
    serial_number: str,
    authorization: str | None,
    if_modified_since: str | None,
) -> Answer:
    """The newest version of a pass (200), or 304 without reading its bytes."""
    since = _parse_http_date(if_modified_since)
    return await reads.answer(
        url, _latest_pass, cache, pass_type_identifier, serial_number, authorization, since
    )


# -- serials since a tag -----------------------------------------------------------------


def _serials_since(
    connection: Connection, device: str, pass_type: str, since: int | None
) -> Answer:
    answer = service.serials_since(
        connection, device_library_identifier=device, pass_type_identifier=pass_type, since=since
    )
    if answer is None:
        return Answer(204, ())
    body = {"serialNumbers": answer.serial_numbers, "lastUpdated": answer.last_updated}
    return Answer(200, (_JSON,), msgspec.json.encode(body))


async def serials_since(
    reads: Reads,
    *,
    url: str,
    device_library_identifier: str,
    pass_type_identifier: str,
    passes_updated_since: str | None,
) -> Answer:
    """Serial numbers of the device's passes updated since the tag (204 when none)."""
    since = service.parse_tag(passes_updated_since)
    return await reads.answer(
        url, _serials_since, device_library_identifier, pass_type_identifier, since
    )
