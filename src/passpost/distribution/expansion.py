"""Expand a stored recipient list into holders and deliveries, one chunk per transaction.

The import call stores a large list as sent (``recipient_list``) and answers. A worker
task then takes the list's lease and expands it: each chunk is read, its addresses checked
and its holders' links made in a read transaction (``prepare``); then its new recipients,
holders and deliveries, the chunk's deletion and the progress counters commit together in
one short write transaction (``expand_next``: other writers wait for one chunk's inserts,
never for the list), and sending starts after the first. A killed worker leaves its
lease to run out; the sweeper queues the list again and the next task continues with the
chunks still stored: nothing is expanded twice. A task whose lease was taken over, or
whose chunk was expanded meanwhile, stops at its next chunk (``LostLease``).

Once the last chunk is in, the pass's earlier holders not in the list are added (they get
the update message), exactly as an import expanded in its own call does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import Dialect, delete, select, update
from sqlalchemy.orm import Session

from passpost import ids
from passpost.audience.models import Recipient
from passpost.audience.service import match_or_create_recipient
from passpost.audience.validation import clean_fields, normalize_email
from passpost.config import Settings, get_settings
from passpost.db import bind_processor, placeholder, utcnow
from passpost.distribution.models import (
    Delivery,
    DistributionRequest,
    PassHolder,
    RecipientChunk,
    RequestExpansion,
)
from passpost.distribution.personal import Personalizer, Template, inspect_template
from passpost.distribution.recipient_list import CHUNK, load_chunk
from passpost.distribution.schemas import IntegrationConfig, RecipientRef
from passpost.distribution.service import (
    CONTACT_COLUMNS,
    Contact,
    Link,
    Target,
    cancel_pending,
    contact_of,
    contacts,
    create_ledger,
    custom_serials,
    earlier_holder_targets,
    is_id,
    new_links,
)
from passpost.errors import BadRequest
from passpost.passes.models import PassKind, PassVersion, WalletPass


class LostLease(Exception):
    """Another task expands this list now (this one was taken for dead)."""


@dataclass
class Run:
    """One task's pass over a list: what it knows between its chunk transactions."""

    request_id: int
    owner: int
    integration: IntegrationConfig
    template: Template | None
    seen: set[int] = field(default_factory=set)  # recipients holding in this request
    earlier: set[int] = field(default_factory=set)  # holders of the pass's earlier requests


def claim(session: Session, *, request_id: int, settings: Settings) -> int | None:
    """Take the list's lease if nobody holds it (a new owner id), else None."""
    now = utcnow()
    owner = ids.new_id()
    result = session.execute(
        update(RequestExpansion)
        .where(
            RequestExpansion.request_id == request_id,
            RequestExpansion.finished_at.is_(None),
            (RequestExpansion.lease_until.is_(None)) | (RequestExpansion.lease_until < now),
        )
        .values(owner=owner, lease_until=_lease(now, settings), updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return owner if result.rowcount else None  # type: ignore[attr-defined]


def waits_for_earlier(session: Session, *, request_id: int) -> bool:
    """Whether an earlier request of the same pass is still being expanded.

    Its holders decide who gets an update rather than an issue message here.
    """
    this = select(RequestExpansion.pass_id).where(RequestExpansion.request_id == request_id)
    earlier = select(RequestExpansion.request_id).where(
        RequestExpansion.pass_id == this.scalar_subquery(),
        RequestExpansion.request_id < request_id,
        RequestExpansion.finished_at.is_(None),
    )
    return session.scalar(earlier.limit(1)) is not None


def start(session: Session, *, request_id: int, owner: int, settings: Settings) -> Run:
    """What the run needs to know: the request's templates, who holds its pass already."""
    request = session.get(DistributionRequest, request_id)
    assert request is not None
    wallet_pass = session.get(WalletPass, request.pass_id)
    assert wallet_pass is not None
    template = None
    if wallet_pass.kind == PassKind.TEMPLATE:
        version = session.get(PassVersion, request.pass_version_id)
        assert version is not None
        template = inspect_template(version.content, personalize_all=True, settings=settings)
    run = Run(
        request_id,
        owner,
        IntegrationConfig.model_validate_json(request.integration_config),
        template,
    )
    run.seen = _holders(session, PassHolder.request_id == request_id)
    if request.kind == "update":
        run.earlier = _holders(
            session, PassHolder.pass_id == request.pass_id, PassHolder.request_id < request_id
        )
    return run


def _holders(session: Session, *conditions: object) -> set[int]:
    rows = session.scalars(
        select(PassHolder.recipient_id).where(*conditions, PassHolder.recipient_id.is_not(None))  # type: ignore[arg-type]
    )
    return {r for r in rows if r is not None}


@dataclass(frozen=True)
class Step:
    entries: int  # list entries expanded by this step (0 for the earlier holders)
    holders: int
    finished: bool


@dataclass(frozen=True)
class Batch:
    """The next chunk read, its addresses checked and its holders' links made: what can be
    done before its write transaction (which other writers then wait for less)."""

    seq: int | None  # the chunk's; None: the earlier holders' step
    entries: int
    refs: list[RecipientRef]
    plans: list[_Plan]
    by_id: dict[int, Contact]  # the recipients named by id that exist
    known: set[str]  # the e-mail addresses that have a recipient already
    earlier: list[Target]  # the earlier holders' step: its targets
    settled: set[int]  # the earlier holders' step: the holders it is for
    links: list[Link]


@dataclass(frozen=True)
class _Plan:
    """How an entry finds its recipient: by id, by a plain e-mail address (created in
    bulk if new), or through ``match_or_create_recipient`` (with a mobile number, or a
    bad address), as ``service.list_targets`` does."""

    email: str | None = None  # normalised, when valid
    names: dict[str, Any] = field(default_factory=dict)
    plain: bool = False  # an e-mail address without a mobile number


def prepare(session: Session, *, run: Run) -> Batch:
    """Read the next chunk (or the earlier holders to add) in a read transaction."""
    chunk = session.execute(
        select(RecipientChunk.seq, RecipientChunk.size, RecipientChunk.entries)
        .where(RecipientChunk.request_id == run.request_id)
        .order_by(RecipientChunk.seq)
        .limit(1)
    ).first()
    if chunk is None:
        missing = set(sorted(run.earlier - run.seen)[:CHUNK])
        targets = earlier_holder_targets(session, missing)
        links = list(new_links(len(targets)))
        return Batch(None, 0, [], [], {}, set(), targets, missing, links)
    refs = load_chunk(chunk.entries)
    plans = [_plan(ref) for ref in refs]
    emails = {plan.email for plan in plans if plan.email}
    known: set[str] = set()
    if emails:
        found = session.scalars(select(Recipient.email).where(Recipient.email.in_(emails)))
        known = {email for email in found if email}
    by_id = contacts(session, {int(r.id) for r in refs if r.id and is_id(r.id)})
    links = list(new_links(len(refs)))
    return Batch(chunk.seq, chunk.size, refs, plans, by_id, known, [], set(), links)


def _plan(ref: RecipientRef) -> _Plan:
    if ref.id or not ref.email or not ref.email.strip():
        return _Plan()
    try:
        email = normalize_email(ref.email)
        names = clean_fields(
            {"first_name": ref.first_name, "last_name": ref.last_name},
            region=get_settings().sms_default_region,
        )
    except BadRequest:
        return _Plan()  # the same error, from match_or_create_recipient
    return _Plan(email, names, not (ref.mobile_number and str(ref.mobile_number).strip()))


def expand_next(session: Session, *, run: Run, batch: Batch, settings: Settings) -> Step:
    """Write a prepared batch in the caller's write transaction; ``finished`` once the
    whole list is in the ledger."""
    now = utcnow()
    expansion = _owned(session, run)
    request = session.get(DistributionRequest, run.request_id)
    assert request is not None
    if batch.seq is not None:
        gone = delete(RecipientChunk).where(
            RecipientChunk.request_id == run.request_id, RecipientChunk.seq == batch.seq
        )
        if not session.execute(gone).rowcount:  # type: ignore[attr-defined]
            raise LostLease(f"request {run.request_id}: its chunk {batch.seq} was expanded")
        targets = _targets(session, run, batch)
    else:
        targets = batch.earlier
        run.seen.update(batch.settled)
    _ledger(session, run, request, targets, now, iter(batch.links))
    contacts = sum(1 for target in targets if target.contact is not None)
    expansion.expanded += batch.entries
    expansion.contacts += contacts
    expansion.lease_until = _lease(now, settings)
    expansion.updated_at = now
    finished = batch.seq is None and not (run.earlier - run.seen)
    wallet_pass = session.get(WalletPass, request.pass_id)
    assert wallet_pass is not None
    if finished:
        expansion.finished_at = now
        expansion.owner = None
        expansion.lease_until = None
        # The pass's whole audience, as an import expanded in its call sets it.
        wallet_pass.recipient_count = expansion.contacts
    else:
        # Meanwhile never below the holders with links already (device registrations).
        wallet_pass.recipient_count = max(wallet_pass.recipient_count, expansion.contacts)
    return Step(batch.entries, len(targets), finished)


def _targets(session: Session, run: Run, batch: Batch) -> list[Target]:
    """The chunk's targets, as ``service.list_targets`` makes them: a recipient listed
    twice (or in an earlier chunk) gets one pass."""
    plain = _plain_recipients(session, batch)
    targets: list[Target] = []
    for ref, plan in zip(batch.refs, batch.plans, strict=True):
        target = _target(session, run, batch, plain, ref, plan)
        if ref.fields:
            target = dataclasses.replace(target, fields=dict(ref.fields))
        if target.contact is not None:
            if target.contact.id in run.seen:
                continue
            run.seen.add(target.contact.id)
        targets.append(target)
    return targets


def _plain_recipients(session: Session, batch: Batch) -> dict[str, Contact]:
    """The recipients of the chunk's plain addresses, the new ones created in bulk."""
    # An address listed first with a mobile number is created with it, by the general path.
    new: dict[str, dict[str, Any] | None] = {}
    for plan in batch.plans:
        if plan.email and plan.email not in batch.known:
            new.setdefault(plan.email, {"email": plan.email, **plan.names} if plan.plain else None)
    connection = session.connection()
    opted_in, now = _recipient_defaults(connection.dialect)
    rows = [
        (row["email"], row["first_name"], row["last_name"], *opted_in, now, now)
        for row in new.values()
        if row is not None
    ]
    if rows:
        # On the driver's cursor: SQLAlchemy's ORM bulk insert cost ~20 µs per address.
        connection.exec_driver_sql(_insert_recipients_sql(connection.dialect.paramstyle), rows)
    emails = {plan.email for plan in batch.plans if plan.plain}
    if not emails:
        return {}
    found = session.execute(select(*CONTACT_COLUMNS).where(Recipient.email.in_(emails)))
    return {row.email: Contact(*row) for row in found}


# A new recipient of a plain address: what ``Recipient``'s defaults give the others.
_NEW_RECIPIENT = (
    "email",
    "first_name",
    "last_name",
    "sms_subscription",
    "email_subscription",
    "push_subscription",
    "voice_subscription",
    "created_at",
    "updated_at",
)
_OPTED_IN = ("sms_subscription", "email_subscription", "push_subscription", "voice_subscription")


def _recipient_defaults(dialect: Dialect) -> tuple[tuple[object, ...], object]:
    """The subscriptions' defaults and now, as the driver takes them for ``Recipient``."""
    columns = Recipient.__table__.c
    flags = []
    for name in _OPTED_IN:
        column = columns[name]
        assert column.default is not None and column.default.arg is True
        flags.append(_bound(dialect, column, True))
    return tuple(flags), _bound(dialect, columns.created_at, utcnow())


def _bound(dialect: Dialect, column: Any, value: object) -> object:
    process = bind_processor(column.type, dialect)
    return value if process is None else process(value)


@lru_cache(maxsize=4)
def _insert_recipients_sql(paramstyle: str) -> str:
    mark = placeholder(paramstyle)
    return (
        f"INSERT INTO recipient ({', '.join(_NEW_RECIPIENT)}) "
        f"VALUES ({', '.join([mark] * len(_NEW_RECIPIENT))}) ON CONFLICT DO NOTHING"
    )


def _target(
    session: Session,
    run: Run,
    batch: Batch,
    plain: dict[str, Contact],
    ref: RecipientRef,
    plan: _Plan,
) -> Target:
    if ref.id:
        contact = batch.by_id.get(int(ref.id)) if is_id(ref.id) else None
        if contact is None:
            return Target(ref.id, None, "issue")
    else:
        found = plain.get(plan.email) if plan.plain and plan.email else None
        # A recipient found without a name given now is completed by the general path.
        if found is None or any(v and getattr(found, k) is None for k, v in plan.names.items()):
            try:
                found = _matched(session, ref)
            except BadRequest as exc:
                return Target(ref.email or ref.mobile_number or "", None, "issue", exc.message)
        contact = found
    kind = "update" if contact.id in run.earlier else "issue"
    return Target(str(contact.id), contact, kind)


def _matched(session: Session, ref: RecipientRef) -> Contact:
    recipient = match_or_create_recipient(
        session,
        email=ref.email,
        mobile_number=ref.mobile_number,
        first_name=ref.first_name,
        last_name=ref.last_name,
    )
    return contact_of(recipient)


def feed_stopped(session: Session, *, request_id: int) -> bool:
    """Whether the request's sends have begun and none of its deliveries is leased to a
    batch now.

    Each finished batch queues the request's next one; that chain stops when it finds no
    due rows (the sends overtook the expansion) and must then be started again. Feeding
    it more often would lease rows faster than they are sent; feeding a request whose
    ``startTimeStamp`` is still ahead looks for due rows among all it has (a write
    transaction per chunk, 100–350 ms under load) to find none: the sweeper starts it.
    """
    now = utcnow()
    start_at = session.scalar(
        select(DistributionRequest.start_at).where(DistributionRequest.id == request_id)
    )
    if start_at is not None and start_at > now:
        return False
    leased = select(Delivery.id).where(
        Delivery.request_id == request_id, Delivery.lease_until > now
    )
    return session.scalar(leased.limit(1)) is None


def _owned(session: Session, run: Run) -> RequestExpansion:
    expansion = session.get(RequestExpansion, run.request_id, with_for_update=True)
    if expansion is None or expansion.owner != run.owner or expansion.finished_at is not None:
        raise LostLease(f"request {run.request_id}: another task expands its list now")
    return expansion


def _ledger(
    session: Session,
    run: Run,
    request: DistributionRequest,
    targets: list[Target],
    now: datetime,
    links: Iterator[Link],
) -> None:
    personalizer = (
        Personalizer(session, run.template, custom_serials(targets)) if run.template else None
    )
    create_ledger(
        session,
        request=request,
        integration=run.integration,
        targets=targets,
        now=now,
        personalizer=personalizer,
        links=links,
    )
    if request.cancelled_at is not None:
        # Cancelled while expanding: its remaining recipients get cancelled rows, as a
        # request expanded in its import call would have them after the cancel.
        cancel_pending(session, request.id, now)


def _lease(now: datetime, settings: Settings) -> datetime:
    return now + timedelta(seconds=settings.lease_seconds)


def release(session: Session, *, run: Run, error: str | None) -> None:
    """Give the lease up (the task stops before the end): the sweeper queues it again."""
    session.execute(
        update(RequestExpansion)
        .where(RequestExpansion.request_id == run.request_id, RequestExpansion.owner == run.owner)
        .values(owner=None, lease_until=None, last_error=error)
        .execution_options(synchronize_session=False)
    )


def stalled(session: Session) -> list[int]:
    """Lists not finished whose lease ran out (or that no task has taken yet)."""
    now = utcnow()
    return list(
        session.scalars(
            select(RequestExpansion.request_id).where(
                RequestExpansion.finished_at.is_(None),
                (RequestExpansion.lease_until.is_(None)) | (RequestExpansion.lease_until < now),
            )
        )
    )


def progress(session: Session, request_ids: list[int]) -> dict[int, dict[str, object]]:
    """``{"total", "expanded", "done"}`` of each request expanded by workers."""
    if not request_ids:
        return {}
    rows = session.execute(
        select(
            RequestExpansion.request_id,
            RequestExpansion.total,
            RequestExpansion.expanded,
            RequestExpansion.finished_at,
        ).where(RequestExpansion.request_id.in_(request_ids))
    )
    return {
        row.request_id: {
            "total": row.total,
            "expanded": row.expanded,
            "done": row.finished_at is not None,
        }
        for row in rows
    }
