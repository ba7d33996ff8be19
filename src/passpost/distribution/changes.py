"""Passes after they are sent (SPEC §13): list, detail, change fields, void, expire.

Plain functions; the caller owns the transaction and enqueues the pushes after its commit.
Every change is a new version, signed with the stored certificate, recorded on the update
clock (so devices polling with a tag never miss it) with one push per registration.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from passpost import pkpass, secrets
from passpost.config import Settings
from passpost.db import utcnow
from passpost.distribution.models import DistributionRequest, PassHolder
from passpost.distribution.personal import sign_files
from passpost.errors import BadRequest, NotFound
from passpost.passes import fields as pass_fields
from passpost.passes.models import PassKind, PassVersion, WalletPass
from passpost.passes.personalize import TemplateError, load_template_json
from passpost.passes.service import add_version
from passpost.passes.signing import TOKEN_BYTES, PreparedPass, web_service_url
from passpost.passkit.models import InstallEvent, InstallKind, PassPush, Registration
from passpost.passkit.service import announce_update

MAX_FIELDS = 100


class PassChange(BaseModel):
    """The body of ``PATCH …/passes/…``: field values by key, a change message, notify."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    fields: dict[str, str | int | float | bool] = Field(default_factory=dict)
    change_message: str | None = Field(default=None, alias="changeMessage")
    notify: bool = False

    @field_validator("fields")
    @classmethod
    def _some_fields(cls, value: dict[str, Any]) -> dict[str, Any]:
        if not value:
            raise ValueError("fields must name at least one field key")
        if len(value) > MAX_FIELDS:
            raise ValueError(f"at most {MAX_FIELDS} fields per change")
        return value

    @field_validator("change_message")
    @classmethod
    def _short_message(cls, value: str | None) -> str | None:
        if value is not None and len(value) > pass_fields.MAX_CHANGE_MESSAGE:
            raise ValueError(f"changeMessage is longer than {pass_fields.MAX_CHANGE_MESSAGE}")
        return value


def parse_change(raw: bytes) -> PassChange:
    """The PATCH body, or a 400 naming what is wrong."""
    try:
        return PassChange.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        message = first["msg"].removeprefix("Value error, ")
        raise BadRequest(f"{where}: {message}.", error_code="INVALID_PASS_CHANGE") from exc


@dataclass(frozen=True)
class Changed:
    """A new version made: the pass to push, and its version number."""

    pass_id: int
    version: int


def find_pass(session: Session, pass_type_identifier: str, serial_number: str) -> WalletPass:
    """A sent pass (shared or personal; templates are not passes) or 404."""
    wallet_pass = session.scalars(
        select(WalletPass).where(
            WalletPass.pass_type_identifier == pass_type_identifier,
            WalletPass.serial_number == serial_number,
            WalletPass.kind != PassKind.TEMPLATE,
        )
    ).one_or_none()
    if wallet_pass is None or wallet_pass.latest_version_id is None:
        raise NotFound(
            f"No pass {pass_type_identifier}/{serial_number}.", error_code="PASS_NOT_FOUND"
        )
    return wallet_pass


def change_pass(
    session: Session,
    *,
    settings: Settings,
    pass_id: int,
    change: PassChange | None = None,
    void: bool = False,
    expire: bool = False,
) -> Changed:
    """Apply a change as a new, re-signed version of the pass, visible to devices."""
    wallet_pass = session.get(WalletPass, pass_id, with_for_update=True, populate_existing=True)
    if wallet_pass is None or wallet_pass.latest_version_id is None:
        raise NotFound("The pass no longer exists.", error_code="PASS_NOT_FOUND")
    latest = session.get(PassVersion, wallet_pass.latest_version_id)
    assert latest is not None
    files = pkpass.read_archive(latest.content)
    try:
        pass_json: dict[str, Any] = load_template_json(files)
    except TemplateError as exc:
        raise BadRequest(
            f"The stored pass cannot be changed: {exc}.", error_code="PASS_UNCHANGEABLE"
        ) from exc
    now = utcnow()
    if change is not None:
        try:
            pass_json = pass_fields.set_fields(
                pass_json, change.fields, change_message=change.change_message
            )
        except pass_fields.UnknownField as exc:
            raise BadRequest(f"{str(exc).capitalize()}.", error_code="UNKNOWN_FIELD") from exc
    if void:
        pass_json = pass_fields.voided(pass_json)
    if expire:
        pass_json = pass_fields.expired(pass_json, now=now)
    token = wallet_pass.authentication_token or secrets.new_token(TOKEN_BYTES)
    pass_json["authenticationToken"] = token
    pass_json["webServiceURL"] = web_service_url(settings)
    files["pass.json"] = json.dumps(pass_json, ensure_ascii=False, indent=2).encode("utf-8")
    signed = sign_files(
        session,
        pass_type_identifier=wallet_pass.pass_type_identifier,
        team_identifier=wallet_pass.team_identifier,
        files=files,
    )
    prepared = PreparedPass(signed, pass_json, token, True)
    version = add_version(session, wallet_pass=wallet_pass, prepared=prepared, now=now)
    announce_update(session, wallet_pass=wallet_pass, version=version)
    return Changed(wallet_pass.id, version.version)


# -- read models -------------------------------------------------------------------------


def _iso(value: Any) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def _request_pass_ids(session: Session, request_id: int) -> list[int]:
    """The passes a request's holders hold: the shared pass, or each built personal pass."""
    request = session.get(DistributionRequest, request_id)
    if request is None:
        raise NotFound(f"No request {request_id}.", error_code="REQUEST_NOT_FOUND")
    template = session.get(WalletPass, request.pass_id)
    if template is not None and template.kind != PassKind.TEMPLATE:
        return [template.id]
    built = session.scalars(
        select(PassHolder.personal_pass_id).where(
            PassHolder.request_id == request_id, PassHolder.personal_pass_id.is_not(None)
        )
    )
    return [int(p) for p in built if p is not None]


def list_passes(
    session: Session,
    *,
    pass_type_identifier: str | None,
    request_id: int | None,
    start: int,
    page_size: int,
) -> dict[str, Any]:
    """Sent passes, newest first: serial, holder, versions, devices, voided, expiry."""
    query = select(WalletPass).where(WalletPass.kind != PassKind.TEMPLATE)
    if pass_type_identifier:
        query = query.where(WalletPass.pass_type_identifier == pass_type_identifier)
    if request_id is not None:
        query = query.where(WalletPass.id.in_(_request_pass_ids(session, request_id)))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = list(
        session.scalars(query.order_by(WalletPass.id.desc()).offset(start).limit(page_size))
    )
    return {"total": total, "passes": [_summary(session, p) for p in rows]}


def _count(session: Session, model: Any, pass_id: int) -> int:
    return int(
        session.scalar(select(func.count()).select_from(model).where(model.pass_id == pass_id)) or 0
    )


def _summary(session: Session, wallet_pass: WalletPass) -> dict[str, Any]:
    raw = session.scalar(
        select(PassVersion.pass_json).where(PassVersion.id == wallet_pass.latest_version_id)
    )
    pass_json = json.loads(raw or "{}")
    holder = session.scalars(
        select(PassHolder.audience_id).where(PassHolder.personal_pass_id == wallet_pass.id)
    ).first()
    return {
        "passTypeIdentifier": wallet_pass.pass_type_identifier,
        "serialNumber": wallet_pass.serial_number,
        "kind": wallet_pass.kind,
        "audienceId": holder,
        "versions": _count(session, PassVersion, wallet_pass.id),
        "devices": _count(session, Registration, wallet_pass.id),
        "voided": wallet_pass.voided,
        "expirationDate": pass_json.get("expirationDate"),
        "updatable": wallet_pass.updatable,
        "createdAt": _iso(wallet_pass.created_at),
        "updatedAt": _iso(wallet_pass.updated_at),
    }


def pass_detail(session: Session, wallet_pass: WalletPass) -> dict[str, Any]:
    """Versions, registrations, pushes and install/removal events of one pass."""
    versions = session.scalars(
        select(PassVersion).where(PassVersion.pass_id == wallet_pass.id).order_by(PassVersion.id)
    )
    registrations = session.scalars(
        select(Registration).where(Registration.pass_id == wallet_pass.id)
    )
    pushes = session.scalars(
        select(PassPush).where(PassPush.pass_id == wallet_pass.id).order_by(PassPush.id.desc())
    )
    events = session.scalars(
        select(InstallEvent).where(InstallEvent.pass_id == wallet_pass.id).order_by(InstallEvent.id)
    )
    return {
        **_summary(session, wallet_pass),
        "versionList": [
            {
                "version": v.version,
                "sha256": v.sha256,
                "size": v.size,
                "createdAt": _iso(v.created_at),
            }
            for v in versions
        ],
        "registrations": [
            {
                "deviceLibraryIdentifier": r.device_library_identifier,
                "createdAt": _iso(r.created_at),
            }
            for r in registrations
        ],
        "pushes": [
            {
                "deviceLibraryIdentifier": p.device_library_identifier,
                "state": p.state,
                "apnsStatus": p.apns_status,
                "attempts": p.attempts,
                "createdAt": _iso(p.created_at),
                "finishedAt": _iso(p.finished_at),
            }
            for p in pushes.all()[:100]
        ],
        "installEvents": [
            {
                "kind": e.kind,
                "deviceLibraryIdentifier": e.device_library_identifier,
                "at": _iso(e.at),
            }
            for e in events
        ],
    }


def install_counts(
    session: Session, *, pass_id: int, pass_kind: str, tallied: dict[str, int]
) -> dict[str, int]:
    """Installs (registrations) and removals (unregistrations) of a request's passes.

    Personal passes: the request's tally (``tallied``, its ``*`` counts, kept by migration
    0010's triggers), whatever the number of passes. A shared pass: its events, counted on
    ``ix_passkit_install_event_pass_kind`` (the pass is not any one request's).
    """
    if pass_kind == PassKind.TEMPLATE:
        counts = {
            InstallKind.INSTALL: tallied.get("installs", 0),
            InstallKind.REMOVAL: tallied.get("removals", 0),
        }
    else:
        rows = session.execute(
            select(InstallEvent.kind, func.count())
            .where(InstallEvent.pass_id == pass_id)
            .group_by(InstallEvent.kind)
        )
        counts = {kind: int(n) for kind, n in rows}
    return {
        "installs": counts.get(InstallKind.INSTALL, 0),
        "removals": counts.get(InstallKind.REMOVAL, 0),
    }
