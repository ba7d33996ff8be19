"""Personalised passes (SPEC §11): a template import, and one pass per holder built lazily.

The import only checks the template (with sample values) and gives each holder a serial and
its placeholder values: no per-holder signing, so it is as fast as a shared-pass import. A
holder's pass is built, signed and stored at its first download (or PassKit/content fetch),
under a lock on the holder row, so a version is never built twice.
"""

from __future__ import annotations

import dataclasses
import io
import json
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from passpost import ids, pkpass, secrets
from passpost.certs.service import certificate_for, signing_material_for
from passpost.config import Settings
from passpost.db import session_scope, utcnow
from passpost.distribution.models import PassHolder
from passpost.errors import BadRequest, NotFound
from passpost.passes import personalize
from passpost.passes.models import PassKind, PassVersion, WalletPass
from passpost.passes.personalize import Holder, MissingValue, TemplateError
from passpost.passes.service import add_version
from passpost.passes.signing import TOKEN_BYTES, PreparedPass, web_service_url
from passpost.passkit.service import announce_update

_SERIAL_CHUNK = 500
MAX_SERIAL = 255


@dataclass(frozen=True)
class Template:
    """A checked template: its report (identity, pass.json) and its placeholder names."""

    report: pkpass.Report
    names: frozenset[str]

    @property
    def pass_type_identifier(self) -> str:
        assert self.report.identity is not None
        return self.report.identity.pass_type_identifier

    @property
    def serial_number(self) -> str:
        assert self.report.identity is not None
        return self.report.identity.serial_number


def inspect_template(
    upload: bytes, *, personalize_all: bool, settings: Settings
) -> Template | None:
    """The upload as a template, or None when it is a shared pass (no placeholders).

    A template may be unsigned; the rest of SPEC §7 is checked on a copy filled with sample
    values. Needs no database (it runs before the import takes the write lock).
    """
    try:
        files = pkpass.read_archive(upload)
        names = personalize.placeholders(files)
    except pkpass.PkpassError as exc:
        raise BadRequest(f"Invalid pass: {exc.message}", error_code=exc.error_code) from exc
    except TemplateError as exc:
        raise BadRequest(f"Invalid pass template: {exc}.", error_code="INVALID_TEMPLATE") from exc
    if not names and not personalize_all:
        return None
    return Template(_check_sample(files, names, settings), names)


def require_certificate(session: Session, template: Template) -> None:
    """400 ``NO_SIGNING_CERTIFICATE`` unless a certificate can sign the template's passes."""
    identity = template.report.identity
    assert identity is not None
    row = certificate_for(
        session,
        pass_type_identifier=identity.pass_type_identifier,
        team_identifier=identity.team_identifier,
    )
    if row is None:
        raise BadRequest(
            f"No signing certificate is stored for {identity.pass_type_identifier}: personal "
            "passes are signed by passpost (upload one with POST /api/v1/passcerts).",
            error_code="NO_SIGNING_CERTIFICATE",
        )


def _check_sample(
    files: Mapping[str, bytes], names: frozenset[str], settings: Settings
) -> pkpass.Report:
    """Validate the template filled with sample values; the first error becomes a 400."""
    try:
        template_json = personalize.load_template_json(files)
        serial = str(template_json.get("serialNumber") or "serial")
        sample, _ = personalize.personal_files(
            files,
            personalize.sample_values(names),
            serial_number=f"{serial}-1"[:MAX_SERIAL],
            authentication_token="s" * 32,
            web_service_url=web_service_url(settings),
        )
    except TemplateError as exc:
        raise BadRequest(f"Invalid pass template: {exc}.", error_code="INVALID_TEMPLATE") from exc
    sample["manifest.json"] = pkpass.build_manifest(sample)
    report = pkpass.validate(_zip(sample), policy="off")
    if not report.ok or report.identity is None:
        first = report.errors[0]
        raise BadRequest(f"Invalid pass template: {first.message}", error_code=first.error_code)
    # The identity and pass.json stored are the template's own (placeholders included).
    report.pass_json = template_json
    report.identity = dataclasses.replace(report.identity, serial_number=serial)
    return report


def _zip(files: Mapping[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


# -- the import: a serial and values per holder ------------------------------------------


@dataclass(frozen=True)
class HolderPass:
    """What the ledger stores for one holder of a template, or why it is refused."""

    serial_number: str | None
    personal_values: str | None
    rejected: str | None = None


class Personalizer:
    """Gives each holder of a template import its serial and values (no signing here)."""

    def __init__(self, session: Session, template: Template, custom_serials: Iterable[str]) -> None:
        self.template = template
        self.prefix = template.serial_number
        self.taken = _taken_serials(session, template.pass_type_identifier, set(custom_serials))

    def assign(self, holder_id: int, holder: Holder) -> HolderPass:
        """The holder's serial (``fields.serialNumber`` or ``<template>-<holder id>``)."""
        custom = (holder.fields or {}).get("serialNumber")
        if custom is not None:
            serial = str(custom).strip()
            if not serial or len(serial) > MAX_SERIAL:
                return HolderPass(None, None, "fields.serialNumber must have 1 to 255 characters")
            if serial in self.taken:
                return HolderPass(
                    None,
                    None,
                    f"serialNumber {serial} is already used for "
                    f"{self.template.pass_type_identifier}",
                )
            self.taken.add(serial)
        else:
            serial = f"{self.prefix}-{holder_id}"
        try:
            values = personalize.values_for(self.template.names, holder, serial_number=serial)
        except MissingValue as exc:
            return HolderPass(None, None, f"missing value for the placeholder ##{exc.name}##")
        return HolderPass(serial, json.dumps(values, ensure_ascii=False))


def _taken_serials(session: Session, pass_type: str, wanted: set[str]) -> set[str]:
    """The serials among ``wanted`` already used by a pass or a holder of this pass type."""
    taken: set[str] = set()
    ordered = sorted(wanted)
    for start in range(0, len(ordered), _SERIAL_CHUNK):
        chunk = ordered[start : start + _SERIAL_CHUNK]
        taken.update(
            session.scalars(
                select(WalletPass.serial_number).where(
                    WalletPass.pass_type_identifier == pass_type,
                    WalletPass.serial_number.in_(chunk),
                )
            )
        )
        taken.update(
            s
            for s in session.scalars(
                select(PassHolder.serial_number)
                .join(WalletPass, WalletPass.id == PassHolder.pass_id)
                .where(
                    WalletPass.pass_type_identifier == pass_type,
                    PassHolder.serial_number.in_(chunk),
                )
            )
            if s is not None
        )
    return taken


# -- the lazy build ----------------------------------------------------------------------


def personal_pass_id(
    session: Session,
    *,
    settings: Settings,
    holder: PassHolder,
    also: Callable[[Session], None] | None = None,
) -> tuple[int, bool]:
    """The id of the holder's own pass, and True when it was built now.

    It is built in its own writer transaction, which also runs ``also`` (the download
    records the open there: one commit instead of two). The caller's session may hold an
    older snapshot: it should end its transaction before reading a pass built now.
    """
    if holder.personal_pass_id is not None:
        return holder.personal_pass_id, False
    if holder.serial_number is None or holder.personal_values is None:
        raise NotFound("This pass link is not valid.", error_code="LINK_NOT_FOUND")
    with session_scope(settings.resolved_database_url, write=True) as writer:
        pass_id = build_personal_pass(writer, settings=settings, holder_id=holder.id)
        if also is not None:
            also(writer)
    return pass_id, True


def build_personal_pass(session: Session, *, settings: Settings, holder_id: int) -> int:
    """Build, sign and store a holder's pass unless it exists; returns its id.

    The holder row is locked first (FOR UPDATE; SQLite writers are serialised), so two
    first downloads at once build it once. Call inside a writer transaction.
    """
    holder = session.get(PassHolder, holder_id, with_for_update=True, populate_existing=True)
    if holder is None:
        raise NotFound("This pass link is not valid.", error_code="LINK_NOT_FOUND")
    if holder.personal_pass_id is not None:
        return holder.personal_pass_id
    if holder.serial_number is None or holder.personal_values is None:
        raise NotFound("This pass link is not valid.", error_code="LINK_NOT_FOUND")
    template = session.get(WalletPass, holder.pass_id)
    if template is None or template.latest_version_id is None:
        raise NotFound("The pass template is gone.", error_code="PASS_NOT_FOUND")
    version = session.get(PassVersion, template.latest_version_id)
    assert version is not None
    token = secrets.new_token(TOKEN_BYTES)
    content, pass_json = _signed_personal(
        session,
        settings=settings,
        template=template,
        template_content=version.content,
        values=json.loads(holder.personal_values),
        serial_number=holder.serial_number,
        token=token,
    )
    now = utcnow()
    wallet_pass = WalletPass(
        id=ids.new_id(),
        pass_type_identifier=template.pass_type_identifier,
        serial_number=holder.serial_number,
        team_identifier=template.team_identifier,
        authentication_token=token,
        updatable=True,
        voided=bool(pass_json.get("voided", False)),
        kind=PassKind.PERSONAL,
        template_pass_id=template.id,
        created_at=now,
        updated_at=now,
    )
    session.add(wallet_pass)
    session.flush()
    prepared = PreparedPass(content, pass_json, token, True)
    new_version = add_version(session, wallet_pass=wallet_pass, prepared=prepared, now=now)
    announce_update(session, wallet_pass=wallet_pass, version=new_version)
    holder.personal_pass_id = wallet_pass.id
    return wallet_pass.id


def _signed_personal(
    session: Session,
    *,
    settings: Settings,
    template: WalletPass,
    template_content: bytes,
    values: Mapping[str, str],
    serial_number: str,
    token: str,
) -> tuple[bytes, dict[str, Any]]:
    files = pkpass.read_archive(template_content)
    out, pass_json = personalize.personal_files(
        files,
        values,
        serial_number=serial_number,
        authentication_token=token,
        web_service_url=web_service_url(settings),
    )
    signed = sign_files(
        session,
        pass_type_identifier=template.pass_type_identifier,
        team_identifier=template.team_identifier,
        files=out,
    )
    return signed, pass_json


def sign_files(
    session: Session, *, pass_type_identifier: str, team_identifier: str, files: Mapping[str, bytes]
) -> bytes:
    """A .pkpass of ``files`` signed with the stored certificate; 400 when there is none."""
    material = signing_material_for(
        session, pass_type_identifier=pass_type_identifier, team_identifier=team_identifier
    )
    if material is None:
        raise BadRequest(
            f"No signing certificate is stored for {pass_type_identifier} (upload one with "
            "POST /api/v1/passcerts).",
            error_code="NO_SIGNING_CERTIFICATE",
        )
    return pkpass.sign(
        files,
        certificate=material.certificate,
        private_key=material.private_key,
        intermediates=material.intermediates,
    )


# -- read models -------------------------------------------------------------------------


def preview_barcode(
    template_json: Mapping[str, Any], holder: PassHolder
) -> Mapping[str, Any] | None:
    """The holder's filled barcode before its pass is built (None when it cannot be)."""
    if holder.personal_values is None:
        return None
    values = json.loads(holder.personal_values)
    barcodes = template_json.get("barcodes")
    barcode = (
        barcodes[0] if isinstance(barcodes, list) and barcodes else template_json.get("barcode")
    )
    if not isinstance(barcode, dict):
        return {}
    try:
        filled = personalize.fill_pass_json(barcode, values)
    except MissingValue:
        return {}
    return filled if isinstance(filled, dict) else {}


def built_pass_json(session: Session, pass_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """The latest pass.json of each built personal pass, by pass id."""
    if not pass_ids:
        return {}
    rows = session.execute(
        select(WalletPass.id, PassVersion.pass_json)
        .join(PassVersion, PassVersion.id == WalletPass.latest_version_id)
        .where(WalletPass.id.in_(list(pass_ids)))
    )
    return {int(pid): json.loads(raw or "{}") for pid, raw in rows}
