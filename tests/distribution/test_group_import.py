"""Imports committed together (one group commit) write exactly the rows they write one by
one, and one that fails in a group fails alone."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from passpost.audience.models import Recipient
from passpost.config import Settings
from passpost.db import get_engine, session_scope
from passpost.distribution.models import Delivery, DistributionRequest, PassHolder
from passpost.distribution.schemas import parse_pass_content
from passpost.distribution.service import ImportResult, check_upload, import_pass
from passpost.errors import NotFound
from passpost.group_commit import GroupCommitter
from passpost.passes.models import PassUpdate, PassVersion, WalletPass
from passpost.passkit.models import PassPush, Registration
from tests.support.passes import TestPki, signed_pass
from tests.support.service import email_content

Job = Callable[[Session], ImportResult]


def _job(
    settings: Settings,
    upload: bytes,
    recipients: list[dict[str, Any]],
    *,
    must_exist: bool = False,
    update_templates: bool = True,
) -> Job:
    """An import as ``submit.commit_import`` hands it to the committer: checked beforehand.

    Without ``update_templates`` the import takes those of the pass's previous request.
    """
    body = email_content(recipients)
    if not update_templates:
        del body["passIntegrationConfig"]["passUpdateNotificationDetails"]
    content = parse_pass_content(json.dumps(body))
    template, report = check_upload(upload, content=content, settings=settings)

    def job(session: Session) -> ImportResult:
        return import_pass(
            session,
            settings=settings,
            upload=upload,
            content=content,
            created_by="ops",
            must_exist=must_exist,
            report=report,
            template=template,
        )

    return job


def _jobs(settings: Settings, pki: TestPki, side: str) -> list[Job]:
    """Three versions of one pass, another pass, an update of a pass that does not exist
    (fails) and a fourth version; recipients new, earlier holders, repeated and unknown."""
    one = f"{side}-ONE"

    def upload(serial: str, version: int) -> bytes:
        return signed_pass(pki, serial=serial, description=f"version {version}")

    def who(*names: str) -> list[dict[str, Any]]:
        return [{"email": f"{name}.{side}@example.com"} for name in names]

    return [
        _job(settings, upload(one, 1), who("ada", "bob")),
        _job(settings, upload(one, 2), who("cy")),
        _job(settings, upload(f"{side}-TWO", 1), who("ada", "ada")),
        _job(settings, upload(f"{side}-NONE", 1), who("ada"), must_exist=True),
        _job(settings, upload(one, 3), [*who("dee"), {"id": "999999999"}]),
        _job(settings, upload(one, 4), who("bob"), update_templates=False),
    ]


def _rows(settings: Settings, side: str) -> dict[str, Any]:
    """Everything the imports of one side wrote, without ids, times and tokens."""
    found: dict[str, Any] = {}
    with session_scope(settings.resolved_database_url) as session:
        for wallet_pass in session.scalars(
            select(WalletPass).where(WalletPass.serial_number.like(f"{side}-%"))
        ):
            serial = wallet_pass.serial_number.removeprefix(f"{side}-")
            versions = {
                v.id: v.version
                for v in session.scalars(
                    select(PassVersion).where(PassVersion.pass_id == wallet_pass.id)
                )
            }
            updates = session.scalars(
                select(PassUpdate)
                .where(PassUpdate.pass_id == wallet_pass.id)
                .order_by(PassUpdate.seq)
            ).all()
            moments = [u.last_modified for u in updates]
            assert moments == sorted(set(moments))  # each version strictly later
            found[serial] = {
                "pass": (
                    wallet_pass.kind,
                    wallet_pass.updatable,
                    wallet_pass.voided,
                    wallet_pass.recipient_count,
                    versions[wallet_pass.latest_version_id or 0],
                    wallet_pass.authentication_token is None,
                ),
                "updates": [versions[u.version_id] for u in updates],
                "requests": sorted(
                    _request_rows(session, request, versions, side)
                    for request in session.scalars(
                        select(DistributionRequest).where(
                            DistributionRequest.pass_id == wallet_pass.id
                        )
                    )
                ),
            }
    return found


def _request_rows(
    session: Session, request: DistributionRequest, versions: dict[int, int], side: str
) -> tuple[Any, ...]:
    holders = []
    for holder, email in session.execute(
        select(PassHolder, Recipient.email)
        .outerjoin(Recipient, Recipient.id == PassHolder.recipient_id)
        .where(PassHolder.request_id == request.id)
    ):
        sends = session.execute(
            select(Delivery.channel, Delivery.state, Delivery.last_error, Delivery.priority)
            .where(Delivery.holder_id == holder.id)
            .order_by(Delivery.channel)
        ).all()
        who = email.replace(f".{side.lower()}@", "@") if email else holder.audience_id
        holders.append((who, holder.notification, holder.link_hash is not None, tuple(sends)))
    return (
        versions[request.pass_version_id],
        request.kind,
        request.priority,
        request.integration_config,
        sorted(holders),
    )


def _one_group(engine: Any, jobs: list[Job]) -> list[Future[ImportResult]]:
    """Run ``jobs`` through a group committer so that all of them share one commit."""
    committer = GroupCommitter(engine)
    release = threading.Event()
    started = threading.Event()

    def hold(session: Session) -> None:
        started.set()
        release.wait(30)

    held = committer.submit(hold)
    assert started.wait(30)
    # Queued in this order, as commit_import hands them over: the group runs them in it.
    futures = [committer.submit(job, defers=True) for job in jobs]
    release.set()
    held.result(30)
    for future in futures:
        future.exception(30)
    return futures


def test_a_group_of_imports_writes_the_rows_of_the_same_imports_one_by_one(
    settings: Settings, pki: TestPki
) -> None:
    url = settings.resolved_database_url
    for job in _jobs(settings, pki, "A"):
        with session_scope(url, write=True) as session:
            try:
                job(session)
            except NotFound:
                session.rollback()
    futures = _one_group(get_engine(url), _jobs(settings, pki, "B"))
    with pytest.raises(NotFound, match="to update"):
        futures[3].result()
    assert [f.result().version for i, f in enumerate(futures) if i != 3] == [1, 2, 1, 3, 4]
    one_by_one, grouped = _rows(settings, "A"), _rows(settings, "B")
    assert set(grouped) == {"ONE", "TWO"}
    assert grouped == one_by_one
    # What the scenario is about: earlier holders get the update, a repeat gets one pass.
    last = grouped["ONE"]["requests"][-1][-1]
    assert [(who, kind) for who, kind, *_ in last] == [
        ("ada@example.com", "update"),
        ("bob@example.com", "update"),
        ("cy@example.com", "update"),
        ("dee@example.com", "update"),
    ]
    assert len(grouped["TWO"]["requests"][0][-1]) == 1
    assert "Pass Update" in last_config(grouped)  # version 4 took version 3's update templates


def last_config(rows: dict[str, Any]) -> str:
    return str(rows["ONE"]["requests"][-1][3])


def _pushes(settings: Settings, serial: str) -> list[tuple[Any, ...]]:
    with session_scope(settings.resolved_database_url) as session:
        rows = session.execute(
            select(PassVersion.version, PassPush.device_library_identifier, PassPush.state)
            .join(PassUpdate, PassUpdate.id == PassPush.update_id)
            .join(PassVersion, PassVersion.id == PassUpdate.version_id)
            .join(WalletPass, WalletPass.id == PassPush.pass_id)
            .where(WalletPass.serial_number == serial)
        )
        return sorted(tuple(row) for row in rows)


def test_the_pushes_of_a_group_are_those_of_the_same_imports_one_by_one(
    settings: Settings, pki: TestPki
) -> None:
    """A registered pass's new versions each queue a push per registration (deferred to the
    group's end in a group: no registration can appear meanwhile)."""
    url = settings.resolved_database_url
    who = [{"email": "ada@example.com"}]
    sides = {}
    for side in ("P-ONE", "P-GROUP"):
        with session_scope(url, write=True) as session:
            _job(settings, signed_pass(pki, serial=side), who)(session)
        with session_scope(url, write=True) as session:
            pass_id = session.scalar(select(WalletPass.id).where(WalletPass.serial_number == side))
            for device in ("phone", "watch"):
                session.add(
                    Registration(
                        device_library_identifier=device, pass_id=pass_id, push_token=device
                    )
                )
        sides[side] = [
            _job(settings, signed_pass(pki, serial=side, description=f"v{n}"), who) for n in (2, 3)
        ]
    for job in sides["P-ONE"]:
        with session_scope(url, write=True) as session:
            job(session)
    futures = _one_group(get_engine(url), sides["P-GROUP"])
    assert [future.result().version for future in futures] == [2, 3]
    expected = [(v, d, "pending") for v in (2, 3) for d in ("phone", "watch")]
    assert _pushes(settings, "P-ONE") == _pushes(settings, "P-GROUP") == expected
