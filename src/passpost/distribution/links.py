"""Personal download links ``/p/<token>`` (SPEC §2): serve the latest version, record the open."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from datetime import datetime

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from passpost import secrets
from passpost.config import Settings
from passpost.db import session_scope, utcnow
from passpost.deps import SessionDep, SettingsDep
from passpost.distribution import personal
from passpost.distribution.models import Delivery, DeliveryState, DistributionRequest, PassHolder
from passpost.errors import Gone, NotFound
from passpost.passes.latest import latest_version
from passpost.passes.models import PassKind, PassVersion, WalletPass
from passpost.timestamps import http_date, parse_http_date

router = APIRouter(tags=["links"])

PKPASS_TYPE = "application/vnd.apple.pkpass"
_OPENABLE = (DeliveryState.SUBMITTED, DeliveryState.DELIVERED)
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_PAGE_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:28rem;margin:4rem auto;"
    "padding:0 1rem;text-align:center} a.button{display:inline-block;padding:.8rem 1.4rem;"
    "border-radius:.6rem;background:#000;color:#fff;text-decoration:none}"
)
_STYLE_HASH = base64.b64encode(hashlib.sha256(_PAGE_STYLE.encode()).digest()).decode()
# Nothing but the page's own style: no script, no framing, no form, no other origin.
_PAGE_POLICY = (
    f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)


def _wants_page(request: Request) -> bool:
    """A desktop or Android browser gets a small page; iOS (and non-browsers) get the file."""
    if request.query_params.get("download"):
        return False
    agent = request.headers.get("user-agent", "")
    accept = request.headers.get("accept", "")
    is_ios = any(device in agent for device in ("iPhone", "iPad", "iPod"))
    return "text/html" in accept and "Mozilla" in agent and not is_ios


@router.get("/p/{token}", response_model=None)
def download(token: str, request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    """Serve the latest version of the recipient's pass and record the open."""
    holder = session.scalars(
        select(PassHolder).where(PassHolder.link_hash == secrets.token_hash(token))
    ).first()
    if holder is None:
        raise NotFound("This pass link is not valid.", error_code="LINK_NOT_FOUND")
    dist_request = session.get(DistributionRequest, holder.request_id)
    wallet_pass = session.get(WalletPass, holder.pass_id)
    if dist_request is None or wallet_pass is None or wallet_pass.latest_version_id is None:
        raise NotFound("This pass link is not valid.", error_code="LINK_NOT_FOUND")
    if dist_request.cancelled_at is not None:
        raise Gone("This pass was revoked.", error_code="PASS_REVOKED")
    opened = False
    if wallet_pass.kind == PassKind.TEMPLATE:
        wallet_pass, opened = _personal_pass(session, settings, holder, _wants_page(request))
    if wallet_pass.voided:
        raise Gone("This pass was voided.", error_code="PASS_VOIDED")
    # The same version and date the PassKit web service serves the pass's devices.
    latest = latest_version(session, pass_id=wallet_pass.id)
    version = session.get(PassVersion, latest.version_id)
    if version is None:
        raise NotFound("This pass link is not valid.", error_code="LINK_NOT_FOUND")
    if _wants_page(request):
        return _landing_page(version, f"{settings.public_base}/p/{token}?download=1")
    last_modified = latest.last_modified
    headers = {
        "ETag": f'"{version.sha256}"',
        "Last-Modified": http_date(last_modified),
        "Cache-Control": "private, no-cache",
    }
    if _not_modified(request, version.sha256, last_modified):
        return Response(status_code=304, headers=headers)
    if not opened:
        _record_open(settings.resolved_database_url, holder)
    filename = _SAFE_NAME.sub("-", wallet_pass.serial_number).strip("-") or "pass"
    headers["Content-Disposition"] = f'attachment; filename="{filename}.pkpass"'
    return Response(version.content, media_type=PKPASS_TYPE, headers=headers)


def _personal_pass(
    session: Session, settings: Settings, holder: PassHolder, page: bool
) -> tuple[WalletPass, bool]:
    """The holder's own pass, built now if this is its first download (SPEC §11).

    Built for a download (not the browser page), the open is recorded in the same
    transaction; the second value says so.
    """
    also = None if page else (lambda writer: _mark_open(writer, holder.id))
    pass_id, built_now = personal.personal_pass_id(
        session, settings=settings, holder=holder, also=also
    )
    if built_now:
        session.commit()  # built in another transaction: end this snapshot to see it
    wallet_pass = session.get(WalletPass, pass_id)
    if wallet_pass is None or wallet_pass.latest_version_id is None:
        raise NotFound("This pass link is not valid.", error_code="LINK_NOT_FOUND")
    return wallet_pass, built_now and not page


def _not_modified(request: Request, etag: str, last_modified: datetime) -> bool:
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None:
        return f'"{etag}"' in [t.strip() for t in if_none_match.split(",")]
    since = parse_http_date(request.headers.get("if-modified-since"))
    return since is not None and since >= last_modified


def _record_open(url: str, holder: PassHolder) -> None:
    # Its own short writer transaction: the request's session has only read.
    with session_scope(url) as session:
        _mark_open(session, holder.id)


def _mark_open(session: Session, holder_id: int) -> None:
    now = utcnow()
    session.execute(
        update(PassHolder)
        .where(PassHolder.id == holder_id)
        .values(
            opened_count=PassHolder.opened_count + 1,
            first_opened_at=func.coalesce(PassHolder.first_opened_at, now),
        )
    )
    session.execute(
        update(Delivery)
        .where(Delivery.holder_id == holder_id, Delivery.state.in_(_OPENABLE))
        .values(state=DeliveryState.OPENED, updated_at=now)
    )


def _landing_page(version: PassVersion, download_url: str) -> HTMLResponse:
    # The button's link comes from PASSPOST_PUBLIC_URL, never from the request's Host.
    pass_json = json.loads(version.pass_json)
    title = html.escape(str(pass_json.get("description") or "Your pass"))
    org = html.escape(str(pass_json.get("organizationName") or ""))
    link = html.escape(download_url)
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{title}</title>
<style>{_PAGE_STYLE}</style>
</head><body><h1>{title}</h1><p>{org}</p>
<p><a class="button" href="{link}">Add to Apple Wallet</a></p>
<p><small>Open this link on an iPhone to add the pass to Wallet.</small></p></body></html>"""
    return HTMLResponse(page, headers={"Content-Security-Policy": _PAGE_POLICY})
