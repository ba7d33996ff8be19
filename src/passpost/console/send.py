"""Console: the Send page (upload → validation report → recipients → messages → send).

The request is built by ``distribution.compose`` and created by ``distribution.submit``:
the import call's own checks and transaction.
"""

from __future__ import annotations

import io
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from passpost import pkpass
from passpost.audience import service as audience_service
from passpost.audience.csv_import import read_contacts
from passpost.channels.service import effective_sms_max_chars
from passpost.channels.templates import render_email, render_sms
from passpost.console.render import page
from passpost.console.session import ConsoleOperator, Csrf
from passpost.deps import SessionDep, SettingsDep
from passpost.distribution import compose
from passpost.distribution.personal import require_certificate
from passpost.distribution.schemas import PassContent, RecipientRef
from passpost.distribution.service import ImportResult, check_upload
from passpost.distribution.submit import commit_import, queue_import
from passpost.errors import BadRequest, PasspostError

router = APIRouter(prefix="/console", include_in_schema=False)
SOURCES = ("addresses", "csv", "audience", "audience_all")
SAMPLE_LINK = "https://passes.example.com/p/PERSONAL-LINK"


def _defaults() -> dict[str, str]:
    return {
        "email_subject": compose.DEFAULT_SUBJECT,
        "email_body": compose.DEFAULT_EMAIL_BODY,
        "sms_text": compose.DEFAULT_SMS,
        "source": "addresses",
    }


@router.get("/send")
def send_page(request: Request, operator: ConsoleOperator) -> HTMLResponse:
    return page(request, "send.html", operator=operator, section="Send", form=_defaults())


@router.post("/send/check", dependencies=[Csrf])
async def check(
    request: Request,
    operator: ConsoleOperator,
    session: SessionDep,
    settings: SettingsDep,
    pkpass_file: UploadFile,
) -> HTMLResponse:
    """The validation report of the chosen file, as the import checks it.

    A shared pass: ``passpost inspect``'s report. A template (SPEC §11): the report of a
    copy filled with sample values (it may be unsigned), and whether a stored certificate
    can sign its passes, as the import call requires.
    """
    data = await pkpass_file.read(settings.max_upload_bytes + 1)
    context: dict[str, Any] = {"filename": pkpass_file.filename}

    def inspect() -> None:
        template, report = check_upload(data, content=PassContent(), settings=settings)
        context["report"] = report.to_dict()
        if template is not None:
            context["template"] = sorted(template.names)
            try:
                require_certificate(session, template)
            except PasspostError as exc:
                context["refusal"] = f"{exc.message} ({exc.error_code})"

    if len(data) > settings.max_upload_bytes:
        context["fatal"] = f"The file is larger than {settings.max_upload_bytes} bytes."
    else:
        try:
            await run_in_threadpool(inspect)
        except (pkpass.PkpassError, PasspostError) as exc:
            context["fatal"] = f"{exc.message} ({exc.error_code})"
    return page(request, "_send_report.html", operator=operator, **context)


@router.get("/send/audience")
def audience_choices(
    request: Request,
    operator: ConsoleOperator,
    session: SessionDep,
    q: Annotated[str, Query(max_length=200)] = "",
) -> HTMLResponse:
    """Audience search results as checkboxes for the Send form."""
    total, found = (
        audience_service.search_recipients(session, query=q, start=0, page_size=20)
        if q.strip()
        else (0, [])
    )
    return page(request, "_send_audience.html", operator=operator, found=found, total=total, q=q)


def _sample_fields(session: SessionDep, addresses: str, audience_ids: list[str]) -> dict[str, Any]:
    first = next((line.strip() for line in addresses.splitlines() if line.strip()), None)
    if first:
        key = "email" if "@" in first else "mobile_number"
        return {key: first}
    if audience_ids and audience_ids[0].isascii() and audience_ids[0].isdigit():
        found = audience_service.get_recipients(session, [int(audience_ids[0])])
        recipient = next(iter(found.values()), None)
        if recipient is not None:
            return {
                "first_name": recipient.first_name,
                "last_name": recipient.last_name,
                "email": recipient.email,
                "mobile_number": recipient.mobile_number,
            }
    return {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"}


@router.post("/send/preview", dependencies=[Csrf])
def preview(
    request: Request,
    operator: ConsoleOperator,
    session: SessionDep,
    settings: SettingsDep,
    email_subject: Annotated[str, Form(max_length=500)] = "",
    email_body: Annotated[str, Form(max_length=100_000)] = "",
    sms_text: Annotated[str, Form(max_length=2000)] = "",
    addresses: Annotated[str, Form(max_length=1_000_000)] = "",
    audience_id: Annotated[list[str] | None, Form()] = None,
) -> HTMLResponse:
    """Both messages rendered for one recipient, with a sample personal link."""
    fields = _sample_fields(session, addresses, audience_id or [])
    subject, _html, text = render_email(email_subject, email_body, SAMPLE_LINK, fields)
    sms = render_sms(sms_text, SAMPLE_LINK, fields, effective_sms_max_chars(session, settings))
    return page(
        request,
        "_send_preview.html",
        operator=operator,
        fields=fields,
        subject=subject,
        html=_html,
        text=text,
        sms=sms,
    )


def _recipients(
    session: SessionDep,
    *,
    source: str,
    addresses: str,
    csv_data: bytes,
    audience_ids: list[str],
    region: str,
) -> tuple[list[RecipientRef], list[str]]:
    """The recipients chosen, and the problems of the lines or rows left out."""
    problems: list[str] = []
    refs: list[RecipientRef] = []
    if source == "addresses":
        for number, line in enumerate(addresses.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                refs.append(compose.address_ref(line.strip(), region=region))
            except PasspostError as exc:
                problems.append(f"Line {number}: {exc.message}")
    elif source == "csv":
        rows, report = read_contacts(io.BytesIO(csv_data), region=region)
        refs = [compose.contact_ref(fields) for fields in rows]
        problems = [f"Row {e.row}: {e.message} ({e.error_code})" for e in report.errors]
    elif source == "audience":
        refs = [
            RecipientRef(id=value) for value in audience_ids if value.isascii() and value.isdigit()
        ]
    elif source == "audience_all":
        refs = compose.audience_refs(session)
    else:
        raise BadRequest("Choose where the recipients come from.", error_code="NO_RECIPIENTS")
    return refs, problems


@router.post("/send", dependencies=[Csrf])
async def send(
    request: Request,
    operator: ConsoleOperator,
    session: SessionDep,
    settings: SettingsDep,
    pkpass_file: Annotated[UploadFile, File()],
    source: Annotated[str, Form(max_length=20)] = "addresses",
    addresses: Annotated[str, Form(max_length=1_000_000)] = "",
    csv_file: Annotated[UploadFile | None, File()] = None,
    audience_id: Annotated[list[str] | None, Form()] = None,
    use_email: Annotated[bool, Form()] = False,
    use_sms: Annotated[bool, Form()] = False,
    email_subject: Annotated[str, Form(max_length=500)] = "",
    email_body: Annotated[str, Form(max_length=100_000)] = "",
    sms_text: Annotated[str, Form(max_length=2000)] = "",
    priority: Annotated[bool, Form()] = False,
) -> Response:
    """Create the request, then show it."""
    form = {
        "source": source,
        "addresses": addresses,
        "email_subject": email_subject,
        "email_body": email_body,
        "sms_text": sms_text,
        "use_email": use_email,
        "use_sms": use_sms,
    }
    upload = await pkpass_file.read(settings.max_upload_bytes + 1)
    csv_data = await csv_file.read(settings.max_upload_bytes + 1) if csv_file else b""
    messages = compose.Messages(
        email_subject=email_subject if use_email else None,
        email_body=email_body if use_email else None,
        sms_text=sms_text if use_sms else None,
    )

    def create() -> tuple[ImportResult, int, list[str]]:
        refs, problems = _recipients(
            session,
            source=source,
            addresses=addresses,
            csv_data=csv_data,
            audience_ids=audience_id or [],
            region=settings.sms_default_region,
        )
        if problems and source == "addresses":
            raise BadRequest("; ".join(problems[:5]), error_code="INVALID_RECIPIENT")
        content = compose.compose(refs, messages, priority=priority)
        session.commit()  # the operator check's transaction; the import begins its own
        result = commit_import(
            session, settings=settings, upload=upload, content=content, created_by=operator.name
        )
        return result, len(refs), problems

    try:
        result, count, problems = await run_in_threadpool(create)
    except PasspostError as exc:
        return page(
            request,
            "send.html",
            operator=operator,
            section="Send",
            form=form,
            error=f"Nothing was sent: {exc.message} ({exc.error_code})",
            status_code=exc.status_code,
        )
    queue_import(result, priority=priority, start_at=None)
    skipped = f" {len(problems)} CSV row(s) skipped: {'; '.join(problems[:3])}" if problems else ""
    notice = urlencode({"notice": f"Request queued for {count} recipient(s).{skipped}"})
    return RedirectResponse(f"/console/requests/{result.request_id}?{notice}", status_code=303)
