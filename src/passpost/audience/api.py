"""The audience API (``/api/v1/audience``) in the original's shapes: camelCase, string ids."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from passpost.audience import service, uploads
from passpost.audience.models import Recipient, UploadBatch
from passpost.auth.deps import OperatorDep
from passpost.deps import SessionDep, SettingsDep
from passpost.errors import BadRequest
from passpost.timestamps import date_str, iso
from passpost.uploads import Part, read_multipart

router = APIRouter(prefix="/api/v1/audience", tags=["audience"])
batch_router = APIRouter(prefix="/api/v1/batchinfo", tags=["audience"])

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
    voice_subscription: bool | str | None = None
    # Create sends lastActiveDate; Modify documents lastActiveDateStr: both are read.
    last_active_date: str | int | None = None
    last_active_date_str: str | int | None = None

    def fields(self, *, only_set: bool) -> dict[str, Any]:
        """The attributes as ``service`` names them (only those sent, if ``only_set``)."""
        data = self.model_dump(exclude_unset=only_set)
        dates = [data.pop(k) for k in ("last_active_date", "last_active_date_str") if k in data]
        if dates:
            data["last_active_at"] = next((d for d in dates if d not in (None, "")), dates[0])
        return data


class AudiencePatch(AudienceIn):
    """The partial update: ``emailId`` in the body is the new address (when it differs)."""

    email_id: str | None = None


def audience_json(recipient: Recipient) -> dict[str, Any]:
    """One recipient in the original API's shape (plus ISO timestamps)."""
    # The pages show an absent value as "", never null.
    return {
        "id": str(recipient.id),
        "firstName": recipient.first_name or "",
        "lastName": recipient.last_name or "",
        "email": recipient.email or "",
        "mobileNumber": recipient.mobile_number or "",
        "state": recipient.state or "",
        "country": recipient.country or "",
        "smsSubscription": recipient.sms_subscription,
        "emailSubscription": recipient.email_subscription,
        "pushSubscription": recipient.push_subscription,
        "voiceSubscription": recipient.voice_subscription,
        "active": True,
        "createdDateStr": date_str(recipient.created_at),
        "lastModifiedDateStr": date_str(recipient.updated_at),
        "lastActiveDateStr": date_str(recipient.last_active_at),
        "createdAt": iso(recipient.created_at),
        "updatedAt": iso(recipient.updated_at),
    }


@router.post("")
def create_audience(
    body: AudienceIn, _: OperatorDep, session: SessionDep, settings: SettingsDep
) -> dict[str, str]:
    """Create a recipient."""
    recipient = service.create_recipient(
        session, fields=body.fields(only_set=False), region=settings.sms_default_region
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


async def _csv_upload(request: Request, limit: int) -> Part:
    """The ``file`` part, read only after authentication (the size is capped before)."""
    part = (await read_multipart(request, limit=limit)).get("file")
    if part is None or not part.is_file:
        raise BadRequest("The multipart body has no 'file' part.", error_code="MISSING_FILE")
    return part


@router.post("/import", openapi_extra=_CSV_UPLOAD)
async def import_audience(
    request: Request, principal: OperatorDep, session: SessionDep, settings: SettingsDep
) -> dict[str, str]:
    """Queue a CSV of recipients (upsert by e-mail); follow it at ``/api/v1/batchinfo``.

    ``DELIMITER`` (the original's query parameter) is accepted; the delimiter is detected.
    """
    upload = await _csv_upload(request, settings.max_upload_bytes)
    data = upload.data
    batch = await run_in_threadpool(
        lambda: uploads.create_batch(
            session, data=data, file_name=upload.filename, imported_by=principal.name
        )
    )
    # Committed before the task is queued; a lost task is found again by the sweeper.
    await run_in_threadpool(session.commit)
    from passpost.audience.tasks import queue_upload

    queue_upload(batch.id)
    return {"id": str(batch.id), "message": batch.status_message}


@router.patch("/modify")
def patch_audience(
    body: AudiencePatch,
    _: OperatorDep,
    session: SessionDep,
    settings: SettingsDep,
    recipient_id: Annotated[int | None, Query(alias="id", ge=1, le=2**63 - 1)] = None,
    email_id: Annotated[str | None, Query(alias="emailId", max_length=320)] = None,
) -> dict[str, str]:
    """Change only the attributes sent, of the recipient named by ``?id=`` or ``?emailId=``."""
    if recipient_id is not None:
        recipient = service.get_recipient(session, recipient_id=recipient_id)
    elif email_id:
        recipient = service.recipient_by_email(session, email_id)
    else:
        raise BadRequest("Name the recipient with ?id= or ?emailId=.", error_code="MISSING_ID")
    changes = body.fields(only_set=True)
    new_email = changes.pop("email_id", None)
    if new_email and new_email.strip().lower() != (recipient.email or ""):
        changes.setdefault("email", new_email)
    service.update_recipient(
        session, recipient_id=recipient.id, changes=changes, region=settings.sms_default_region
    )
    return {"id": str(recipient.id), "message": "Details updated successfully"}


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
        changes=body.fields(only_set=True),
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


def _batch_json(batch: UploadBatch) -> dict[str, Any]:
    return {
        "id": str(batch.id),
        "dataType": batch.data_type,
        "statusMessage": batch.status_message,
        "importedDate": date_str(batch.imported_at),
        "importedBy": batch.imported_by or "",
        "state": batch.state,
        "fileName": batch.file_name or "",
        "finishedDate": date_str(batch.finished_at),
        "total": batch.total,
        "created": batch.created,
        "updated": batch.updated,
        "failed": batch.failed,
        "ignoredColumns": batch.ignored_columns,
    }


BatchId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The upload's id.")]
Start = Annotated[int, Query(ge=0)]
PageSize = Annotated[int, Query(alias="pageSize", ge=1, le=service.MAX_PAGE_SIZE)]


@batch_router.get("/status")
def list_uploads(
    _: OperatorDep, session: SessionDep, start: Start = 0, page_size: PageSize = 20
) -> dict[str, Any]:
    """Every upload and its status, newest first."""
    total, page = uploads.list_batches(session, start=start, page_size=page_size)
    return {"total": total, "statuses": [_batch_json(b) for b in page]}


@batch_router.get("/status/{batch_id}")
def get_upload(batch_id: BatchId, _: OperatorDep, session: SessionDep) -> dict[str, Any]:
    """One upload's status."""
    return _batch_json(uploads.get_batch(session, batch_id))


@batch_router.get("/errors/{batch_id}")
def upload_errors(
    batch_id: BatchId,
    _: OperatorDep,
    session: SessionDep,
    start: Start = 0,
    page_size: PageSize = 20,
) -> dict[str, Any]:
    """The rows of an upload that were not imported, with the reason of each."""
    batch = uploads.get_batch(session, batch_id)
    return {
        "total": len(batch.errors) if batch.state == uploads.FAILED else batch.failed,
        "Errors": [
            {**e, "errorMessage": f"Line {e['row']}: {e['message']}"}
            for e in uploads.errors_page(batch, start=start, page_size=page_size)
        ],
    }
