"""What ``validate`` returns: the pass's identity, its files and the findings about it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from passpost.pkpass.errors import PkpassError

Severity = Literal["error", "warning"]
Policy = Literal["require", "warn", "off"]


@dataclass(frozen=True)
class Finding:
    """One problem: a stable code, its severity, one clear sentence and the files involved."""

    error_code: str
    severity: Severity
    message: str
    files: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (camelCase keys, as the HTTP API spells them)."""
        return {
            "errorCode": self.error_code,
            "severity": self.severity,
            "message": self.message,
            "files": list(self.files),
        }


@dataclass(frozen=True)
class PassIdentity:
    """Who the pass says it is (taken from pass.json; values may be empty if pass.json is bad)."""

    pass_type_identifier: str
    serial_number: str
    team_identifier: str
    style: str | None
    organization_name: str
    description: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form with pass.json's own key names."""
        return {
            "passTypeIdentifier": self.pass_type_identifier,
            "serialNumber": self.serial_number,
            "teamIdentifier": self.team_identifier,
            "style": self.style,
            "organizationName": self.organization_name,
            "description": self.description,
        }


@dataclass
class Report:
    """The outcome of validating one pass; ``ok`` when no finding is an error."""

    policy: Policy
    findings: list[Finding] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)
    pass_json: dict[str, Any] | None = None
    identity: PassIdentity | None = None
    signer: x509.Certificate | None = None
    chain: tuple[x509.Certificate, ...] = ()
    signing_time: datetime | None = None

    @property
    def ok(self) -> bool:
        """True when no finding has severity "error"."""
        return not any(f.severity == "error" for f in self.findings)

    @property
    def errors(self) -> list[Finding]:
        """The findings of severity "error", in check order (the first is the main one)."""
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        """The findings of severity "warning"."""
        return [f for f in self.findings if f.severity == "warning"]

    @property
    def first_error(self) -> Finding | None:
        """The main problem (checks run archive → pass.json → manifest → signature → signer)."""
        errors = self.errors
        return errors[0] if errors else None

    def raise_for_errors(self) -> None:
        """Raise the first error as a PkpassError (for callers that want an exception)."""
        first = self.first_error
        if first is not None:
            raise PkpassError(first.error_code, first.message, files=first.files)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (file contents are summarised by size, not included)."""
        return {
            "ok": self.ok,
            "policy": self.policy,
            "identity": self.identity.to_dict() if self.identity else None,
            "findings": [f.to_dict() for f in self.findings],
            "files": {name: len(data) for name, data in sorted(self.files.items())},
            "signingTime": self.signing_time.isoformat() if self.signing_time else None,
            "signer": certificate_summary(self.signer) if self.signer else None,
            "chain": [certificate_summary(c) for c in self.chain],
        }


def certificate_summary(cert: x509.Certificate) -> dict[str, Any]:
    """The parts of a certificate a person checks: names, serial, validity, fingerprint."""
    return {
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "serialNumber": format(cert.serial_number, "X"),
        "notBefore": cert.not_valid_before_utc.isoformat(),
        "notAfter": cert.not_valid_after_utc.isoformat(),
        "sha256": cert.fingerprint(hashes.SHA256()).hex(),
    }
