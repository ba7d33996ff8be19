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
from sqlalchemy.orm import Session

from passpost import ids
from passpost.certs.service import certificate_for
from passpost.config import Settings
from passpost.distribution.schemas import parse_pass_content
from passpost.distribution.service import ImportResult, import_pass
from passpost.errors import BadRequest
from passpost.passes.generation import Generated, GenerationError, ImageRef, generate
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


def parse_service_request(raw: bytes | str) -> dict[str, Any]:
    """The ``passServiceRequest.passes.pass`` object of a body (one pass per call)."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"The body is not valid JSON: {exc}.", error_code="INVALID_JSON") from exc
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


def generate_and_import(
    session: Session,
    *,
    settings: Settings,
    request: Mapping[str, Any],
    parts: Mapping[str, bytes],
    created_by: str,
) -> ImportResult:
    """Build the template of a generation request and import it for its recipients."""
    pass_content = request["passContent"]
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
    upload = _archive(generated, _images(session, generated.images, parts, settings))
    content = {k: request[k] for k in _REQUEST_KEYS if k in request}
    content["personalize"] = True
    return import_pass(
        session,
        settings=settings,
        upload=upload,
        content=parse_pass_content(json.dumps(content)),
        created_by=created_by,
    )


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
