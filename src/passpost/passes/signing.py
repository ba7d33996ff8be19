"""Make the version to serve: re-sign an upload with passpost's web service and token.

The signing material comes from the caller (``passpost.certs`` stores it), so this module
needs no database.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from passpost import pkpass, secrets
from passpost.config import Settings
from passpost.errors import BadRequest

TOKEN_BYTES = 32  # token_urlsafe(32) → 43 characters


@dataclass(frozen=True)
class SigningMaterial:
    """A certificate with its key and the intermediates to embed when signing."""

    certificate: x509.Certificate
    private_key: PrivateKeyTypes
    intermediates: tuple[x509.Certificate, ...]


@dataclass(frozen=True)
class PreparedPass:
    """What the import stores: the bytes to serve, their pass.json, token and updatability."""

    content: bytes
    pass_json: dict[str, Any]
    authentication_token: str | None
    updatable: bool


def web_service_url(settings: Settings) -> str:
    """The ``webServiceURL`` that makes a device talk to this passpost."""
    return settings.public_base + "/api"


def prepare_pass(
    *,
    content: bytes,
    report: pkpass.Report,
    signing: SigningMaterial | None,
    existing_token: str | None,
    settings: Settings,
) -> PreparedPass:
    """Re-sign the upload with passpost's web service and token when ``signing`` is given.

    Otherwise the upload is kept byte for byte, and it is updatable only if it already
    points at passpost's web service with a token. ``existing_token`` is the pass's token
    when it has earlier versions.
    """
    pass_json = dict(report.pass_json or {})
    if report.identity is None:
        raise BadRequest("The pass has no identity.", error_code="INVALID_PASS")
    uploaded_token = pass_json.get("authenticationToken")
    uploaded_token = uploaded_token if isinstance(uploaded_token, str) and uploaded_token else None
    if signing is None:
        url = pass_json.get("webServiceURL")
        points_here = isinstance(url, str) and url.rstrip("/") == web_service_url(settings)
        updatable = points_here and uploaded_token is not None
        return PreparedPass(content, pass_json, uploaded_token, updatable)
    # Devices keep authenticating with the token of the version they hold: never change it.
    token = existing_token or secrets.new_token(TOKEN_BYTES)
    pass_json["webServiceURL"] = web_service_url(settings)
    pass_json["authenticationToken"] = token
    files = {
        name: data
        for name, data in report.files.items()
        if name not in ("manifest.json", "signature")
    }
    files["pass.json"] = json.dumps(pass_json, ensure_ascii=False, indent=2).encode("utf-8")
    signed = pkpass.sign(
        files,
        certificate=signing.certificate,
        private_key=signing.private_key,
        intermediates=signing.intermediates,
    )
    return PreparedPass(signed, pass_json, token, True)
