"""``validate``: run every check of SPEC §7 on a .pkpass and return a Report."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509

from passpost.pkpass import chain, cms, signer
from passpost.pkpass.archive import DEFAULT_LIMITS, Limits, read_archive
from passpost.pkpass.chain import build_chain
from passpost.pkpass.cms import SignatureProblem, verify_detached
from passpost.pkpass.errors import PkpassError
from passpost.pkpass.manifest import check_manifest
from passpost.pkpass.passjson import check_icon, check_pass, identity_of, load_pass_json
from passpost.pkpass.report import Finding, Policy, Report, Severity
from passpost.pkpass.signer import signer_problems
from passpost.pkpass.trust import apple_intermediates, apple_roots

POLICIES: tuple[Policy, ...] = ("require", "warn", "off")
# A signingTime this far ahead of our clock cannot be explained by clock skew.
FUTURE_TOLERANCE = timedelta(hours=1)


def validate(
    data: bytes | Path | str,
    *,
    policy: Policy = "require",
    trust_anchors: Sequence[x509.Certificate] | None = None,
    intermediates: Sequence[x509.Certificate] | None = None,
    now: datetime | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> Report:
    """Validate a .pkpass (bytes or a path); every problem in the pass becomes a Finding.

    Raises PkpassError only for the caller's mistakes: an unreadable path or an unknown policy.
    ``trust_anchors`` defaults to the bundled Apple roots, ``intermediates`` to the bundled
    WWDR set (the signature's own certificates are always added as intermediates).
    """
    if policy not in POLICIES:
        raise PkpassError(
            "POLICY_INVALID", f"The signature policy {policy!r} is not one of {POLICIES}."
        )
    now = _utc(now or datetime.now(UTC))
    report = Report(policy=policy)
    sha1: dict[str, str] = {}

    def digest(name: str, member: bytes) -> None:
        sha1[name] = hashlib.sha1(member).hexdigest()

    try:
        files = read_archive(_read_input(data), limits, on_member=digest)
    except PkpassError as exc:
        if exc.error_code == "FILE_UNREADABLE":
            raise
        report.findings.append(Finding(exc.error_code, "error", exc.message, exc.files))
        return report
    report.files = files
    if _is_bundle(files):
        report.findings.append(
            Finding(
                "PKPASSES_NOT_SUPPORTED",
                "error",
                "This is a .pkpasses bundle of several passes; import each .pkpass on its own.",
                tuple(sorted(files)),
            )
        )
        return report
    _check_content(report, files)
    manifest = files.get("manifest.json")
    if manifest is None:
        # Under every policy: Wallet opens no pass without a manifest, signed or not.
        report.findings.append(
            Finding(
                "MANIFEST_MISSING",
                "error",
                "The pass has no manifest.json, so Wallet cannot open it.",
                ("manifest.json",),
            )
        )
        return report
    report.findings += check_manifest(files, manifest, sha1=sha1)
    if policy == "off":
        return report
    severity: Severity = "error" if policy == "require" else "warning"
    _check_signature(
        report,
        files,
        manifest,
        severity=severity,
        anchors=apple_roots() if trust_anchors is None else trust_anchors,
        intermediates=apple_intermediates() if intermediates is None else intermediates,
        now=now,
    )
    return report


def clear_caches() -> None:
    """Forget parsed certificates and chain paths (cached by DER and by identity)."""
    chain.clear_cache()
    cms.clear_cache()
    signer.clear_cache()


def _read_input(data: bytes | Path | str) -> bytes:
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data)
    try:
        return Path(data).read_bytes()
    except OSError as exc:
        raise PkpassError("FILE_UNREADABLE", f"Cannot read {data}: {exc.strerror}.") from exc


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _is_bundle(files: Mapping[str, bytes]) -> bool:
    return bool(files) and "pass.json" not in files and all(n.endswith(".pkpass") for n in files)


def _check_content(report: Report, files: Mapping[str, bytes]) -> None:
    pass_json, findings = load_pass_json(files)
    report.findings += findings
    if pass_json is not None:
        report.pass_json = pass_json
        report.identity = identity_of(pass_json)
        report.findings += check_pass(pass_json)
    report.findings += check_icon(files)


def _check_signature(
    report: Report,
    files: Mapping[str, bytes],
    manifest: bytes,
    *,
    severity: Severity,
    anchors: Sequence[x509.Certificate],
    intermediates: Sequence[x509.Certificate],
    now: datetime,
) -> None:
    def add(code: str, message: str, names: tuple[str, ...] = ("signature",)) -> None:
        report.findings.append(Finding(code, severity, message, names))

    signature = files.get("signature")
    if signature is None:
        add("SIGNATURE_MISSING", "The pass has no signature file, so it is not signed.")
        return
    try:
        verified = verify_detached(signature, manifest)
    except SignatureProblem as problem:
        add(problem.code, problem.message)
        return
    report.signer = verified.signer
    report.signing_time = verified.signing_time
    at, at_label = verified.signing_time or now, "signing time"
    if verified.signing_time is None:
        at_label = "the time of checking (the signature has no signingTime)"
    if at > now + FUTURE_TOLERANCE:
        add(
            "SIGNING_TIME_IN_FUTURE",
            f"The signature claims to be made at {at:%Y-%m-%d %H:%M} UTC, in the future.",
        )
        at, at_label = now, "the time of checking"
    chain = build_chain(
        verified.signer,
        anchors=anchors,
        intermediates=[*verified.certificates, *intermediates],
        at=at,
        at_label=at_label,
    )
    report.chain = chain.path
    if chain.problem_code and chain.problem:
        add(chain.problem_code, chain.problem)
    if report.identity is not None:
        for code, message in signer_problems(
            verified.signer,
            pass_type_identifier=report.identity.pass_type_identifier,
            team_identifier=report.identity.team_identifier,
        ):
            add(code, message)
    expiry = verified.signer.not_valid_after_utc
    if expiry < now:
        report.findings.append(
            Finding(
                "CERTIFICATE_EXPIRED",
                "warning",
                f"The signer certificate expired on {expiry:%Y-%m-%d} (it is checked at signing "
                "time); new versions of this pass need a current certificate.",
                ("signature",),
            )
        )
