"""CSV bulk import of recipients: upsert by e-mail, per-row errors, valid rows committed.

Semantics (decided here, documented in the README):
- The header row names the columns, case- and punctuation-insensitively (``firstName``,
  ``First Name``, ``first_name``); unknown columns are ignored and reported. It needs an
  ``email`` or a ``mobileNumber`` column. ``,``, ``;`` or tab separated; UTF-8 (BOM ok).
- Rows are numbered as a spreadsheet shows them: the header is row 1.
- A row with an e-mail updates the recipient with that e-mail, else creates one; a row
  with only a mobile number updates the oldest recipient with that number, else creates.
  Empty cells leave the stored value unchanged (and default to opted-in on creation).
- Partial success: valid rows are stored, invalid ones are listed with their row number,
  errorCode and message. A file that cannot be read as CSV at all stores nothing (400).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from passpost.audience.models import Recipient
from passpost.audience.service import find_by_mobile
from passpost.audience.validation import FIELDS, clean_fields
from passpost.db import utcnow
from passpost.errors import BadRequest, PasspostError

MAX_REPORTED_ERRORS = 1000
_CHUNK = 500
_ALIASES = {
    **{re.sub(r"[^a-z0-9]", "", name): name for name in FIELDS},
    "emailaddress": "email",
    "mobile": "mobile_number",
    "phone": "mobile_number",
    "phonenumber": "mobile_number",
    "lastactivedate": "last_active_at",
    "lastactivedatestr": "last_active_at",
}


@dataclass
class RowError:
    """Why one row was not imported."""

    row: int
    error_code: str
    message: str


@dataclass
class ImportReport:
    """What an import did."""

    total: int = 0
    created: int = 0
    updated: int = 0
    errors: list[RowError] = field(default_factory=list)
    failed: int = 0
    ignored_columns: list[str] = field(default_factory=list)


def _header(line: str) -> tuple[str, list[str | None], list[str]]:
    """The delimiter, the field of each column (None: ignored), the ignored names."""
    delimiter = max((",", ";", "\t"), key=line.count)
    names = next(csv.reader([line], delimiter=delimiter), [])
    columns: list[str | None] = []
    ignored: list[str] = []
    for name in names:
        key = _ALIASES.get(re.sub(r"[^a-z0-9]", "", name.lower()))
        if key is not None and key in columns:
            raise BadRequest(f"Column {name!r} appears twice.", error_code="CSV_DUPLICATE_COLUMN")
        columns.append(key)
        if key is None and name.strip():
            ignored.append(name.strip())
    if "email" not in columns and "mobile_number" not in columns:
        raise BadRequest(
            "The CSV header needs an email or a mobileNumber column.",
            error_code="CSV_NO_CONTACT_COLUMN",
        )
    return delimiter, columns, ignored


def _rows(
    text: IO[str], delimiter: str, columns: list[str | None]
) -> Iterator[tuple[int, dict[str, str] | RowError]]:
    """(row number, the row's non-empty cells by field, or why the row is unreadable)."""
    # strict: a broken quote is an error, not a cell that swallows the rest of the file.
    reader = csv.reader(text, delimiter=delimiter, strict=True)
    number = 1
    try:
        for cells in reader:
            number += 1
            if not any(cell.strip() for cell in cells):
                continue
            if len(cells) > len(columns) and any(c.strip() for c in cells[len(columns) :]):
                yield number, RowError(number, "CSV_ROW_LENGTH", "More cells than header columns.")
                continue
            yield (
                number,
                {
                    key: cell
                    for key, cell in zip(columns, cells, strict=False)
                    if key and cell.strip()
                },
            )
    except csv.Error as exc:
        raise BadRequest(
            f"Row {number} is not valid CSV: {exc}.", error_code="CSV_MALFORMED"
        ) from exc
    except UnicodeDecodeError as exc:
        raise BadRequest(
            f"The file is not UTF-8 text (near row {number}).", error_code="CSV_ENCODING"
        ) from exc


def _store(session: Session, chunk: list[tuple[int, dict[str, Any]]], report: ImportReport) -> None:
    """Upsert one chunk of cleaned rows, with one query for the e-mails it mentions."""
    emails = {fields["email"] for _, fields in chunk if fields.get("email")}
    by_email = {
        r.email: r for r in session.scalars(select(Recipient).where(Recipient.email.in_(emails)))
    }
    for _, fields in chunk:
        email = fields.get("email")
        recipient = by_email.get(email) if email else None
        if recipient is None and not email:
            recipient = find_by_mobile(session, fields["mobile_number"])
        if recipient is None:
            recipient = Recipient(**fields)
            session.add(recipient)
            report.created += 1
            if email:
                by_email[email] = recipient  # a later row with the same e-mail updates it
            else:
                session.flush()  # visible to find_by_mobile for later rows
            continue
        for name, value in fields.items():
            setattr(recipient, name, value)
        recipient.updated_at = utcnow()
        report.updated += 1
    session.flush()


def _error(report: ImportReport, error: RowError) -> None:
    report.failed += 1
    if len(report.errors) < MAX_REPORTED_ERRORS:
        report.errors.append(error)


def iter_contacts(
    data: IO[bytes], *, region: str, report: ImportReport
) -> Iterator[tuple[int, dict[str, Any]]]:
    """The valid rows of a recipients CSV, cleaned; invalid rows go to ``report``.

    A file that cannot be read as CSV at all raises ``BadRequest`` (CSV_*).
    """
    text = io.TextIOWrapper(data, encoding="utf-8-sig", newline="")
    try:
        first = text.readline()
    except UnicodeDecodeError as exc:
        raise BadRequest("The file is not UTF-8 text.", error_code="CSV_ENCODING") from exc
    if not first.strip():
        raise BadRequest("The CSV file is empty.", error_code="CSV_EMPTY")
    delimiter, columns, ignored = _header(first)
    report.ignored_columns = ignored
    for number, row in _rows(text, delimiter, columns):
        report.total += 1
        if isinstance(row, RowError):
            _error(report, row)
            continue
        try:
            fields = clean_fields(row, region=region)
        except PasspostError as exc:
            _error(report, RowError(number, exc.error_code, exc.message))
            continue
        if not fields.get("email") and not fields.get("mobile_number"):
            _error(report, RowError(number, "MISSING_CONTACT", "No email and no mobileNumber."))
            continue
        yield number, fields
    text.detach()  # leave the caller's file open


def read_contacts(data: IO[bytes], *, region: str) -> tuple[list[dict[str, Any]], ImportReport]:
    """The valid rows of a recipients CSV (for a send), and the report of the others."""
    report = ImportReport()
    rows = [fields for _, fields in iter_contacts(data, region=region, report=report)]
    return rows, report


def import_csv(session: Session, *, data: IO[bytes], region: str) -> ImportReport:
    """Read a CSV of recipients from ``data`` and upsert every valid row (see module doc)."""
    report = ImportReport()
    chunk: list[tuple[int, dict[str, Any]]] = []
    for number, fields in iter_contacts(data, region=region, report=report):
        chunk.append((number, fields))
        if len(chunk) >= _CHUNK:
            _store(session, chunk, report)
            chunk = []
    if chunk:
        _store(session, chunk, report)
    return report
