"""The original API's pass template calls (``/api/v1/templates/passbook``, SPEC §12)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request, Response

from passpost.auth.deps import OperatorDep
from passpost.deps import SessionDep, SettingsDep
from passpost.errors import BadRequest
from passpost.templates import service
from passpost.uploads import read_multipart

router = APIRouter(tags=["templates"])
_ONE = "/api/v1/templates/passbook/{template_id}"


def _id(value: str) -> int:
    if not value.isdigit() or len(value) > 19:
        raise BadRequest("Invalid pass template ID provided.", error_code="INVALID_ID")
    return int(value)


async def _payload(request: Request, limit: int) -> tuple[dict[str, Any], dict[str, bytes]]:
    """JSON, or multipart with ``passTemplatePayload`` and the image parts."""
    if request.headers.get("content-type", "").startswith("multipart/"):
        parts = await read_multipart(request, limit=limit)
        payload = parts.get("passTemplatePayload")
        if payload is None:
            raise BadRequest(
                "The multipart part 'passTemplatePayload' (JSON) is missing.",
                error_code="MISSING_TEMPLATE_PAYLOAD",
            )
        images = {n: p.data for n, p in parts.items() if n != "passTemplatePayload"}
        return service.parse_payload(payload.data), images
    return service.parse_payload(await request.body()), {}


@router.post("/api/v1/templates/passbook")
async def create_template(
    request: Request, session: SessionDep, settings: SettingsDep, principal: OperatorDep
) -> dict[str, str]:
    """Create a pass template (JSON, or multipart with images named by imageFieldName)."""
    payload, images = await _payload(request, settings.max_upload_bytes)
    template = service.create_template(
        session, payload=payload, images=images, created_by=principal.name
    )
    return {"id": str(template.id), "message": "Pass template added successfully."}


@router.get("/api/v1/templates/passbook")
def list_templates(
    session: SessionDep,
    _: OperatorDep,
    start: int = Query(0, ge=0),
    page_size: int = Query(50, ge=1, le=500, alias="pageSize"),
) -> dict[str, Any]:
    """All pass templates (one page)."""
    total, rows = service.list_templates(session, start=start, page_size=page_size)
    return {"total": total, "passtemplates": [service.template_view(t) for t in rows]}


@router.get(_ONE)
def get_template(template_id: str, session: SessionDep, _: OperatorDep) -> dict[str, Any]:
    """One pass template."""
    return service.template_view(service.get_template(session, _id(template_id)))


@router.put(_ONE)
async def modify_template(
    template_id: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    _: OperatorDep,
) -> dict[str, str]:
    """Replace a pass template (JSON, or multipart with new images)."""
    payload, images = await _payload(request, settings.max_upload_bytes)
    template = service.modify_template(
        session, template_id=_id(template_id), payload=payload, images=images
    )
    return {"id": str(template.id), "message": "Pass template updated successfully."}


@router.delete(_ONE)
def delete_template(template_id: str, session: SessionDep, _: OperatorDep) -> dict[str, str]:
    """Delete a pass template and its images."""
    service.delete_template(session, _id(template_id))
    return {"id": template_id, "message": "Pass template deleted successfully."}


@router.get("/api/v1/templates/pass/export")
def export_templates(
    session: SessionDep,
    _: OperatorDep,
    template_ids: str | None = Query(None, alias="templateIds", max_length=4000),
    export_all: bool = Query(False, alias="exportAll"),
) -> Response:
    """A zip of the chosen templates (``templateIds=1,2``) or all (``exportAll=true``)."""
    if not export_all and not template_ids:
        raise BadRequest("Give templateIds=1,2,… or exportAll=true.", error_code="INVALID_EXPORT")
    wanted = None if export_all else [_id(i.strip()) for i in (template_ids or "").split(",")]
    data = service.export_templates(session, wanted)
    return Response(
        data,
        media_type="application/zip",
        headers={"Content-Disposition": 'attachment; filename="pass-templates.zip"'},
    )


@router.post("/api/v1/templates/pass/import")
async def import_templates(
    request: Request, session: SessionDep, settings: SettingsDep, principal: OperatorDep
) -> dict[str, Any]:
    """Create the templates of an export zip (multipart part ``file``)."""
    parts = await read_multipart(request, limit=settings.max_upload_bytes)
    upload = parts.get("file")
    if upload is None:
        raise BadRequest(
            "The multipart part 'file' (the zip) is missing.", error_code="MISSING_FILE"
        )
    created = service.import_templates(session, data=upload.data, created_by=principal.name)
    return {"ids": [str(t.id) for t in created], "message": "Pass templates imported successfully."}
