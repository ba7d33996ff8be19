"""Console: Audience, Passes, Certificates, Channels, Operators and API keys."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from passpost.audience import service as audience_service
from passpost.audience import uploads
from passpost.audience.tasks import queue_upload
from passpost.auth import service as auth_service
from passpost.certs import service as certs_service
from passpost.channels import service as channels_service
from passpost.channels.base import ChannelError, EmailMessage, SmsMessage
from passpost.channels.schemas import MailConfigIn, SmsConfigIn
from passpost.console.render import page
from passpost.console.session import ConsoleOperator, Csrf
from passpost.db import utcnow
from passpost.deps import SessionDep, SettingsDep
from passpost.distribution import changes, jobs
from passpost.distribution.runtime import get_runtime
from passpost.errors import BadRequest, PasspostError
from passpost.passkit import overview

router = APIRouter(prefix="/console", include_in_schema=False)
PAGE_SIZE = 25
UPLOADS_SHOWN = 5
ROW_ERRORS_SHOWN = 20
EXPIRY_WARNING = timedelta(days=30)
Notice = Annotated[str | None, Query(max_length=300)]
Text = Annotated[str, Form(max_length=320)]


def _back(path: str, notice: str) -> RedirectResponse:
    return RedirectResponse(f"{path}?{urlencode({'notice': notice})}", status_code=303)


def _attempt(
    session: SessionDep,
    action: Callable[[], str],
    path: str,
    render: Callable[..., HTMLResponse],
    *args: Any,
    **context: Any,
) -> Response:
    """Run a change; its notice on success, else nothing kept and the page with the error:
    ``render(*args, error=..., status_code=..., **context)``."""
    try:
        return _back(path, action())
    except PasspostError as exc:
        session.rollback()
        error = f"{exc.message} ({exc.error_code})"
        return render(*args, error=error, status_code=exc.status_code, **context)


# -- audience ---------------------------------------------------------------------------------


def _audience_page(
    request: Request,
    operator: ConsoleOperator,
    session: SessionDep,
    *,
    q: str = "",
    start: int = 0,
    **extra: Any,
) -> HTMLResponse:
    if q.strip():
        total, people = audience_service.search_recipients(
            session, query=q, start=start, page_size=PAGE_SIZE
        )
    else:
        total, people = audience_service.list_recipients(session, start=start, page_size=PAGE_SIZE)
    base = {"q": q}
    return page(
        request,
        "audience.html",
        uploads=_recent_uploads(session),
        operator=operator,
        section="Audience",
        people=people,
        total=total,
        q=q,
        prev_url=f"?{urlencode({**base, 'start': max(0, start - PAGE_SIZE)})}" if start else None,
        next_url=f"?{urlencode({**base, 'start': start + PAGE_SIZE})}"
        if start + PAGE_SIZE < total
        else None,
        **extra,
    )


@router.get("/audience")
def audience(
    request: Request,
    operator: ConsoleOperator,
    session: SessionDep,
    q: Annotated[str, Query(max_length=200)] = "",
    start: Annotated[int, Query(ge=0)] = 0,
    notice: Notice = None,
) -> HTMLResponse:
    """Search, page through, add, edit, delete and import recipients."""
    return _audience_page(request, operator, session, q=q, start=start, notice=notice)


def _fields(first_name: str, last_name: str, email: str, mobile_number: str) -> dict[str, str]:
    return {
        "first_name": first_name,
        "last_name": last_name,
        "email": email,
        "mobile_number": mobile_number,
    }


@router.post("/audience", dependencies=[Csrf])
def audience_add(
    request: Request,
    operator: ConsoleOperator,
    session: SessionDep,
    first_name: Text = "",
    last_name: Text = "",
    email: Text = "",
    mobile_number: Text = "",
) -> Response:
    fields = _fields(first_name, last_name, email, mobile_number)

    def add() -> str:
        recipient = audience_service.create_recipient(session, fields=fields)
        return f"Recipient {recipient.id} added."

    return _attempt(
        session,
        add,
        "/console/audience",
        _audience_page,
        request,
        operator,
        session,
        added=fields,
    )


@router.get("/audience/{recipient_id:int}")
def audience_edit_form(
    request: Request, recipient_id: int, operator: ConsoleOperator, session: SessionDep
) -> HTMLResponse:
    recipient = audience_service.get_recipient(session, recipient_id=recipient_id)
    return page(
        request, "audience_edit.html", operator=operator, section="Audience", person=recipient
    )


@router.post("/audience/{recipient_id:int}", dependencies=[Csrf])
def audience_save(
    request: Request,
    recipient_id: int,
    operator: ConsoleOperator,
    session: SessionDep,
    first_name: Text = "",
    last_name: Text = "",
    email: Text = "",
    mobile_number: Text = "",
    email_subscription: Annotated[bool, Form()] = False,
    sms_subscription: Annotated[bool, Form()] = False,
) -> Response:
    changes: dict[str, Any] = _fields(first_name, last_name, email, mobile_number)
    changes |= {"email_subscription": email_subscription, "sms_subscription": sms_subscription}

    def save() -> str:
        audience_service.update_recipient(session, recipient_id=recipient_id, changes=changes)
        return f"Recipient {recipient_id} saved."

    def again(**outcome: Any) -> HTMLResponse:
        person = audience_service.get_recipient(session, recipient_id=recipient_id)
        return page(
            request,
            "audience_edit.html",
            operator=operator,
            section="Audience",
            person=person,
            **outcome,
        )

    return _attempt(session, save, "/console/audience", again)


@router.post("/audience/{recipient_id:int}/delete", dependencies=[Csrf])
def audience_delete(recipient_id: int, operator: ConsoleOperator, session: SessionDep) -> Response:
    audience_service.delete_recipient(session, recipient_id=recipient_id)
    return _back("/console/audience", f"Recipient {recipient_id} deleted.")


@router.post("/audience/import", dependencies=[Csrf])
async def audience_import(
    request: Request,
    operator: ConsoleOperator,
    session: SessionDep,
    settings: SettingsDep,
    file: Annotated[UploadFile, File()],
) -> Response:
    """The API's import (``POST /api/v1/audience/import``): the file is stored as a queued
    upload and a worker imports it; the page follows it with its per-row errors."""
    data = await file.read(settings.max_upload_bytes + 1)

    def store() -> str:
        if len(data) > settings.max_upload_bytes:
            raise BadRequest(
                f"The file is larger than {settings.max_upload_bytes} bytes.",
                error_code="FILE_TOO_LARGE",
            )
        batch = uploads.create_batch(
            session, data=data, file_name=file.filename, imported_by=operator.name
        )
        session.commit()  # before the task is queued
        queue_upload(batch.id)
        return f"Upload {batch.id} queued: {batch.status_message}."

    return await run_in_threadpool(
        _attempt, session, store, "/console/audience", _audience_page, request, operator, session
    )


@router.get("/audience/uploads")
def audience_uploads(
    request: Request, operator: ConsoleOperator, session: SessionDep
) -> HTMLResponse:
    """The recent uploads alone: what the Audience page polls while one is queued."""
    return page(
        request, "_audience_uploads.html", operator=operator, uploads=_recent_uploads(session)
    )


def _recent_uploads(session: SessionDep) -> list[dict[str, Any]]:
    """The latest uploads (the API's ``/api/v1/batchinfo``) with their first row errors."""
    _, batches = uploads.list_batches(session, start=0, page_size=UPLOADS_SHOWN)
    return [
        {"batch": b, "errors": uploads.errors_page(b, start=0, page_size=ROW_ERRORS_SHOWN)}
        for b in batches
    ]


# -- passes -------------------------------------------------------------------------------------


@router.get("/passes")
def passes(
    request: Request,
    operator: ConsoleOperator,
    session: SessionDep,
    start: Annotated[int, Query(ge=0)] = 0,
) -> HTMLResponse:
    """Passes with their versions and registered devices."""
    total, rows = overview.list_passes(session, start=start, page_size=PAGE_SIZE)
    return page(
        request,
        "passes.html",
        operator=operator,
        section="Passes",
        rows=rows,
        total=total,
        prev_url=f"?start={max(0, start - PAGE_SIZE)}" if start else None,
        next_url=f"?start={start + PAGE_SIZE}" if start + PAGE_SIZE < total else None,
    )


@router.get("/passes/{pass_id:int}")
def pass_detail(
    request: Request,
    pass_id: int,
    operator: ConsoleOperator,
    session: SessionDep,
    notice: Notice = None,
) -> HTMLResponse:
    """Versions, devices; change fields, void."""
    return _pass_page(request, pass_id, operator, session, notice=notice)


def _change(session: SessionDep, settings: SettingsDep, who: str, pass_id: int, **kind: Any) -> str:
    """``jobs.apply_change`` (SPEC §13), the API's own: commit, push, notify."""
    applied = jobs.apply_change(session, settings=settings, pass_id=pass_id, created_by=who, **kind)
    told = f"; holders are notified (request {applied.request_id})" if applied.request_id else ""
    return f"Version {applied.version} made and pushed to the registered devices{told}."


def _pass_page(
    request: Request, pass_id: int, operator: ConsoleOperator, session: SessionDep, **extra: Any
) -> HTMLResponse:
    wallet_pass = overview.get_pass(session, pass_id)
    return page(
        request,
        "pass.html",
        operator=operator,
        section="Passes",
        wallet_pass=wallet_pass,
        versions=overview.pass_versions(session, pass_id),
        devices=overview.pass_devices(session, pass_id),
        **extra,
    )


@router.post("/passes/{pass_id:int}/fields", dependencies=[Csrf])
def pass_fields(
    request: Request,
    pass_id: int,
    operator: ConsoleOperator,
    session: SessionDep,
    settings: SettingsDep,
    fields: Annotated[str, Form(max_length=20_000)],
    change_message: Annotated[str, Form(max_length=500)] = "",
    notify: Annotated[bool, Form()] = False,
) -> Response:
    """Change field values by key (``key = value`` per line): a new, re-signed version."""

    def apply() -> str:
        values = {
            key.strip(): value.strip()
            for key, sep, value in (line.partition("=") for line in fields.splitlines())
            if sep and key.strip()
        }
        change = changes.parse_change(
            json.dumps(
                {"fields": values, "changeMessage": change_message or None, "notify": notify}
            ).encode()
        )
        return _change(session, settings, operator.name, pass_id, change=change)

    return _attempt(
        session,
        apply,
        f"/console/passes/{pass_id}",
        _pass_page,
        request,
        pass_id,
        operator,
        session,
    )


@router.post("/passes/{pass_id:int}/void", dependencies=[Csrf])
def pass_void(
    request: Request,
    pass_id: int,
    operator: ConsoleOperator,
    session: SessionDep,
    settings: SettingsDep,
) -> Response:
    """Void the pass: a new version with ``voided: true``, pushed to the devices."""
    return _attempt(
        session,
        lambda: _change(session, settings, operator.name, pass_id, void=True),
        f"/console/passes/{pass_id}",
        _pass_page,
        request,
        pass_id,
        operator,
        session,
    )


# -- certificates --------------------------------------------------------------------------------


def _certificates_page(
    request: Request, operator: ConsoleOperator, session: SessionDep, **extra: Any
) -> HTMLResponse:
    now = utcnow()
    rows = [
        {
            "row": row,
            "expired": row.not_after <= now,
            "expiring": now < row.not_after <= now + EXPIRY_WARNING,
            "days_left": (row.not_after - now).days,
        }
        for row in certs_service.list_certificates(session)
    ]
    return page(
        request, "certificates.html", operator=operator, section="Certificates", rows=rows, **extra
    )


@router.get("/certificates")
def certificates(
    request: Request, operator: ConsoleOperator, session: SessionDep, notice: Notice = None
) -> HTMLResponse:
    """Signing certificates with expiry warnings; upload a .p12."""
    return _certificates_page(request, operator, session, notice=notice)


@router.post("/certificates", dependencies=[Csrf])
async def certificate_upload(
    request: Request,
    operator: ConsoleOperator,
    session: SessionDep,
    p12: Annotated[UploadFile, File()],
    name: Annotated[str, Form(max_length=200)],
    passphrase: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    data = await p12.read(1024 * 1024 + 1)

    def add() -> str:
        if len(data) > 1024 * 1024:
            raise BadRequest("A .p12 file is at most 1 MiB.", error_code="INVALID_P12")
        row = certs_service.add_certificate(
            session, name=name, p12=data, passphrase=passphrase, created_by=operator.name
        )
        return f"Certificate {row.name} for {row.pass_type_identifier} stored."

    return await run_in_threadpool(
        _attempt,
        session,
        add,
        "/console/certificates",
        _certificates_page,
        request,
        operator,
        session,
    )


@router.post("/certificates/{cert_id:int}/delete", dependencies=[Csrf])
def certificate_delete(cert_id: int, operator: ConsoleOperator, session: SessionDep) -> Response:
    certs_service.delete_certificate(session, cert_id)
    return _back("/console/certificates", "Certificate deleted.")


# -- channels ---------------------------------------------------------------------------------


def _channels_page(
    request: Request,
    operator: ConsoleOperator,
    session: SessionDep,
    settings: SettingsDep,
    **extra: Any,
) -> HTMLResponse:
    return page(
        request,
        "channels.html",
        operator=operator,
        section="Channels",
        mail=channels_service.mail_config_view(session, settings),
        sms=channels_service.sms_config_view(session, settings),
        **extra,
    )


@router.get("/channels")
def channels(
    request: Request,
    operator: ConsoleOperator,
    session: SessionDep,
    settings: SettingsDep,
    notice: Notice = None,
) -> HTMLResponse:
    """The e-mail and SMS settings in force; change them; send a test message."""
    return _channels_page(request, operator, session, settings, notice=notice)


@router.post("/channels/mail", dependencies=[Csrf])
def save_mail(
    request: Request,
    operator: ConsoleOperator,
    session: SessionDep,
    settings: SettingsDep,
    host: Annotated[str, Form(max_length=255)],
    port: Annotated[int, Form()],
    default_sender: Text,
    security_mode: Annotated[str, Form(max_length=20)] = "",
    auth_user: Text = "",
    auth_password: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    def save() -> str:
        try:
            data = MailConfigIn(
                host=host,
                port=port,
                defaultSenderId=default_sender,
                securityMode=security_mode,
                authRequired=bool(auth_user),
                authUser=auth_user or None,
                authPwd=auth_password or None,
            )
        except ValidationError as exc:
            raise BadRequest(str(exc.errors()[0]["msg"]), error_code="INVALID_MAIL_CONFIG") from exc
        channels_service.save_mail_config(session, data=data, updated_by=operator.name)
        return "E-mail settings saved."

    return _attempt(
        session,
        save,
        "/console/channels",
        _channels_page,
        request,
        operator,
        session,
        settings,
    )


@router.post("/channels/sms", dependencies=[Csrf])
def save_sms(
    request: Request,
    operator: ConsoleOperator,
    session: SessionDep,
    settings: SettingsDep,
    provider: Annotated[str, Form(max_length=40)],
    properties: Annotated[str, Form(max_length=10_000)] = "",
) -> Response:
    """``properties``: one ``key = value`` per line, as ``/api/v1/smsconfig`` takes them."""

    def save() -> str:
        items = [
            {"key": key.strip(), "value": value.strip()}
            for key, sep, value in (line.partition("=") for line in properties.splitlines())
            if sep and key.strip()
        ]
        try:
            data = SmsConfigIn(provider=provider, properties=items)  # type: ignore[arg-type]
        except ValidationError as exc:
            raise BadRequest(str(exc.errors()[0]["msg"]), error_code="INVALID_SMS_CONFIG") from exc
        channels_service.save_sms_config(
            session, data=data, data_dir=settings.data_dir, updated_by=operator.name
        )
        return "SMS settings saved."

    return _attempt(
        session,
        save,
        "/console/channels",
        _channels_page,
        request,
        operator,
        session,
        settings,
    )


def _send_test(session: SessionDep, settings: SettingsDep, channel: str, to: str) -> str:
    runtime = get_runtime()
    key = f"test-{uuid.uuid4().hex}"
    if channel == "EMAIL":
        sender = runtime.email(channels_service.effective_smtp_config(session, settings))
        if sender is None:
            raise BadRequest("E-mail is not configured.", error_code="CHANNEL_NOT_CONFIGURED")
        text = "This is a test message from the passpost console."
        message = EmailMessage(
            key=key, to=to, subject="passpost test message", html=text, text=text
        )
        result = runtime.run(sender.send(message), timeout=60)
    else:
        provider = runtime.sms(channels_service.effective_sms_url(session, settings))
        if provider is None:
            raise BadRequest("SMS is not configured.", error_code="CHANNEL_NOT_CONFIGURED")
        sms = SmsMessage(key=key, to=to, text="passpost test message")
        result = runtime.run(provider.send(sms), timeout=60)
    return f"Test {channel.lower()} to {to} handed to the server {result.provider_message_id or ''}"


@router.post("/channels/test", dependencies=[Csrf])
def channel_test(
    request: Request,
    operator: ConsoleOperator,
    session: SessionDep,
    settings: SettingsDep,
    channel: Annotated[str, Form(max_length=5)],
    to: Text,
) -> Response:
    """Send one message now through the channel in force (nothing goes in the ledger)."""
    from passpost.audience.validation import normalize_email, normalize_mobile

    def send() -> str:
        if channel not in ("EMAIL", "SMS"):
            raise BadRequest("Channel must be EMAIL or SMS.", error_code="UNKNOWN_CHANNEL")
        address = (
            normalize_email(to)
            if channel == "EMAIL"
            else normalize_mobile(to, settings.sms_default_region)
        )
        try:
            return _send_test(session, settings, channel, address).strip() + "."
        except ChannelError as exc:
            raise BadRequest(
                f"The {channel} server refused the test: {exc.reason}", error_code="TEST_FAILED"
            ) from exc

    return _attempt(
        session,
        send,
        "/console/channels",
        _channels_page,
        request,
        operator,
        session,
        settings,
    )


# -- operators and API keys ---------------------------------------------------------------------


def _operators_page(
    request: Request, operator: ConsoleOperator, session: SessionDep, **extra: Any
) -> HTMLResponse:
    return page(
        request,
        "operators.html",
        operator=operator,
        section="Operators",
        operators=auth_service.list_operators(session),
        keys=auth_service.list_api_keys(session),
        **extra,
    )


@router.get("/operators")
def operators(
    request: Request, operator: ConsoleOperator, session: SessionDep, notice: Notice = None
) -> HTMLResponse:
    """Operators and API keys."""
    return _operators_page(request, operator, session, notice=notice)


@router.post("/operators", dependencies=[Csrf])
def operator_create(
    request: Request,
    operator: ConsoleOperator,
    session: SessionDep,
    username: Annotated[str, Form(max_length=150)],
    password: Annotated[str, Form(max_length=1024)],
) -> Response:
    def create() -> str:
        auth_service.create_operator(session, username=username, password=password)
        return f"Operator {username} created."

    return _attempt(
        session, create, "/console/operators", _operators_page, request, operator, session
    )


@router.post("/apikeys", dependencies=[Csrf])
def apikey_create(
    request: Request,
    operator: ConsoleOperator,
    session: SessionDep,
    name: Annotated[str, Form(max_length=150)],
) -> HTMLResponse:
    """Create a key and show it once (only its SHA-256 is kept)."""
    try:
        _row, key = auth_service.create_api_key(session, name=name)
    except PasspostError as exc:
        session.rollback()
        return _operators_page(
            request, operator, session, error=exc.message, status_code=exc.status_code
        )
    session.commit()
    return _operators_page(request, operator, session, new_key=key, new_key_name=name)


@router.post("/apikeys/{name}/revoke", dependencies=[Csrf])
def apikey_revoke(name: str, operator: ConsoleOperator, session: SessionDep) -> Response:
    auth_service.revoke_api_key(session, name=name)
    return _back("/console/operators", f"API key {name} revoked.")
