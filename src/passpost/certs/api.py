"""Signing certificates (SPEC §5): ``/api/v1/passcerts`` and the WWDR intermediate."""

from __future__ import annotations

from typing import Annotated, Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID
from fastapi import APIRouter, File, Form, Path, Query, Request, UploadFile
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile as StarletteUploadFile

from passpost.auth.deps import OperatorDep
from passpost.certs import service
from passpost.certs.models import PassCertificate
from passpost.db import utcnow
from passpost.deps import SessionDep
from passpost.errors import BadRequest
from passpost.timestamps import date_str, iso
from passpost.uploads import read_multipart

router = APIRouter(prefix="/api/v1/passcerts", tags=["certificates"])

CertId = Annotated[int, Path(ge=1, le=2**63 - 1)]


def _cert_view(row: PassCertificate) -> dict[str, Any]:
    """A certificate as the pages show it, plus passpost's details.

    Never the key nor the passphrase: ``password`` is always "" and ``certUrl`` (the
    original's .p12 download) is "" because passpost gives no stored key out.
    """
    return {
        "id": str(row.id),
        "name": row.name,
        "certUrl": "",
        "password": "",
        "fileName": row.file_name or "",
        "identifier": row.pass_type_identifier,
        "expiryDateStr": date_str(row.not_after),
        "createdDateStr": date_str(row.created_at),
        "updatedBy": row.updated_by or row.created_by or "",
        "updatedDateStr": date_str(row.updated_at or row.created_at),
        "deleted": False,
        "certName": row.name,
        "passTypeIdentifier": row.pass_type_identifier,
        "teamIdentifier": row.team_identifier,
        "subject": row.subject,
        "issuer": row.issuer,
        "serialNumber": row.serial_hex,
        "sha256": row.sha256,
        "notBefore": iso(row.not_before),
        "notAfter": iso(row.not_after),
        "expired": service.certificate_expired(row),
        "createdBy": row.created_by or "",
        "createdAt": iso(row.created_at),
    }


async def _read(upload: StarletteUploadFile) -> bytes:
    # The whole body is capped while reading (passpost.web.body_limit); the service checks
    # the file's own size.
    return await upload.read()


@router.post("")
async def upload_certificate(
    session: SessionDep,
    principal: OperatorDep,
    pass_cert: Annotated[UploadFile, File(alias="passCert")],
    cert_name: Annotated[str, Form(alias="certName")],
    passphrase: Annotated[str, Form(alias="passCertPassPhrase")] = "",
) -> dict[str, Any]:
    """Store a .p12 Pass Type ID certificate; its pass type, team and expiry are read from it."""
    data = await _read(pass_cert)
    row = await run_in_threadpool(
        lambda: service.add_certificate(
            session,
            name=cert_name,
            p12=data,
            passphrase=passphrase,
            created_by=principal.name,
            file_name=pass_cert.filename,
        )
    )
    return {"id": str(row.id), "message": "Details added successfully", "passCert": _cert_view(row)}


@router.get("")
def list_certificates(
    session: SessionDep,
    _: OperatorDep,
    start: Annotated[int, Query(ge=0)] = 0,
    page_size: Annotated[int, Query(alias="pageSize", ge=1, le=1000)] = 10,
) -> dict[str, Any]:
    """One page of the stored signing certificates, newest first (no keys, no passphrases)."""
    total, rows = service.page_certificates(session, start=start, page_size=page_size)
    return {"total": total, "certificates": [_cert_view(r) for r in rows]}


def _attr(name: x509.Name, oid: x509.ObjectIdentifier) -> str:
    values = name.get_attributes_for_oid(oid)
    return str(values[0].value) if values else ""


def _wwdr_view(cert: x509.Certificate, source: str) -> dict[str, Any]:
    issuer, subject = cert.issuer, cert.subject
    return {
        # The pages' keys (their spellings: "orgination" is the issuer's O).
        "issuerDN": {
            "commonName": _attr(issuer, NameOID.COMMON_NAME),
            "orginationUnit": _attr(issuer, NameOID.ORGANIZATIONAL_UNIT_NAME),
            "orgination": _attr(issuer, NameOID.ORGANIZATION_NAME),
            "country": _attr(issuer, NameOID.COUNTRY_NAME),
        },
        "subjectDN": {
            "subjectCN": _attr(subject, NameOID.COMMON_NAME),
            "subjectOU": _attr(subject, NameOID.ORGANIZATIONAL_UNIT_NAME),
            "subjectUID": _attr(subject, NameOID.USER_ID),
        },
        "startDateStr": date_str(cert.not_valid_before_utc),
        "expiryDateStr": date_str(cert.not_valid_after_utc),
        "source": source,
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "serialNumber": format(cert.serial_number, "X"),
        "sha256": cert.fingerprint(hashes.SHA256()).hex(),
        "notBefore": iso(cert.not_valid_before_utc),
        "notAfter": iso(cert.not_valid_after_utc),
        "expired": cert.not_valid_after_utc <= utcnow(),
        "pem": cert.public_bytes(serialization.Encoding.PEM).decode("ascii"),
    }


@router.get("/applewwrdc")
def get_wwdr(session: SessionDep, _: OperatorDep) -> dict[str, Any]:
    """The WWDR intermediate embedded when signing (uploaded, else the bundled G4)."""
    cert, source = service.current_wwdr(session)
    return _wwdr_view(cert, source)


@router.post(
    "/applewwrdc",
    openapi_extra={
        "requestBody": {
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {"appleCert": {"type": "string", "format": "binary"}},
                    }
                }
            }
        }
    },
)
async def upload_wwdr(request: Request, session: SessionDep, principal: OperatorDep) -> Any:
    """Replace the WWDR intermediate (the first file of the multipart form, DER or PEM)."""
    parts = await read_multipart(request, limit=service.MAX_CERT_BYTES)
    upload = next((part for part in parts.values() if part.is_file), None)
    if upload is None:
        raise BadRequest("Send the WWDR certificate as a file.", error_code="MISSING_FILE")
    data = upload.data
    await run_in_threadpool(lambda: service.set_wwdr(session, data=data, created_by=principal.name))
    cert, source = await run_in_threadpool(service.current_wwdr, session)
    return {"id": "", "message": "Certificate Upload Successfully", **_wwdr_view(cert, source)}


@router.get("/{cert_id}")
def get_certificate(cert_id: CertId, session: SessionDep, _: OperatorDep) -> dict[str, Any]:
    """One stored certificate."""
    return _cert_view(service.get_certificate(session, cert_id))


@router.post("/{cert_id}")
async def modify_certificate(
    cert_id: CertId,
    session: SessionDep,
    principal: OperatorDep,
    pass_cert: Annotated[UploadFile | None, File(alias="passCert")] = None,
    cert_name: Annotated[str | None, Form(alias="certName")] = None,
    passphrase: Annotated[str, Form(alias="passCertPassPhrase")] = "",
) -> dict[str, Any]:
    """Rename a stored certificate and/or replace it with a new .p12 (Modify Pass Certificate)."""
    data = await _read(pass_cert) if pass_cert is not None else None
    row = await run_in_threadpool(
        lambda: service.modify_certificate(
            session,
            cert_id,
            name=cert_name,
            p12=data,
            passphrase=passphrase,
            updated_by=principal.name,
            file_name=pass_cert.filename if pass_cert is not None else None,
        )
    )
    return {
        "id": str(row.id),
        "message": "Details updated successfully",
        "passCert": _cert_view(row),
    }


@router.delete("/{cert_id}")
def delete_certificate(cert_id: CertId, session: SessionDep, _: OperatorDep) -> dict[str, str]:
    """Delete a stored certificate and its key."""
    service.delete_certificate(session, cert_id)
    return {"id": str(cert_id), "message": "Pass Certificate deleted successfully"}
