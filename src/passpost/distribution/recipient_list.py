"""A large request's recipient list: checked in the import call, stored as sent, in chunks.

A million recipients are tens of megabytes of JSON. ``json.loads`` and pydantic take
seconds and hundreds of megabytes for them, so the import call reads the list with msgspec
instead: it splits ``passContent.recipients.recipient`` into its entries without building
them, then checks each chunk of entries against a typed struct that accepts exactly what
``schemas.RecipientRef`` accepts (for a chunk msgspec refuses, pydantic itself is asked,
so the 400 is the one a small list gets). Each chunk is kept as the client sent it,
compressed; the workers expand them (``distribution.expansion``) with ``RecipientRef``.

Memory stays proportional to the body, which the body limit caps: the entries are views
of the body, and one chunk is decoded at a time.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated

import msgspec
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import bindparam, insert, select
from sqlalchemy.orm import Session

from passpost import jsontext
from passpost.db import utcnow
from passpost.distribution.models import DistributionRequest, RecipientChunk, RequestExpansion
from passpost.distribution.schemas import RecipientRef
from passpost.errors import BadRequest

# Entries per chunk: the unit a worker expands in one transaction, short enough (tens of
# milliseconds) that other writers of a SQLite database hardly wait for it.
CHUNK = 100
# Lists up to this size are expanded inside the import call, as they always were.
INLINE_MAX = 1000


class _Entry(msgspec.Struct, gc=False):
    """What ``RecipientRef`` accepts: its aliases and field names, extra keys ignored."""

    id: str | int | None = None
    email: str | None = None
    # Unset, not None, when absent: pydantic takes the alias over the field name.
    mobileNumber: str | msgspec.UnsetType | None = msgspec.UNSET
    mobile_number: str | None = None
    firstName: str | None = None
    first_name: str | None = None
    lastName: str | None = None
    last_name: str | None = None
    fields: dict[str, str | int | float | bool] | None = None

    def has_address(self) -> bool:
        """An id, an email or a mobile number, as ``schemas._check`` asks of an entry."""
        mobile = self.mobile_number if self.mobileNumber is msgspec.UNSET else self.mobileNumber
        # An integer id (even 0) becomes the text "0": present.
        return isinstance(self.id, int) or bool(self.id or self.email or mobile)


_NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]


class _WithEmail(_Entry, gc=False, kw_only=True):
    email: _NonEmpty


class _WithId(_Entry, gc=False, kw_only=True):
    id: _NonEmpty | int


_ENTRIES = msgspec.json.Decoder(list[_Entry])
# A list is usually all addresses or all ids: decoded as such, every entry has an address
# without a look at each in Python.
_ALL_ADDRESSED = (msgspec.json.Decoder(list[_WithEmail]), msgspec.json.Decoder(list[_WithId]))
# Entries checked per decode (the chunks stored are smaller: a worker's unit).
_CHECKED = 1000
_RAW_OBJECT = msgspec.json.Decoder(dict[str, msgspec.Raw])
_RAW_ARRAY = msgspec.json.Decoder(list[msgspec.Raw])


@dataclass(frozen=True)
class Chunk:
    first_index: int
    size: int
    entries: bytes  # zlib-compressed JSON array


@dataclass(frozen=True)
class RecipientList:
    """A checked recipient list in chunks, ready to be stored."""

    total: int
    chunks: tuple[Chunk, ...]


def split_content(raw: bytes | str) -> tuple[bytes, Sequence[msgspec.Raw]] | None:
    """``passContent`` without its recipient entries, and the entries (views of ``raw``).

    None when the list is small, or when ``raw`` is not an object with a
    ``recipients.recipient`` array (the ordinary parse then says what is wrong).
    """
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    try:
        top = _RAW_OBJECT.decode(data)
        recipients = _RAW_OBJECT.decode(top["recipients"])
        entries = _RAW_ARRAY.decode(recipients["recipient"])
    except (msgspec.DecodeError, KeyError, RecursionError):
        return None
    if len(entries) <= INLINE_MAX:
        return None
    recipients["recipient"] = msgspec.Raw(b"[]")
    top["recipients"] = msgspec.Raw(msgspec.json.encode(recipients))
    return msgspec.json.encode(top), entries


def check_entries(entries: Sequence[msgspec.Raw]) -> tuple[RecipientList, BadRequest | None]:
    """Check every entry's types, chunk by chunk; compress each chunk as sent.

    Raises the type error of the first bad entry; returns the first entry without an
    address as an error to raise after the rest of ``passContent`` was checked (the order
    in which a small list reports its problems).
    """
    chunks: list[Chunk] = []
    missing: BadRequest | None = None
    for start in range(0, len(entries), _CHECKED):
        block = entries[start : start + _CHECKED]
        if missing is None:
            missing = _check_block(b"[" + b",".join(block) + b"]", start)
        for offset in range(0, len(block), CHUNK):
            body = b"[" + b",".join(block[offset : offset + CHUNK]) + b"]"
            size = min(CHUNK, len(block) - offset)
            chunks.append(Chunk(start + offset, size, zlib.compress(body, 1)))
    return RecipientList(len(entries), tuple(chunks)), missing


def _check_block(body: bytes, start: int) -> BadRequest | None:
    """Raise a block's first type error; return its first entry without an address."""
    for decoder in _ALL_ADDRESSED:
        try:
            decoder.decode(body)
            return None
        except (msgspec.DecodeError, RecursionError):
            pass
    try:
        decoded = _ENTRIES.decode(body)
    except (msgspec.DecodeError, RecursionError):
        # pydantic's own verdict: its 400, or it accepts (a huge integer id).
        refs = _as_refs(body, start)
        present = [bool(r.id or r.email or r.mobile_number) for r in refs]
        return None if all(present) else no_address(start + present.index(False))
    # An email or an id settles nearly every entry without a call per entry.
    for offset in [i for i, e in enumerate(decoded) if not (e.email or e.id)]:
        if not decoded[offset].has_address():
            return no_address(start + offset)
    return None


def no_address(index: int) -> BadRequest:
    return BadRequest(
        f"Recipient {index} has neither an id nor an email or mobileNumber.",
        error_code="INVALID_RECIPIENT",
    )


_REFS = TypeAdapter(list[RecipientRef])


def _as_refs(body: bytes, start: int) -> list[RecipientRef]:
    """A chunk read as a small list is: the 400 it gets for its first bad entry, if any."""
    value = jsontext.loads(body, what="passContent", error_code="INVALID_PASS_CONTENT_JSON")
    try:
        return _REFS.validate_python(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        index, *rest = first["loc"]
        where = ".".join(str(p) for p in ("recipients", "recipient", start + int(index), *rest))
        message = first["msg"].removeprefix("Value error, ")
        raise BadRequest(
            f"passContent.{where}: {message}.", error_code="INVALID_PASS_CONTENT"
        ) from exc


def from_refs(refs: Sequence[RecipientRef]) -> RecipientList:
    """A list built in code (``passpost send``, the console) in the same chunks."""
    chunks = []
    for start in range(0, len(refs), CHUNK):
        part = refs[start : start + CHUNK]
        body = _REFS.dump_json(list(part), by_alias=True, exclude_none=True)
        chunks.append(Chunk(start, len(part), zlib.compress(body, 1)))
    return RecipientList(len(refs), tuple(chunks))


def load_chunk(entries: bytes) -> list[RecipientRef]:
    """A stored chunk's entries as ``RecipientRef``s (checked when it was stored)."""
    return _REFS.validate_json(zlib.decompress(entries))


def store(session: Session, *, request: DistributionRequest, recipients: RecipientList) -> None:
    """Store a request's list for the workers (the caller commits it with the request)."""
    now = utcnow()
    session.add(
        RequestExpansion(
            request_id=request.id,
            pass_id=request.pass_id,
            total=recipients.total,
            expanded=0,
            contacts=0,
            created_at=now,
            updated_at=now,
        )
    )
    session.flush()
    rows = [
        {
            "request_id": request.id,
            "seq": seq,
            "first_index": chunk.first_index,
            "size": chunk.size,
            "entries": chunk.entries,
        }
        for seq, chunk in enumerate(recipients.chunks)
    ]
    session.connection().execute(insert(RecipientChunk.__table__), rows)  # type: ignore[arg-type]


def expanding(session: Session, pass_id: int) -> bool:
    """Whether a request of this pass is still being expanded.

    A later request of the pass is then staged too and waits its turn: who holds the pass
    (and gets an update rather than an issue message) is known only once it is done.
    """
    return session.connection().execute(_EXPANDING, {"pass_id": pass_id}).first() is not None


# Built once: every import asks.
_EXPANDING = (
    select(RequestExpansion.request_id)
    .where(RequestExpansion.pass_id == bindparam("pass_id"), RequestExpansion.finished_at.is_(None))
    .limit(1)
)
