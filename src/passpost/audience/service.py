"""Recipients: create, read, update, delete, list, and match-or-create for ad-hoc sends.

Every function takes the caller's session and never commits (the caller owns the
transaction). Attributes are cleaned by ``audience.validation`` before they are stored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import bindparam, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from passpost.audience.models import Recipient
from passpost.audience.validation import FIELDS, clean_fields, normalize_email, normalize_mobile
from passpost.config import get_settings
from passpost.db import dialect_insert, utcnow
from passpost.errors import BadRequest

MAX_PAGE_SIZE = 1000
_IN_CHUNK = 500


def _region(region: str | None) -> str:
    return region or get_settings().sms_default_region


def _duplicate(email: str, existing_id: int | None = None) -> BadRequest:
    # 400, as the original answers "User already exists with this Email" and names the
    # existing user's id.
    suffix = f" (id {existing_id})" if existing_id is not None else ""
    return BadRequest(
        f"A recipient with e-mail {email!r} exists{suffix}.", error_code="DUPLICATE_EMAIL"
    )


def _require_contact(email: str | None, mobile_number: str | None) -> None:
    if not email and not mobile_number:
        raise BadRequest(
            "A recipient needs an email or a mobileNumber.", error_code="MISSING_CONTACT"
        )


def find_by_email(session: Session, email: str) -> Recipient | None:
    """The recipient with this (already normalised) e-mail address, if any."""
    return session.scalar(select(Recipient).where(Recipient.email == email))


def find_by_mobile(session: Session, mobile_number: str) -> Recipient | None:
    """The oldest recipient with this (E.164) mobile number, if any."""
    return session.scalar(
        select(Recipient)
        .where(Recipient.mobile_number == mobile_number)
        .order_by(Recipient.id)
        .limit(1)
    )


def create_recipient(
    session: Session, *, fields: Mapping[str, Any], region: str | None = None
) -> Recipient:
    """Create a recipient from snake_case attributes; ``BadRequest`` on a known e-mail."""
    cleaned = clean_fields(fields, region=_region(region))
    _require_contact(cleaned.get("email"), cleaned.get("mobile_number"))
    email = cleaned.get("email")
    existing = find_by_email(session, email) if email else None
    if email and existing is not None:
        raise _duplicate(email, existing.id)
    recipient = Recipient(**cleaned)
    session.add(recipient)
    try:
        session.flush()
    except IntegrityError as exc:  # a concurrent create of the same address won the race
        raise _duplicate(email or "") from exc
    return recipient


def get_recipient(session: Session, *, recipient_id: int) -> Recipient:
    """The recipient with this id, or ``BadRequest`` (the original answers 400)."""
    recipient = session.get(Recipient, recipient_id)
    if recipient is None:
        raise BadRequest(f"No recipient with id {recipient_id}.", error_code="AUDIENCE_NOT_FOUND")
    return recipient


def recipient_by_email(session: Session, email: str) -> Recipient:
    """The recipient with this e-mail address, or ``BadRequest``."""
    recipient = find_by_email(session, normalize_email(email))
    if recipient is None:
        raise BadRequest(f"No recipient with e-mail {email!r}.", error_code="AUDIENCE_NOT_FOUND")
    return recipient


def update_recipient(
    session: Session,
    *,
    recipient_id: int,
    changes: Mapping[str, Any],
    region: str | None = None,
) -> Recipient:
    """Apply the given attributes (absent ones stay; ``None``/``""`` clears a text field)."""
    recipient = get_recipient(session, recipient_id=recipient_id)
    cleaned = clean_fields(changes, region=_region(region))
    email = cleaned.get("email", recipient.email)
    _require_contact(email, cleaned.get("mobile_number", recipient.mobile_number))
    if email and email != recipient.email:
        other = find_by_email(session, email)
        if other is not None and other.id != recipient.id:
            raise _duplicate(email)
    for name, value in cleaned.items():
        setattr(recipient, name, value)
    recipient.updated_at = utcnow()
    try:
        session.flush()
    except IntegrityError as exc:
        raise _duplicate(email or "") from exc
    return recipient


def delete_recipient(session: Session, *, recipient_id: int) -> None:
    """Delete a recipient (its past deliveries keep their rows, without the link to it)."""
    session.delete(get_recipient(session, recipient_id=recipient_id))
    session.flush()


def list_recipients(session: Session, *, start: int, page_size: int) -> tuple[int, list[Recipient]]:
    """The total count and one page of recipients in id order."""
    if start < 0 or not 1 <= page_size <= MAX_PAGE_SIZE:
        raise BadRequest(
            f"start must be >= 0 and pageSize between 1 and {MAX_PAGE_SIZE}.",
            error_code="INVALID_PAGE",
        )
    total = session.scalar(select(func.count()).select_from(Recipient)) or 0
    page = session.scalars(select(Recipient).order_by(Recipient.id).offset(start).limit(page_size))
    return total, list(page)


def get_recipients(session: Session, ids: Iterable[int]) -> dict[int, Recipient]:
    """The recipients with these ids (unknown ids are simply absent from the result)."""
    return {r.id: r for r in _where_in(session, Recipient.id, ids)}


def _where_in(session: Session, column: Any, values: Iterable[Any]) -> list[Recipient]:
    """The recipients whose ``column`` is one of ``values``, in chunks of ``_IN_CHUNK``."""
    wanted = sorted(set(values))
    found: list[Recipient] = []
    query = _WHERE_IN[column.key]
    for i in range(0, len(wanted), _IN_CHUNK):
        found.extend(session.scalars(query, {"wanted": wanted[i : i + _IN_CHUNK]}))
    return found


# Built once: every import looks its recipients up (building costs more than running).
_WHERE_IN = {
    column.key: select(Recipient).where(column.in_(bindparam("wanted", expanding=True)))
    for column in (Recipient.id, Recipient.email)
}


def _insert_if_absent(session: Session, values: dict[str, Any]) -> None:
    """INSERT ... ON CONFLICT (email) DO NOTHING: concurrent imports cannot collide."""
    now = utcnow()
    row = {"created_at": now, "updated_at": now, **values}
    session.execute(dialect_insert(session, Recipient).values(**row).on_conflict_do_nothing())


def recipients_for_emails(
    session: Session, entries: Iterable[tuple[str | None, str | None, str | None, str | None]]
) -> dict[str, Recipient]:
    """For many ad-hoc (email, mobile, first name, last name) entries, the recipients by
    normalised e-mail, the missing e-mail-only ones created in bulk.

    What this returns is ``match_or_create_recipient``'s ``known``: a request's thousands of
    addresses cost a few statements instead of three each. Entries that do not validate, and
    new entries with a mobile number (matched by number too), are left to that function.
    """
    wanted: dict[str, dict[str, Any] | None] = {}
    region = _region(None)
    for email, mobile, first_name, last_name in entries:
        if not email or not email.strip():
            continue
        try:
            clean = normalize_email(email)
            names = clean_fields({"first_name": first_name, "last_name": last_name}, region=region)
        except BadRequest:
            continue
        new_row = None if mobile and str(mobile).strip() else {"email": clean, **names}
        wanted.setdefault(clean, new_row)
    known = _by_emails(session, wanted)
    now = utcnow()
    rows = [
        {"mobile_number": None, "created_at": now, "updated_at": now, **row}
        for address, row in wanted.items()
        if row is not None and address not in known
    ]
    if rows:  # one executemany: a multi-row VALUES is compiled anew for every size
        session.execute(dialect_insert(session, Recipient).on_conflict_do_nothing(), rows)
    known.update(_by_emails(session, [row["email"] for row in rows]))
    return known


def _by_emails(session: Session, emails: Iterable[str]) -> dict[str, Recipient]:
    return {r.email or "": r for r in _where_in(session, Recipient.email, emails)}


def match_or_create_recipient(
    session: Session,
    *,
    email: str | None,
    mobile_number: str | None,
    first_name: str | None = None,
    last_name: str | None = None,
    region: str | None = None,
    known: Mapping[str, Recipient] | None = None,
) -> Recipient:
    """The recipient with this e-mail (else this mobile number), created if there is none.

    A match is never overwritten, only completed: a missing mobile number or name is
    filled in. Invalid addresses raise ``BadRequest`` (INVALID_EMAIL/INVALID_MOBILE_NUMBER).
    ``known`` (from ``recipients_for_emails``) answers e-mail look-ups without a query.
    """
    clean_email = normalize_email(email) if email and email.strip() else None
    clean_mobile = (
        normalize_mobile(mobile_number, _region(region))
        if mobile_number and str(mobile_number).strip()
        else None
    )
    _require_contact(clean_email, clean_mobile)
    names = clean_fields({"first_name": first_name, "last_name": last_name}, region=_region(region))
    recipient = None
    if clean_email:
        recipient = (
            known[clean_email]
            if known is not None and clean_email in known
            else find_by_email(session, clean_email)
        )
    if recipient is None and clean_mobile:
        by_mobile = find_by_mobile(session, clean_mobile)
        # A mobile match with another e-mail is another person sharing a phone.
        if by_mobile is not None and (clean_email is None or by_mobile.email is None):
            recipient = by_mobile
    if recipient is None:
        values = {"email": clean_email, "mobile_number": clean_mobile, **names}
        if clean_email is None:
            recipient = Recipient(**values)
            session.add(recipient)
            session.flush()
            return recipient
        _insert_if_absent(session, values)
        recipient = find_by_email(session, clean_email)
        assert recipient is not None  # inserted now or by a concurrent transaction
    _complete(recipient, clean_email, clean_mobile, names)
    return recipient


def _complete(
    recipient: Recipient, email: str | None, mobile: str | None, names: Mapping[str, Any]
) -> None:
    changed = False
    for name, value in (("email", email), ("mobile_number", mobile), *names.items()):
        if value and getattr(recipient, name) is None:
            setattr(recipient, name, value)
            changed = True
    if changed:
        recipient.updated_at = utcnow()


__all__ = [
    "FIELDS",
    "create_recipient",
    "delete_recipient",
    "find_by_email",
    "find_by_mobile",
    "get_recipient",
    "get_recipients",
    "list_recipients",
    "match_or_create_recipient",
    "recipient_by_email",
    "recipients_for_emails",
    "update_recipient",
]


def search_recipients(
    session: Session, *, query: str, start: int, page_size: int
) -> tuple[int, list[Recipient]]:
    """``(total, page)`` of the recipients whose name, e-mail or number contains ``query``."""
    pattern = f"%{query.strip().lower()}%"
    condition = or_(
        func.lower(Recipient.first_name).like(pattern),
        func.lower(Recipient.last_name).like(pattern),
        Recipient.email.like(pattern),
        Recipient.mobile_number.like(pattern),
    )
    total = session.scalar(select(func.count()).select_from(Recipient).where(condition)) or 0
    page = session.scalars(
        select(Recipient).where(condition).order_by(Recipient.id).offset(start).limit(page_size)
    )
    return total, list(page)
