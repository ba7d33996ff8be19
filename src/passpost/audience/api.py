"""The audience API (``/api/v1/audience``) in the original's shapes: camelCase, string ids."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException

from passpost.audience import csv_import, service
from passpost.audience.models import Recipient
from passpost.auth.deps import OperatorDep
from passpost.deps import SessionDep, SettingsDep
from passpost.errors import BadRequest, UnsupportedMediaType

router = APIRouter(prefix="/api/v1/audience", tags=["audience"])

RecipientId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The recipient's id.")]


class AudienceIn(BaseModel):
    """A recipient's attributes as the original API names them (unknown keys are ignored)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    mobile_number: str | int | None = None
    state: str | None = None
    country: str | None = None
    sms_subscription: bool | str | None = None
    email_subscription: bool | str | None = None
    push_subscription: bool | str | None = None


def _date_str(value: datetime | None) -> str | None:
    # The original's "08/28/2017 12:23:28 PM IST" format, always in UTC here.
    return value.strftime("%m/%d/%Y %I:%M:%S %p UTC") if value else None


def audience_json(recipient: Recipient) -> dict[str, Any]:
    """One recipient in the original API's shape (plus ISO timestamps)."""
    return {
        "id": str(recipient.id),
        "firstName": recipient.first_name,
        "lastName": recipient.last_name,
        "email": recipient.email,
        "mobileNumber": recipient.mobile_number,
        "state": recipient.state,
        "country": recipient.country,
        "smsSubscription": recipient.sms_subscription,
        "emailSubscription": recipient.email_subscription,
        "pushSubscription": recipient.push_subscription,
        "active": True,
        "createdDateStr": _date_str(recipient.created_at),
        "lastModifiedDateStr": _date_str(recipient.updated_at),
        "createdAt": recipient.created_at.isoformat() if recipient.created_at else None,
        "updatedAt": recipient.updated_at.isoformat() if recipient.updated_at else None,
    }


@router.post("")
def create_audience(
    body: AudienceIn, _: OperatorDep, session: SessionDep, settings: SettingsDep
) -> dict[str, str]:
    """Create a recipient."""
    recipient = service.create_recipient(
        session, fields=body.model_dump(), region=settings.sms_default_region
    )
    return {"id": str(recipient.id), "message": "Details added successfully"}


@router.get("")
def list_audience(
    _: OperatorDep,
    session: SessionDep,
    start: Annotated[int, Query(ge=0)] = 0,
    page_size: Annotated[int, Query(alias="pageSize", ge=1, le=service.MAX_PAGE_SIZE)] = 20,
) -> dict[str, Any]:
    """One page of recipients in id order, with the total count."""
    total, page = service.list_recipients(session, start=start, page_size=page_size)
    return {"total": total, "audience": [audience_json(r) for r in page]}


_CSV_UPLOAD: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            }
        },
    }
}


async def _csv_upload(request: Request) -> UploadFile:
    """The ``file`` part, read only after authentication (the size is capped before)."""
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise UnsupportedMediaType("Send the CSV as multipart/form-data with a 'file' part.")
    try:
        form = await request.form(max_files=1, max_fields=20)
    except (MultiPartException, ValueError) as exc:
        raise BadRequest(f"Malformed multipart body: {exc}.", error_code="BAD_MULTIPART") from exc
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise BadRequest("The multipart body has no 'file' part.", error_code="MISSING_FILE")
    return upload


def _report_json(report: csv_import.ImportReport) -> dict[str, Any]:
    return {
        "message": "Import completed",
        "total": report.total,
        "created": report.created,
        "updated": report.updated,
        "failed": report.failed,
        "errors": [
            {"row": e.row, "errorCode": e.error_code, "message": e.message} for e in report.errors
        ],
        "errorsTruncated": report.failed > len(report.errors),
        "ignoredColumns": report.ignored_columns,
    }


@router.post("/import", openapi_extra=_CSV_UPLOAD)
async def import_audience(
    request: Request, _: OperatorDep, session: SessionDep, settings: SettingsDep
) -> dict[str, Any]:
    """Upsert recipients from a CSV file (by e-mail); bad rows are reported, not fatal."""
    upload = await _csv_upload(request)
    report = await run_in_threadpool(
        csv_import.import_csv, session, data=upload.file, region=settings.sms_default_region
    )
    return _report_json(report)


@router.get("/{recipient_id}")
def get_audience(recipient_id: RecipientId, _: OperatorDep, session: SessionDep) -> dict[str, Any]:
    """One recipient."""
    return audience_json(service.get_recipient(session, recipient_id=recipient_id))


@router.put("/{recipient_id}")
def update_audience(
    recipient_id: RecipientId,
    body: AudienceIn,
    _: OperatorDep,
    session: SessionDep,
    settings: SettingsDep,
) -> dict[str, str]:
    """Modify a recipient: keys present are set (null or "" clears), absent keys stay."""
    service.update_recipient(
        session,
        recipient_id=recipient_id,
        changes=body.model_dump(exclude_unset=True),
        region=settings.sms_default_region,
    )
    return {"id": str(recipient_id), "message": "Details updated successfully"}


@router.post("/{recipient_id}/delete")
def delete_audience(
    recipient_id: RecipientId, _: OperatorDep, session: SessionDep
) -> dict[str, str]:
    """Delete a recipient (the original API's POST form)."""
    service.delete_recipient(session, recipient_id=recipient_id)
    return {"id": str(recipient_id), "message": "User deleted successfully"}


@router.delete("/{recipient_id}")
def delete_audience_rest(
    recipient_id: RecipientId, _: OperatorDep, session: SessionDep
) -> dict[str, str]:
    """Delete a recipient (the same, as HTTP DELETE)."""
    return delete_audience(recipient_id, _, session)
