"""Distribution: import a pass version and create the request with its ledger (SPEC §1–§3).

Plain functions; the caller owns the transaction.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from cryptography import x509
from sqlalchemy import Dialect, bindparam, delete, insert, select, update
from sqlalchemy.orm import Session

from passpost import ids, pkpass, secrets
from passpost.audience.models import Recipient
from passpost.audience.service import match_or_create_recipient, recipients_for_emails
from passpost.certs.service import signing_material_for
from passpost.channels.base import Receipt
from passpost.config import Settings
from passpost.db import Base, bind_processor, placeholder, utcnow
from passpost.distribution import ledger, recipient_list
from passpost.distribution.models import (
    Channel,
    Delivery,
    DeliveryState,
    DistributionRequest,
    EarlyReceipt,
    PassHolder,
)
from passpost.distribution.personal import (
    HolderPass,
    Personalizer,
    Template,
    inspect_template,
    require_certificate,
)
from passpost.distribution.schemas import IntegrationConfig, Notification, PassContent, RecipientRef
from passpost.errors import BadRequest, NotFound
from passpost.group_commit import deferred
from passpost.passes.models import PassKind, WalletPass
from passpost.passes.personalize import Holder
from passpost.passes.service import add_version, create_pass, locked_pass_row, save_pass
from passpost.passes.signing import PreparedPass, prepare_pass
from passpost.passkit.service import announce_update

_INSERT_CHUNK = 1000
# Built once: every import runs them (building a statement costs more than running it).
_INSERT_REQUEST = insert(DistributionRequest.__table__)  # type: ignore[arg-type]
_INSERT_HOLDER = insert(PassHolder.__table__)  # type: ignore[arg-type]
_INSERT_DELIVERY = insert(Delivery.__table__)  # type: ignore[arg-type]


@dataclass(frozen=True)
class ImportResult:
    request_id: int
    pass_id: int
    version: int
    updatable: bool
    warnings: tuple[str, ...] = ()  # the errorCodes of the pass's warnings
    staged: bool = False  # the recipient list waits for the workers (``expansion``)


@lru_cache(maxsize=4)
def _anchors(path: str | None) -> tuple[x509.Certificate, ...] | None:
    return tuple(pkpass.load_certificates(Path(path))) if path else None


def inspect_upload(data: bytes, *, settings: Settings) -> pkpass.Report:
    """The validation report of an upload under the import's policy and trust anchors.

    Raises ``pkpass.PkpassError`` when the bytes cannot be read as a pass at all.
    """
    anchors = _anchors(str(settings.trust_anchors) if settings.trust_anchors else None)
    return pkpass.validate(data, policy=settings.signature_policy, trust_anchors=anchors)


def check_upload(
    upload: bytes, *, content: PassContent, settings: Settings
) -> tuple[Template | None, pkpass.Report]:
    """A template (SPEC §11) and its sample-filled report, or None and the shared pass's.

    A pass imported again (the same bytes, under the same policy) within ``CHECKED_TTL``
    seconds is not validated again: its outcome is remembered by content hash.
    """
    key = _checked_key(upload, content, settings)
    checked = _checked.get(key)
    if checked is None:
        template = inspect_template(upload, personalize_all=content.personalize, settings=settings)
        report = template.report if template else validate_upload(upload, settings=settings)
        checked = template, report
        _checked.put(key, checked, len(upload))
    return checked


def checked_upload(
    upload: bytes, *, content: PassContent, settings: Settings
) -> tuple[Template | None, pkpass.Report] | None:
    """``check_upload``'s outcome if it is remembered (no validation now), else None."""
    checked: tuple[Template | None, pkpass.Report] | None
    checked = _checked.get(_checked_key(upload, content, settings))
    return checked


def _checked_key(upload: bytes, content: PassContent, settings: Settings) -> Hashable:
    return (
        hashlib.sha256(upload).digest(),
        content.personalize,
        settings.signature_policy,
        str(settings.trust_anchors),
    )


# How long a validation outcome is reused: certificates expire, trust anchors change.
CHECKED_TTL = 60.0
CHECKED_MAX_BYTES = 64 * 1024 * 1024  # of uploads remembered (reports hold their members)
CHECKED_MAX_ENTRIES = 256


class _CheckedUploads:
    """Successful validations by content hash: LRU, bounded by entries and upload bytes."""

    def __init__(self) -> None:
        self._entries: OrderedDict[Hashable, tuple[float, int, Any]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Any:
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[0] < now:
                self._drop(key)
                return None
            self._entries.move_to_end(key)
            return entry[2]

    def put(self, key: Hashable, value: Any, size: int) -> None:
        if size > CHECKED_MAX_BYTES // 4:
            return
        with self._lock:
            if key in self._entries:
                self._drop(key)
            self._entries[key] = (time.monotonic() + CHECKED_TTL, size, value)
            self._bytes += size
            while self._bytes > CHECKED_MAX_BYTES or len(self._entries) > CHECKED_MAX_ENTRIES:
                self._drop(next(iter(self._entries)))

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def _drop(self, key: Hashable) -> None:
        self._bytes -= self._entries.pop(key)[1]


_checked = _CheckedUploads()


def validate_upload(data: bytes, *, settings: Settings) -> pkpass.Report:
    """Validate an uploaded .pkpass; a 400 names the first error and lists every finding."""
    try:
        report = inspect_upload(data, settings=settings)
    except pkpass.PkpassError as exc:
        raise BadRequest(f"Invalid pass: {exc.message}", error_code=exc.error_code) from exc
    if not report.ok or report.identity is None:
        first = report.errors[0]
        raise BadRequest(
            f"Invalid pass: {first.message}",
            error_code=first.error_code,
            extra={"findings": [finding.to_dict() for finding in report.findings]},
        )
    return report


def import_pass(
    session: Session,
    *,
    settings: Settings,
    upload: bytes,
    content: PassContent,
    created_by: str,
    must_exist: bool = False,
    report: pkpass.Report | None = None,
    template: Template | None = None,
) -> ImportResult:
    """Store a new pass version and create its request with one ledger row per delivery.

    ``report`` (and ``template``) are ``check_upload``'s for ``upload`` when the caller
    checked it already.
    """
    if report is None:
        template, report = check_upload(upload, content=content, settings=settings)
    if template is not None:
        require_certificate(session, template)
    identity = report.identity
    assert identity is not None
    # Read and written with Core statements (save_pass): not an ORM object of the session.
    wallet_pass = locked_pass_row(session, identity)
    if wallet_pass is None and must_exist:
        raise NotFound(
            f"No pass {identity.pass_type_identifier}/{identity.serial_number} to update.",
            error_code="PASS_NOT_FOUND",
        )
    if wallet_pass is None:
        wallet_pass = create_pass(session, identity, read=locked_pass_row)
    existing = wallet_pass if wallet_pass.latest_version_id is not None else None
    _check_kind(wallet_pass, template, existing)
    if template is not None:
        # Stored as uploaded: each holder's pass is filled and signed at first use.
        prepared = PreparedPass(upload, dict(report.pass_json or {}), None, True)
        wallet_pass.kind = PassKind.TEMPLATE
    else:
        signing = signing_material_for(
            session,
            pass_type_identifier=identity.pass_type_identifier,
            team_identifier=identity.team_identifier,
        )
        prepared = prepare_pass(
            content=upload,
            report=report,
            signing=signing,
            existing_token=existing.authentication_token if existing else None,
            settings=settings,
        )
    now = utcnow()
    if existing is not None and not content.integration.update:
        content.integration.update = _previous_update_templates(session, wallet_pass)
    version = add_version(session, wallet_pass=wallet_pass, prepared=prepared, now=now)
    row = {
        "id": ids.new_id(),
        "pass_id": wallet_pass.id,
        "pass_version_id": version.id,
        "kind": "issue" if existing is None else "update",
        "priority": content.priority,
        "start_at": content.start_at,
        "end_at": content.end_at,
        "cancelled_at": None,
        "integration_config": content.integration.model_dump_json(by_alias=True),
        "validation_warnings": _warnings_json(report),
        "created_by": created_by,
        "created_at": now,
    }
    request = DistributionRequest(**row)  # not in the session: its row is written
    staged = _staged_list(session, content, wallet_pass)
    writes = deferred(session)
    if staged is not None:
        session.connection().execute(_INSERT_REQUEST, row)
        # Too many to expand in this call: stored as sent, expanded by the workers.
        recipient_list.store(session, request=request, recipients=staged)
    else:
        if writes is not None and template is None:
            writes.add(_INSERT_REQUEST, row)  # with its ledger, at the group's end
        else:
            session.connection().execute(_INSERT_REQUEST, row)
        _expand_now(session, request, content, template, wallet_pass, existing, now)
    save_pass(session, wallet_pass)
    # Last write of the transaction: it locks the pass type's update counter until commit,
    # so other imports of the same pass type must not wait behind this request's fan-out.
    announce_update(session, wallet_pass=wallet_pass, version=version)
    codes = tuple(finding.error_code for finding in report.warnings)
    return ImportResult(
        request.id, wallet_pass.id, version.version, prepared.updatable, codes, staged is not None
    )


def _staged_list(
    session: Session, content: PassContent, wallet_pass: WalletPass
) -> recipient_list.RecipientList | None:
    """The list to store for the workers, or None to expand it in this call."""
    if content.staged_recipients is not None:
        return content.staged_recipients
    refs = content.recipients.recipient
    if len(refs) > recipient_list.INLINE_MAX or recipient_list.expanding(session, wallet_pass.id):
        return recipient_list.from_refs(refs)
    return None


def _expand_now(
    session: Session,
    request: DistributionRequest,
    content: PassContent,
    template: Template | None,
    wallet_pass: WalletPass,
    existing: WalletPass | None,
    now: datetime,
) -> None:
    """The request's holders and deliveries, in the import's own transaction."""
    previous_holders = holder_recipient_ids(session, wallet_pass) if existing else set()
    targets = _resolve_recipients(session, content.recipients.recipient, previous_holders)
    personalizer = Personalizer(session, template, custom_serials(targets)) if template else None
    create_ledger(
        session,
        request=request,
        integration=content.integration,
        targets=targets,
        now=now,
        personalizer=personalizer,
    )
    # Every earlier holder is among the targets: this is the pass's whole audience, which
    # bounds how many devices may register for it (passkit knows no ledger).
    wallet_pass.recipient_count = sum(1 for target in targets if target.contact is not None)


def _warnings_json(report: pkpass.Report) -> str | None:
    if not report.warnings:
        return None
    return json.dumps([finding.to_dict() for finding in report.warnings], ensure_ascii=False)


def _check_kind(
    wallet_pass: WalletPass, template: Template | None, existing: WalletPass | None
) -> None:
    """A serial stays a shared pass or a template: holders were promised one or the other."""
    if existing is None:
        return
    is_template = wallet_pass.kind == PassKind.TEMPLATE
    if wallet_pass.kind == PassKind.PERSONAL or is_template != (template is not None):
        kind = {PassKind.TEMPLATE: "a template", PassKind.PERSONAL: "a personal pass"}.get(
            wallet_pass.kind, "a shared pass"
        )
        raise BadRequest(
            f"{wallet_pass.pass_type_identifier}/{wallet_pass.serial_number} is already "
            f"{kind}; import this one under another serialNumber.",
            error_code="PASS_KIND_CONFLICT",
        )


def custom_serials(targets: Sequence[Target]) -> list[str]:
    return [
        str(t.fields["serialNumber"]).strip()
        for t in targets
        if t.fields and t.fields.get("serialNumber") is not None
    ]


def _previous_update_templates(session: Session, wallet_pass: WalletPass) -> list[Notification]:
    """The update templates of the pass's latest request that had any (holders need one)."""
    configs = session.scalars(
        select(DistributionRequest.integration_config)
        .where(DistributionRequest.pass_id == wallet_pass.id)
        .order_by(DistributionRequest.id.desc())
    )
    writes = deferred(session)
    group = writes.rows(_INSERT_REQUEST) if writes is not None else ()
    # Requests of earlier imports of the group (not written yet) are the newest.
    newest = [row["integration_config"] for row in group if row["pass_id"] == wallet_pass.id]
    for raw in itertools.chain(reversed(newest), configs):
        update_templates = IntegrationConfig.model_validate_json(raw).update
        if update_templates:
            return update_templates
    return []


_HOLDER_IDS = (
    select(PassHolder.recipient_id)
    .where(PassHolder.pass_id == bindparam("pass_id"), PassHolder.recipient_id.is_not(None))
    .distinct()
)


def holder_recipient_ids(session: Session, wallet_pass: WalletPass) -> set[int]:
    rows = session.connection().execute(_HOLDER_IDS, {"pass_id": wallet_pass.id}).scalars()
    found = {r for r in rows if r is not None}
    writes = deferred(session)
    for holder in writes.rows(_INSERT_HOLDER) if writes is not None else ():
        # Holders from earlier imports of the group, not written yet.
        if holder["pass_id"] == wallet_pass.id and holder["recipient_id"] is not None:
            found.add(holder["recipient_id"])
    return found


@dataclass(frozen=True)
class Contact:
    """What the ledger needs of a recipient (loaded as plain rows: requests can be huge)."""

    id: int
    email: str | None
    mobile_number: str | None
    email_subscription: bool
    sms_subscription: bool
    first_name: str | None = None
    last_name: str | None = None


CONTACT_COLUMNS = (
    Recipient.id,
    Recipient.email,
    Recipient.mobile_number,
    Recipient.email_subscription,
    Recipient.sms_subscription,
    Recipient.first_name,
    Recipient.last_name,
)


@dataclass(frozen=True)
class Target:
    audience_id: str
    contact: Contact | None
    notification: str  # "issue" | "update"
    reason: str = "unknown recipient"  # why there is no contact
    fields: dict[str, Any] | None = None  # the recipient entry's template values


def _resolve_recipients(
    session: Session, refs: Sequence[RecipientRef], previous_holders: set[int]
) -> list[Target]:
    """The request's recipients (deduplicated), then every earlier holder not among them."""
    seen: set[int] = set()
    targets = list_targets(session, refs, previous_holders, seen)
    return targets + earlier_holder_targets(session, previous_holders - seen)


def list_targets(
    session: Session, refs: Sequence[RecipientRef], previous_holders: set[int], seen: set[int]
) -> list[Target]:
    """The targets of recipient entries, leaving out recipients in ``seen`` (which gains
    the others): a recipient listed twice gets one pass."""
    by_id = contacts(session, {int(r.id) for r in refs if r.id and is_id(r.id)})
    known = recipients_for_emails(
        session,
        ((r.email, r.mobile_number, r.first_name, r.last_name) for r in refs if not r.id),
    )
    targets: list[Target] = []
    for ref in refs:
        target = _target_for(session, ref, by_id, known, previous_holders)
        if ref.fields:
            target = dataclasses.replace(target, fields=dict(ref.fields))
        if target.contact is not None:
            if target.contact.id in seen:
                continue
            seen.add(target.contact.id)
        targets.append(target)
    return targets


def earlier_holder_targets(session: Session, recipient_ids: set[int]) -> list[Target]:
    """Targets for holders of the pass's earlier requests: they get the update message."""
    return [Target(str(c.id), c, "update") for c in contacts(session, recipient_ids).values()]


def is_id(text: str) -> bool:
    """Whether a recipient entry's id can name a recipient (a 64-bit integer's digits)."""
    return text.isascii() and text.isdigit() and len(text) < 19


def contact_of(recipient: Recipient) -> Contact:
    """A recipient object as a plain row (``CONTACT_COLUMNS``)."""
    return Contact(*(getattr(recipient, column.key) for column in CONTACT_COLUMNS))


def contacts(session: Session, wanted: set[int]) -> dict[int, Contact]:
    """The recipients with these ids (those that exist), as plain rows."""
    found: dict[int, Contact] = {}
    for chunk in _chunks(sorted(wanted), _INSERT_CHUNK):
        rows = session.execute(select(*CONTACT_COLUMNS).where(Recipient.id.in_(chunk)))
        found.update((row.id, Contact(*row)) for row in rows)
    return found


def _target_for(
    session: Session,
    ref: RecipientRef,
    by_id: dict[int, Contact],
    known: dict[str, Recipient],
    previous_holders: set[int],
) -> Target:
    if ref.id:
        contact = by_id.get(int(ref.id)) if is_id(ref.id) else None
        if contact is None:
            return Target(ref.id, None, "issue")
    else:
        try:
            recipient = match_or_create_recipient(
                session,
                email=ref.email,
                mobile_number=ref.mobile_number,
                first_name=ref.first_name,
                last_name=ref.last_name,
                known=known,
            )
        except BadRequest as exc:
            return Target(ref.email or ref.mobile_number or "", None, "issue", exc.message)
        contact = contact_of(recipient)
    kind = "update" if contact.id in previous_holders else "issue"
    return Target(str(contact.id), contact, kind)


Link = tuple[int, str, str]  # a holder's id, its link token's hash and the sealed token


def new_links(count: int) -> Iterator[Link]:
    """Ids and download-link tokens for ``count`` holders (made before a transaction)."""
    tokens = secrets.new_tokens(count)
    sealed = secrets.seal_link_tokens(tokens)
    for token, seal in zip(tokens, sealed, strict=True):
        yield ids.new_id(), secrets.token_hash(token), seal


def create_ledger(
    session: Session,
    *,
    request: DistributionRequest,
    integration: IntegrationConfig,
    targets: Sequence[Target],
    now: datetime,
    personalizer: Personalizer | None = None,
    links: Iterator[Link] | None = None,
) -> None:
    """Insert holders and deliveries in chunks, through Core (large requests stay fast).

    ``links`` (one per target, from ``new_links``) when they were made beforehand.
    """
    links = new_links(len(targets)) if links is None else links
    channels = {
        "issue": integration.enabled("issue"),
        "update": integration.enabled("update"),
    }
    connection = session.connection()
    # A shared pass's ledger in a group commit is written at the group's end (all of its
    # imports' rows in one executemany); a template's holders are read back at once.
    writes = deferred(session) if personalizer is None else None
    dialect = connection.dialect
    # Written at once: SQL built once per dialect on the driver's cursor, the values all
    # rows share converted once (SQLAlchemy's per-row parameter processing was ~1/4 of a
    # large list's expansion); deferred: as dicts for the group's executemany.
    bind = _bind_processors(dialect) if writes is None else {}

    def value(column: str, raw: object) -> object:
        process = bind.get(column)
        return raw if process is None or raw is None else process(raw)

    created = value("created_at", now)
    queued = DeliveryState.QUEUED
    start_at = value("next_attempt_at", request.start_at)
    priority = value("priority", request.priority)
    for chunk in _chunks(list(targets), _INSERT_CHUNK):
        holders: list[tuple[Any, ...]] = []
        deliveries: list[tuple[Any, ...]] = []
        for target in chunk:
            holder_id, link_hash, sealed = next(links)
            personal = _personal(personalizer, holder_id, target)
            contact = target.contact
            holders.append(
                (
                    holder_id,
                    request.id,
                    request.pass_id,
                    contact.id if contact else None,
                    target.audience_id[:64],
                    target.notification,
                    link_hash,
                    sealed,
                    0,
                    created,
                    personal.serial_number,
                    personal.personal_values,
                    None,
                )
            )
            for channel in channels[target.notification]:
                state, reason = initial_state(contact, channel)
                if contact is None:
                    reason = target.reason
                elif personal.rejected is not None:
                    state, reason = DeliveryState.REJECTED, personal.rejected
                deliveries.append(
                    (
                        ids.new_id(),
                        request.id,
                        holder_id,
                        channel,
                        state,
                        priority,
                        0,
                        start_at,
                        None,
                        None,
                        None,
                        None,
                        reason,
                        None if state == queued else created,
                        created,
                        created,
                    )
                )
        if writes is not None:
            for holder in holders:
                writes.add(_INSERT_HOLDER, dict(zip(_HOLDER_COLUMNS, holder, strict=True)))
            for delivery in deliveries:
                writes.add(_INSERT_DELIVERY, dict(zip(_DELIVERY_COLUMNS, delivery, strict=True)))
            continue
        connection.exec_driver_sql(_insert_sql(dialect.paramstyle, "pass_holder"), holders)
        if deliveries:
            connection.exec_driver_sql(_insert_sql(dialect.paramstyle, "delivery"), deliveries)


# The ledger's columns in the order ``create_ledger`` builds its rows.
_HOLDER_COLUMNS = (
    "id",
    "request_id",
    "pass_id",
    "recipient_id",
    "audience_id",
    "notification",
    "link_hash",
    "link_token_enc",
    "opened_count",
    "created_at",
    "serial_number",
    "personal_values",
    "personal_pass_id",
)
_DELIVERY_COLUMNS = (
    "id",
    "request_id",
    "holder_id",
    "channel",
    "state",
    "priority",
    "attempts",
    "next_attempt_at",
    "lease_until",
    "batch_id",
    "provider_message_id",
    "submitted_at",
    "last_error",
    "finished_at",
    "created_at",
    "updated_at",
)
# Values ``create_ledger`` converts once per call (the same in every row); every other
# column must take its Python value as the driver does (checked in ``_bind_processors``).
_SHARED_COLUMNS = frozenset({"created_at", "next_attempt_at", "priority"})
_SAME_TYPE = {"finished_at": "created_at", "updated_at": "created_at"}
_ALWAYS_NULL = frozenset({"lease_until", "submitted_at"})


@lru_cache(maxsize=8)
def _bind_processors(dialect: Dialect) -> dict[str, Callable[[Any], Any]]:
    """The bind processors of the shared columns, which stand for their kin (a delivery's
    ``finished_at``/``updated_at`` are written with its holder's ``created_at``)."""
    found: dict[str, Callable[[Any], Any]] = {}
    for table, columns in (("pass_holder", _HOLDER_COLUMNS), ("delivery", _DELIVERY_COLUMNS)):
        for name in columns:
            process = bind_processor(Base.metadata.tables[table].c[name].type, dialect)
            kin = _SAME_TYPE.get(name, name)
            if kin not in _SHARED_COLUMNS:
                if process is not None and name not in _ALWAYS_NULL:
                    raise TypeError(f"{table}.{name} needs its values converted per row")
            elif process is not None:
                found[kin] = process
    return found


@lru_cache(maxsize=8)
def _insert_sql(paramstyle: str, table: str) -> str:
    columns = _HOLDER_COLUMNS if table == "pass_holder" else _DELIVERY_COLUMNS
    mark = placeholder(paramstyle)
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join([mark] * len(columns))})"


_SHARED = HolderPass(None, None)


def _personal(personalizer: Personalizer | None, holder_id: int, target: Target) -> HolderPass:
    """The holder's serial and values for a template; nothing for a shared pass."""
    if personalizer is None or target.contact is None:
        return _SHARED
    contact = target.contact
    holder = Holder(
        audience_id=str(contact.id),
        first_name=contact.first_name,
        last_name=contact.last_name,
        email=contact.email,
        mobile_number=contact.mobile_number,
        fields=target.fields,
    )
    return personalizer.assign(holder_id, holder)


def initial_state(contact: Contact | None, channel: str) -> tuple[str, str | None]:
    """The state a delivery starts in, with the reason when it will not be sent."""
    if contact is None:
        return DeliveryState.REJECTED, "unknown recipient"
    if channel == Channel.EMAIL:
        if not contact.email_subscription:
            return DeliveryState.NOT_ATTEMPTED, "recipient has not opted in to e-mail"
        if not contact.email:
            return DeliveryState.NOT_ATTEMPTED, "recipient has no e-mail address"
    else:
        if not contact.sms_subscription:
            return DeliveryState.NOT_ATTEMPTED, "recipient has not opted in to SMS"
        if not contact.mobile_number:
            return DeliveryState.NOT_ATTEMPTED, "recipient has no mobile number"
    return DeliveryState.QUEUED, None


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def cancel_request(session: Session, request_id: int) -> None:
    """Cancel a request: everything not yet submitted becomes ``cancelled``."""
    request = session.get(DistributionRequest, request_id, with_for_update=True)
    if request is None:
        raise NotFound(f"No request {request_id}.", error_code="REQUEST_NOT_FOUND")
    now = utcnow()
    if request.cancelled_at is None:
        request.cancelled_at = now
    cancel_pending(session, request_id, now)


def cancel_pending(session: Session, request_id: int, now: datetime) -> None:
    """Everything of a request not yet submitted becomes ``cancelled``."""
    session.execute(
        update(Delivery)
        .where(Delivery.request_id == request_id, Delivery.state.in_(DeliveryState.PENDING))
        .values(state=DeliveryState.CANCELLED, finished_at=now, batch_id=None, updated_at=now)
    )


def apply_receipt(session: Session, receipt: Receipt) -> bool:
    """Record a provider's delivery receipt on the delivery it names.

    A receipt for a message id not recorded yet is kept and applied when the send's outcome
    is; returns False in that case.
    """
    delivery = session.scalars(
        select(Delivery).where(Delivery.provider_message_id == receipt.provider_message_id)
    ).first()
    if delivery is None:
        if session.get(EarlyReceipt, receipt.provider_message_id) is None:
            session.add(
                EarlyReceipt(
                    provider_message_id=receipt.provider_message_id,
                    delivered=receipt.delivered,
                    detail=receipt.detail or None,
                )
            )
        return False
    _settle_receipt(delivery, receipt.delivered, receipt.detail)
    return True


def _settle_receipt(delivery: Delivery, delivered: bool, detail: str | None) -> None:
    if delivery.state in (DeliveryState.SUBMITTED, DeliveryState.QUEUED):
        delivery.state = DeliveryState.DELIVERED if delivered else DeliveryState.UNDELIVERED
        delivery.finished_at = utcnow()
        if not delivered:
            delivery.last_error = detail or ledger.UNDELIVERED_WITHOUT_DETAIL


def apply_early_receipts(session: Session, provider_message_ids: Sequence[str] | None) -> int:
    """Apply receipts that arrived before their messages' outcomes were recorded.

    With ids: those messages (right after their outcomes are written). With None: every
    parked receipt whose message is now known (the sweeper, for a receipt that raced the
    outcome's commit); receipts for ids never seen are dropped after a week.
    """
    query = select(EarlyReceipt)
    if provider_message_ids is not None:
        if not provider_message_ids:
            return 0
        query = query.where(EarlyReceipt.provider_message_id.in_(provider_message_ids))
    else:
        known = select(Delivery.provider_message_id).where(
            Delivery.provider_message_id == EarlyReceipt.provider_message_id
        )
        query = query.where(known.exists())
        session.execute(
            delete(EarlyReceipt).where(EarlyReceipt.received_at < utcnow() - timedelta(days=7))
        )
    early = session.scalars(query.limit(10_000)).all()
    for receipt in early:
        delivery = session.scalars(
            select(Delivery).where(Delivery.provider_message_id == receipt.provider_message_id)
        ).first()
        if delivery is not None:
            _settle_receipt(delivery, receipt.delivered, receipt.detail)
            session.delete(receipt)
    return len(early)
