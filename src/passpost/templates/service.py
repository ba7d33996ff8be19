"""Pass templates: create (with images), list, get, modify, delete, export, import.

Plain functions; the caller owns the transaction. A payload is checked by generating its
pass (constants, dates, colors: a 400 names what is wrong), so a stored template always
generates. Uploaded images are stored and the payload then refers to them by ``imageId``.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from passpost import ids
from passpost.db import utcnow
from passpost.errors import BadRequest
from passpost.passes.generation import GenerationError, generate
from passpost.templates.models import PassTemplate, PassTemplateImage

MAX_IMAGE_BYTES = 2 * 1024 * 1024
MAX_NAME = 200
MAX_IMPORT_FILES = 500
_PNG = b"\x89PNG\r\n\x1a\n"


def parse_payload(raw: bytes | str) -> dict[str, Any]:
    """A template payload (``name``, ``passContent``, ``passIntegrationConfig``) or a 400."""
    try:
        payload = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(
            f"The template is not valid JSON: {exc}.", error_code="INVALID_JSON"
        ) from exc
    return check_payload(payload)


def check_payload(payload: Any) -> dict[str, Any]:
    """``parse_payload`` for an already decoded payload: the same checks, the same 400s."""
    if not isinstance(payload, dict):
        raise BadRequest("The template must be a JSON object.", error_code="INVALID_TEMPLATE")
    name = payload.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
        raise BadRequest(
            f"The template needs a name of 1 to {MAX_NAME} characters.",
            error_code="INVALID_TEMPLATE",
        )
    if not isinstance(payload.get("passContent"), dict):
        raise BadRequest("The template needs a passContent object.", error_code="INVALID_TEMPLATE")
    try:
        generate(payload["passContent"], team_identifier="TEAM", serial_number="check")
    except GenerationError as exc:
        raise BadRequest(f"passContent.{exc}.", error_code="INVALID_PASS_CONTENT") from exc
    payload["name"] = name.strip()
    return payload


def _image_refs(content: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    appearance = content.get("appearance")
    if isinstance(appearance, dict):
        yield from (i for i in appearance.get("images") or [] if isinstance(i, dict))
    languages = content.get("languageDetails")
    if isinstance(languages, dict):
        for entry in languages.get("languageEntries") or []:
            if isinstance(entry, dict):
                yield from (i for i in entry.get("images") or [] if isinstance(i, dict))


def _store_images(
    session: Session, template: PassTemplate, payload: dict[str, Any], images: Mapping[str, bytes]
) -> None:
    """Store each image part the payload names (imageFieldName) and refer to it by imageId."""
    for ref in _image_refs(payload["passContent"]):
        field_name = ref.get("imageFieldName")
        if not field_name:
            continue
        data = images.get(field_name)
        if data is None:
            raise BadRequest(
                f"No multipart part named {field_name!r} (an imageFieldName of the template).",
                error_code="IMAGE_PART_MISSING",
            )
        if not data.startswith(_PNG) or len(data) > MAX_IMAGE_BYTES:
            raise BadRequest(
                f"Image {field_name!r} must be a PNG of at most {MAX_IMAGE_BYTES} bytes.",
                error_code="INVALID_IMAGE",
            )
        image = PassTemplateImage(
            id=ids.new_id(),
            template_id=template.id,
            content=data,
            sha256=hashlib.sha256(data).hexdigest(),
            created_at=utcnow(),
        )
        session.add(image)
        ref.pop("imageFieldName")
        ref.update(imageId=str(image.id), blob=True)


def _unique_name(session: Session, name: str, template_id: int | None = None) -> None:
    query = select(PassTemplate.id).where(PassTemplate.name == name)
    if template_id is not None:
        query = query.where(PassTemplate.id != template_id)
    if session.scalar(query) is not None:
        raise BadRequest(
            f"A pass template named {name!r} exists.", error_code="TEMPLATE_NAME_TAKEN"
        )


def create_template(
    session: Session, *, payload: dict[str, Any], images: Mapping[str, bytes], created_by: str
) -> PassTemplate:
    """Store a new template and its images."""
    _unique_name(session, payload["name"])
    now = utcnow()
    template = PassTemplate(
        id=ids.new_id(),
        name=payload["name"],
        payload="{}",
        created_by=created_by,
        created_at=now,
        updated_at=now,
    )
    session.add(template)
    session.flush()
    _store_images(session, template, payload, images)
    template.payload = json.dumps(payload, ensure_ascii=False)
    session.flush()
    return template


def get_template(session: Session, template_id: int) -> PassTemplate:
    """One template, or a 400 as the original answers for an unknown id."""
    template = session.get(PassTemplate, template_id)
    if template is None:
        raise BadRequest(  # the original answers 400 here
            f"No pass template found with id {template_id}.", error_code="TEMPLATE_NOT_FOUND"
        )
    return template


def modify_template(
    session: Session, *, template_id: int, payload: dict[str, Any], images: Mapping[str, bytes]
) -> PassTemplate:
    """Replace a template's payload; images no longer referred to are deleted."""
    template = get_template(session, template_id)
    _unique_name(session, payload["name"], template.id)
    _store_images(session, template, payload, images)
    template.name = payload["name"]
    template.payload = json.dumps(payload, ensure_ascii=False)
    template.updated_at = utcnow()
    kept = {str(r.get("imageId")) for r in _image_refs(payload["passContent"])}
    for image in session.scalars(
        select(PassTemplateImage).where(PassTemplateImage.template_id == template.id)
    ):
        if str(image.id) not in kept:
            session.delete(image)
    return template


def delete_template(session: Session, template_id: int) -> None:
    """Delete a template and its images."""
    session.delete(get_template(session, template_id))


def list_templates(
    session: Session, *, start: int, page_size: int
) -> tuple[int, list[PassTemplate]]:
    """Templates by id: the total and one page."""
    total = int(session.scalar(select(func.count()).select_from(PassTemplate)) or 0)
    rows = session.scalars(
        select(PassTemplate).order_by(PassTemplate.id).offset(start).limit(page_size)
    )
    return total, list(rows)


def template_view(template: PassTemplate) -> dict[str, Any]:
    """What the calls answer for a template: its id and payload."""
    return {"id": str(template.id), **json.loads(template.payload)}


def image_content(session: Session, image_id: str) -> bytes | None:
    """The bytes of a stored template image (``imageId`` of a generated pass)."""
    if not (image_id.isascii() and image_id.isdigit()) or len(image_id) > 19:
        return None
    image = session.get(PassTemplateImage, int(image_id))
    return image.content if image is not None else None


def export_templates(session: Session, template_ids: list[int] | None) -> bytes:
    """A zip of one JSON file per template, its images inline (base64), for import."""
    query = select(PassTemplate).order_by(PassTemplate.id)
    if template_ids is not None:
        query = query.where(PassTemplate.id.in_(template_ids))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for template in session.scalars(query):
            images = session.scalars(
                select(PassTemplateImage).where(PassTemplateImage.template_id == template.id)
            )
            document = {
                **json.loads(template.payload),
                "images": {str(i.id): base64.b64encode(i.content).decode() for i in images},
            }
            archive.writestr(
                f"template-{template.id}.json", json.dumps(document, ensure_ascii=False)
            )
    return buffer.getvalue()


def import_templates(session: Session, *, data: bytes, created_by: str) -> list[PassTemplate]:
    """Create every template of an export zip (all or none: a bad one is a 400)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        names = [n for n in archive.namelist() if n.endswith(".json")]
    except zipfile.BadZipFile as exc:
        raise BadRequest(
            "The file is not a template export (zip).", error_code="INVALID_EXPORT"
        ) from exc
    if not names or len(names) > MAX_IMPORT_FILES:
        raise BadRequest(
            f"A template export holds 1 to {MAX_IMPORT_FILES} JSON files.",
            error_code="INVALID_EXPORT",
        )
    created = []
    for name in names:
        if archive.getinfo(name).file_size > 16 * 1024 * 1024:
            raise BadRequest(f"{name} is too large.", error_code="INVALID_EXPORT")
        try:
            document = json.loads(archive.read(name))
        except (ValueError, zipfile.BadZipFile, zlib.error) as exc:
            raise BadRequest(f"{name} is not readable JSON.", error_code="INVALID_EXPORT") from exc
        inline = document.pop("images", {}) if isinstance(document, dict) else {}
        if not isinstance(inline, dict):
            raise BadRequest(f"{name}: images must be an object.", error_code="INVALID_EXPORT")
        payload = check_payload(document)
        images: dict[str, bytes] = {}
        for ref in _image_refs(payload["passContent"]):
            old_id = str(ref.get("imageId") or "")
            if old_id in inline:
                ref["imageFieldName"] = f"image-{old_id}"
                images[ref["imageFieldName"]] = _inline_image(name, inline[old_id])
                ref.pop("imageId")
        created.append(
            create_template(session, payload=payload, images=images, created_by=created_by)
        )
    return created


def _inline_image(name: str, encoded: Any) -> bytes:
    try:
        return base64.b64decode(encoded, validate=True)
    except (TypeError, ValueError) as exc:  # binascii.Error is a ValueError
        raise BadRequest(
            f"{name}: an inline image is not base64.", error_code="INVALID_EXPORT"
        ) from exc
