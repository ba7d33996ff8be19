"""Expand a stored recipient list into holders and deliveries, one chunk per transaction.

The import call stores a large list as sent (``recipient_list``) and answers. A worker
task then takes the list's lease and expands it: each chunk's holders and deliveries, the
chunk's deletion and the progress counters commit together in one short transaction (so
other writers wait for one chunk, never for the list), and sending starts after the
first. A killed worker leaves its lease to run out; the sweeper queues the list again and
the next task continues with the chunks still stored: nothing is expanded twice. A task
whose lease was taken over stops at its next chunk (``LostLease``).

Once the last chunk is in, the pass's earlier holders not in the list are added (they get
the update message), exactly as an import expanded in its own call does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from passpost import ids
from passpost.config import Settings
from passpost.db import utcnow
from passpost.distribution.models import (
    Delivery,
    DistributionRequest,
    PassHolder,
    RecipientChunk,
    RequestExpansion,
)
from passpost.distribution.personal import Personalizer, Template, inspect_template
from passpost.distribution.recipient_list import CHUNK, load_chunk
from passpost.distribution.schemas import IntegrationConfig
from passpost.distribution.service import (
    Target,
    cancel_pending,
    create_ledger,
    custom_serials,
    earlier_holder_targets,
    list_targets,
)
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


def expand_next(session: Session, *, run: Run, settings: Settings) -> Step:
    """Expand the next chunk (or, after the last, the earlier holders) in the caller's
    write transaction; ``finished`` once the whole list is in the ledger."""
    now = utcnow()
    expansion = _owned(session, run)
    request = session.get(DistributionRequest, run.request_id)
    assert request is not None
    chunk = session.scalars(
        select(RecipientChunk)
        .where(RecipientChunk.request_id == run.request_id)
        .order_by(RecipientChunk.seq)
        .limit(1)
    ).first()
    if chunk is not None:
        refs = load_chunk(chunk.entries)
        targets = list_targets(session, refs, run.earlier, run.seen)
        session.delete(chunk)
        entries = chunk.size
    else:
        missing = sorted(run.earlier - run.seen)[:CHUNK]
        targets = earlier_holder_targets(session, set(missing))
        run.seen.update(missing)
        entries = 0
    _ledger(session, run, request, targets, now)
    contacts = sum(1 for target in targets if target.contact is not None)
    expansion.expanded += entries
    expansion.contacts += contacts
    expansion.lease_until = _lease(now, settings)
    expansion.updated_at = now
    finished = chunk is None and not (run.earlier - run.seen)
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
    return Step(entries, len(targets), finished)


def feed_stopped(session: Session, *, request_id: int) -> bool:
    """Whether none of the request's deliveries is leased to a batch now.

    Each finished batch queues the request's next one; that chain stops when it finds no
    due rows (the sends overtook the expansion) and must then be started again. Feeding
    it more often would lease rows faster than they are sent.
    """
    leased = select(Delivery.id).where(
        Delivery.request_id == request_id, Delivery.lease_until > utcnow()
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
