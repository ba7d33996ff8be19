"""The generation call (SPEC §12): a pass built from the original API's JSON objects.

The objects become a template (``passes.generation``), the images are added, and the
result is imported exactly like an uploaded template: one personal pass per recipient,
signed with the stored certificate at its first download (SPEC §11).
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from passpost import ids
from passpost.certs.service import certificate_for
from passpost.config import Settings
from passpost.db import utcnow
from passpost.distribution.models import Delivery, DistributionRequest, PassHolder
from passpost.distribution.schemas import parse_pass_content
from passpost.distribution.service import ImportResult, import_pass
from passpost.errors import BadRequest
from passpost.passes.generation import Generated, GenerationError, ImageRef, generate
from passpost.passes.models import PassKind, WalletPass
from passpost.templates.service import image_content

MAX_IMAGE_BYTES = 2 * 1024 * 1024
_PNG = b"\x89PNG\r\n\x1a\n"
# The import's own keys, passed through to passContent as they are.
_REQUEST_KEYS = (
    "recipients",
    "passIntegrationConfig",
    "priority",
    "startTimeStamp",
    "endTimeStamp",
)


def parse_service_request(raw: bytes | str, *, wrapped: bool = True) -> dict[str, Any]:
    """The ``passServiceRequest.passes.pass`` object of a body (one pass per call).

    ``wrapped=False`` (the Update Pass API) also takes that object on its own.
    """
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"The body is not valid JSON: {exc}.", error_code="INVALID_JSON") from exc
    if not wrapped and isinstance(body, dict) and isinstance(body.get("passContent"), dict):
        return body
    try:
        passes = body["passServiceRequest"]["passes"]["pass"]
    except (KeyError, TypeError):
        raise BadRequest(
            "The body needs passServiceRequest.passes.pass.", error_code="INVALID_PASS_REQUEST"
        ) from None
    if isinstance(passes, list):
        if len(passes) != 1:
            raise BadRequest(
                "passServiceRequest.passes.pass must hold one pass per call.",
                error_code="INVALID_PASS_REQUEST",
            )
        passes = passes[0]
    if not isinstance(passes, dict) or not isinstance(passes.get("passContent"), dict):
        raise BadRequest(
            "passServiceRequest.passes.pass needs a passContent object.",
            error_code="INVALID_PASS_REQUEST",
        )
    return passes


def _template_upload(
    session: Session, *, settings: Settings, pass_content: Any, parts: Mapping[str, bytes]
) -> tuple[bytes, dict[str, Any]]:
    """The template archive of a ``passContent`` and its pass.json."""
    basic = pass_content.get("basicDetails") if isinstance(pass_content, dict) else None
    pass_type = basic.get("passTypeIdentifier") if isinstance(basic, dict) else None
    if not isinstance(pass_type, str) or not pass_type:
        raise BadRequest(
            "passContent.basicDetails.passTypeIdentifier is required.",
            error_code="INVALID_PASS_CONTENT",
        )
    row = certificate_for(session, pass_type_identifier=pass_type)
    if row is None:
        raise BadRequest(
            f"No signing certificate is stored for {pass_type}: generated passes are signed "
            "by passpost (upload one with POST /api/v1/passcerts).",
            error_code="NO_SIGNING_CERTIFICATE",
        )
    try:
        generated = generate(
            pass_content, team_identifier=row.team_identifier, serial_number=f"G{ids.new_id()}"
        )
    except GenerationError as exc:
        message = f"passContent.{exc}."
        raise BadRequest(message, error_code="INVALID_PASS_CONTENT") from exc
    images = _images(session, generated.images, parts, settings)
    return _archive(generated, images), generated.pass_json


def _content(request: Mapping[str, Any]) -> Any:
    content = {k: request[k] for k in _REQUEST_KEYS if k in request}
    content["personalize"] = True
    return parse_pass_content(json.dumps(content))


def generate_and_import(
    session: Session,
    *,
    settings: Settings,
    request: Mapping[str, Any],
    parts: Mapping[str, bytes],
    created_by: str,
) -> ImportResult:
    """Build the template of a generation request and import it for its recipients."""
    upload, _ = _template_upload(
        session, settings=settings, pass_content=request["passContent"], parts=parts
    )
    return import_pass(
        session,
        settings=settings,
        upload=upload,
        content=_content(request),
        created_by=created_by,
    )


def update_scheduled(
    session: Session,
    *,
    settings: Settings,
    request: Mapping[str, Any],
    parts: Mapping[str, bytes],
    created_by: str,
) -> ImportResult:
    """The Update Pass API: replace a generated request that has not started sending.

    The pass is found by ``passTypeIdentifier`` + ``passSerialNumber`` (a custom serial).
    Its scheduled request (nothing sent, no pass built) is deleted and the new content
    becomes a new version of the template with a new request; anything already under way
    is a 400 (change sent passes with ``PATCH /api/v1/passes/…``).
    """
    upload, pass_json = _template_upload(
        session, settings=settings, pass_content=request["passContent"], parts=parts
    )
    template = session.scalars(
        select(WalletPass).where(
            WalletPass.pass_type_identifier == pass_json["passTypeIdentifier"],
            WalletPass.serial_number == pass_json["serialNumber"],
            WalletPass.kind == PassKind.TEMPLATE,
        )
    ).one_or_none()
    if template is None:
        raise BadRequest(
            f"No scheduled pass {pass_json['passTypeIdentifier']}/{pass_json['serialNumber']}: "
            "give the passSerialNumber (passSerialNumberType CUSTOM) of the pass to update.",
            error_code="PASS_NOT_FOUND",
        )
    scheduled = session.scalars(
        select(DistributionRequest)
        .where(DistributionRequest.pass_id == template.id)
        .order_by(DistributionRequest.id.desc())
        .limit(1)
    ).first()
    if scheduled is None or not _not_started(session, scheduled):
        raise BadRequest(
            "Only a scheduled pass can be updated (its request has started or was cancelled); "
            "change sent passes with PATCH /api/v1/passes/{passTypeIdentifier}/{serialNumber}.",
            error_code="PASS_ALREADY_SENT",
        )
    session.delete(scheduled)  # its holders and deliveries go with it (ON DELETE CASCADE)
    session.flush()
    return import_pass(
        session,
        settings=settings,
        upload=upload,
        content=_content(request),
        created_by=created_by,
        must_exist=True,
    )


def _not_started(session: Session, request: DistributionRequest) -> bool:
    if request.cancelled_at is not None or request.start_at is None:
        return False
    if request.start_at <= utcnow():
        return False
    started = session.scalar(
        select(func.count())
        .select_from(Delivery)
        .where(Delivery.request_id == request.id, Delivery.attempts > 0)
    )
    built = session.scalar(
        select(func.count())
        .select_from(PassHolder)
        .where(PassHolder.request_id == request.id, PassHolder.personal_pass_id.is_not(None))
    )
    return not started and not built


def _archive(generated: Generated, images: Mapping[str, bytes]) -> bytes:
    if "icon.png" not in images:
        raise BadRequest(
            "A pass needs an image of imageType ICON (Wallet refuses a pass without icon.png).",
            error_code="ICON_REQUIRED",
        )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("pass.json", json.dumps(generated.pass_json, ensure_ascii=False))
        for name, text in generated.strings.items():
            archive.writestr(name, text.encode("utf-8"))
        for name, data in images.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _images(
    session: Session, refs: list[ImageRef], parts: Mapping[str, bytes], settings: Settings
) -> dict[str, bytes]:
    images: dict[str, bytes] = {}
    for ref in refs:
        if ref.field_name:
            data = parts.get(ref.field_name)
            if data is None:
                raise BadRequest(
                    f"No multipart part named {ref.field_name!r} (imageFieldName of "
                    f"{ref.filename}).",
                    error_code="IMAGE_PART_MISSING",
                )
        elif ref.url:
            data = fetch_image(ref.url, settings)
        else:
            stored = image_content(session, ref.image_id or "")
            if stored is None:
                raise BadRequest(
                    f"imageId {ref.image_id!r} is not an image of a pass template.",
                    error_code="IMAGE_NOT_FOUND",
                )
            data = stored
        if not data.startswith(_PNG) or len(data) > MAX_IMAGE_BYTES:
            raise BadRequest(
                f"{ref.filename} must be a PNG image of at most {MAX_IMAGE_BYTES} bytes.",
                error_code="INVALID_IMAGE",
            )
        images[ref.filename] = data
    return images


def allowed_hosts(settings: Settings) -> frozenset[str]:
    """The operator's allow-list of image hosts (``PASSPOST_IMAGE_URL_HOSTS``)."""
    return frozenset(h.strip().lower() for h in settings.image_url_hosts.split(",") if h.strip())


def fetch_image(url: str, settings: Settings) -> bytes:
    """An image from an allowed https host; anything else is a 400, and nothing is fetched."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    allowed = allowed_hosts(settings)
    if parts.scheme != "https" or host not in allowed or parts.username or parts.password:
        listed = ", ".join(sorted(allowed)) or "none (PASSPOST_IMAGE_URL_HOSTS is empty)"
        raise BadRequest(
            f"Image url {url[:200]!r} is not fetched: only https URLs on the operator's allowed "
            f"hosts are ({listed}); send the image as a multipart part instead.",
            error_code="IMAGE_URL_NOT_ALLOWED",
        )
    try:
        with (
            httpx.Client(timeout=10, follow_redirects=False) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code != 200:
                raise BadRequest(
                    f"Image url answered {response.status_code}.",
                    error_code="IMAGE_FETCH_FAILED",
                )
            data = b""
            for chunk in response.iter_bytes():
                data += chunk
                if len(data) > MAX_IMAGE_BYTES:
                    break
    except httpx.HTTPError as exc:
        raise BadRequest(
            f"Image url could not be fetched: {exc}.", error_code="IMAGE_FETCH_FAILED"
        ) from exc
    return data
