"""The service functions other domains call: ad-hoc recipients and bulk lookup."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select

from passpost.audience import service
from passpost.audience.models import Recipient
from passpost.audience.validation import normalize_email, normalize_mobile, parse_flag
from passpost.db import session_scope
from passpost.errors import BadRequest


@pytest.fixture
def db(settings_env: Path, database_url: str) -> str:
    """A migrated database (SQLite and PostgreSQL) with default settings."""
    return database_url


def _count(url: str) -> int:
    with session_scope(url) as session:
        return session.scalar(select(func.count()).select_from(Recipient)) or 0


def test_match_by_email_then_complete(db: str) -> None:
    with session_scope(db) as session:
        created = service.match_or_create_recipient(
            session, email=" Pat@Example.com ", mobile_number=None, first_name="Pat"
        )
        assert created.email == "pat@example.com" and created.first_name == "Pat"
        again = service.match_or_create_recipient(
            session,
            email="PAT@example.com",
            mobile_number="202-555-0143",
            first_name="Other",
            last_name="Person",
        )
        assert again.id == created.id
        # Completed, never overwritten.
        assert again.mobile_number == "+12025550143"
        assert (again.first_name, again.last_name) == ("Pat", "Person")
    assert _count(db) == 1


def test_match_by_mobile(db: str) -> None:
    with session_scope(db) as session:
        by_phone = service.match_or_create_recipient(
            session, email=None, mobile_number="+44 20 7946 0958"
        )
        same = service.match_or_create_recipient(session, email=None, mobile_number="+442079460958")
        assert same.id == by_phone.id
        # An e-mail given with a number whose owner has no e-mail: the same person.
        completed = service.match_or_create_recipient(
            session, email="lee@example.com", mobile_number="+442079460958"
        )
        assert completed.id == by_phone.id and completed.email == "lee@example.com"
        # The number's owner now has another e-mail: someone else sharing the phone.
        other = service.match_or_create_recipient(
            session, email="kim@example.com", mobile_number="+442079460958"
        )
        assert other.id != by_phone.id and other.mobile_number == "+442079460958"
    assert _count(db) == 2


@pytest.mark.parametrize(
    ("email", "mobile", "code"),
    [
        ("nope", None, "INVALID_EMAIL"),
        (None, "123", "INVALID_MOBILE_NUMBER"),
        (None, None, "MISSING_CONTACT"),
        ("  ", " ", "MISSING_CONTACT"),
    ],
)
def test_match_rejects(db: str, email: str | None, mobile: str | None, code: str) -> None:
    with session_scope(db) as session, pytest.raises(BadRequest) as caught:
        service.match_or_create_recipient(session, email=email, mobile_number=mobile)
    assert caught.value.error_code == code
    assert _count(db) == 0


def test_concurrent_ad_hoc_creation_makes_one_recipient(db: str) -> None:
    """Many transactions creating the same address at once: one row, no error."""
    barrier = threading.Barrier(6)
    ids: list[int] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait(timeout=30)
            # As the import call does: a writer transaction (on SQLite, BEGIN IMMEDIATE
            # serialises them; on PostgreSQL they really race on the unique index).
            with session_scope(db, write=True) as session:
                recipient = service.match_or_create_recipient(
                    session, email="race@example.com", mobile_number=None
                )
                ids.append(recipient.id)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert len(set(ids)) == 1 and len(ids) == 6
    assert _count(db) == 1


def test_get_recipients(db: str) -> None:
    with session_scope(db) as session:
        made = [
            service.create_recipient(session, fields={"email": f"g{i}@example.com"})
            for i in range(1203)
        ]
        wanted = [r.id for r in made[::2]] + [10**12, made[0].id]
        found = service.get_recipients(session, wanted)
        assert set(found) == {r.id for r in made[::2]}
        assert all(found[r.id].email == r.email for r in made[::2])
        assert service.get_recipients(session, []) == {}


@pytest.mark.parametrize(
    "good",
    [
        "a@example.com",
        "first.last+tag@sub.example.co.uk",
        "o'hara@example.ie",
        "x@xn--mnchen-3ya.de",
    ],
)
def test_emails_accepted(good: str) -> None:
    assert normalize_email(good.upper()) == good.lower()


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "@example.com",
        "a@",
        "a@localhost",
        "a@-bad.com",
        "a@exa_mple.com",
        "a..b@example.com",
        ".a@example.com",
        "a@1.2.3.4",
        "a(b)@example.com",
        "x" * 65 + "@example.com",
        "a@" + "b" * 250 + ".com",
    ],
)
def test_emails_rejected(bad: str) -> None:
    with pytest.raises(BadRequest) as caught:
        normalize_email(bad)
    assert caught.value.error_code == "INVALID_EMAIL"


def test_mobile_regions() -> None:
    assert normalize_mobile("030 901820", "DE") == "+4930901820"
    assert normalize_mobile("+1 202 555 0143", "DE") == "+12025550143"
    assert normalize_mobile(12025550143, "GB") == "+12025550143"
    with pytest.raises(BadRequest):
        normalize_mobile("030 901820", "US")


def test_flags() -> None:
    assert parse_flag("f", "Yes") is True and parse_flag("f", "0") is False
    assert parse_flag("f", True) is True and parse_flag("f", 0) is False
    with pytest.raises(BadRequest):
        parse_flag("f", 2)


def test_recipients_for_emails_finds_creates_and_leaves_the_rest(db: str) -> None:
    with session_scope(db) as session:
        existing = service.match_or_create_recipient(
            session, email="ada@example.com", mobile_number=None
        )
        session.flush()
        known = service.recipients_for_emails(
            session,
            [
                ("ADA@example.com", None, "Ada", None),  # exists: found, not duplicated
                ("new@example.com", None, "New", "Person"),  # e-mail only: created
                ("new@example.com", None, None, None),  # the same address again
                ("not an address", None, None, None),  # invalid: left to the caller
                ("phone@example.com", "202-555-0143", None, None),  # may match by number
                ("long@example.com", None, "x" * 10_000, None),  # invalid name: left
                (None, "202-555-0199", None, None),  # no e-mail at all
            ],
        )
        assert set(known) == {"ada@example.com", "new@example.com"}
        assert known["ada@example.com"].id == existing.id
        assert (known["new@example.com"].first_name, known["new@example.com"].last_name) == (
            "New",
            "Person",
        )
        assert known["new@example.com"].email_subscription is True
        # What it left out is still matched or refused one by one, as before.
        with pytest.raises(BadRequest):
            service.match_or_create_recipient(
                session, email="long@example.com", mobile_number=None, first_name="x" * 10_000
            )
        completed = service.match_or_create_recipient(
            session, email="ada@example.com", mobile_number=None, first_name="Ada", known=known
        )
        assert completed.id == existing.id and completed.first_name == "Ada"
    assert _count(db) == 2
