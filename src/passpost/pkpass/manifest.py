"""manifest.json: every file but itself and ``signature``, with its SHA-1 (or SHA-256) hex."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

from passpost.pkpass.report import Finding

UNSIGNED_NAMES = ("manifest.json", "signature")
_HEX = frozenset("0123456789abcdefABCDEF")
_HASH_BY_LENGTH = {40: hashlib.sha1, 64: hashlib.sha256}


def build_manifest(files: Mapping[str, bytes], *, digest: str = "sha1") -> bytes:
    """The manifest.json bytes for ``files`` (any manifest.json/signature in it left out)."""
    entries = {
        name: hashlib.new(digest, data).hexdigest()
        for name, data in sorted(files.items())
        if name not in UNSIGNED_NAMES
    }
    return json.dumps(entries, indent=2, sort_keys=True).encode("utf-8")


def parse_manifest(raw: bytes) -> dict[str, str] | None:
    """The name -> lowercase hex map, or None when manifest.json is not such a JSON object."""
    try:
        value = json.loads(raw.removeprefix(b"\xef\xbb\xbf").decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(value, dict):
        return None
    entries: dict[str, str] = {}
    for name, digest in value.items():
        if not isinstance(digest, str) or len(digest) not in _HASH_BY_LENGTH:
            return None
        if not _HEX.issuperset(digest):
            return None
        entries[name] = digest.lower()
    return entries


def check_manifest(
    files: Mapping[str, bytes], raw: bytes, *, sha1: Mapping[str, str] | None = None
) -> list[Finding]:
    """Missing, mismatching and unlisted files, each kind as one finding naming the files.

    ``sha1`` may hold members' SHA-1 hex digests computed earlier (see read_archive).
    """
    known = sha1 or {}
    entries = parse_manifest(raw)
    if entries is None:
        return [
            Finding(
                "MANIFEST_INVALID",
                "error",
                "manifest.json must be a JSON object mapping each file name to its SHA-1 "
                "(or SHA-256) hex digest.",
                ("manifest.json",),
            )
        ]
    missing, mismatched = [], []
    for name, expected in entries.items():
        if name in UNSIGNED_NAMES:
            continue
        data = files.get(name)
        if data is None:
            missing.append(name)
        elif len(expected) == 40 and name in known:
            if known[name] != expected:
                mismatched.append(name)
        elif _HASH_BY_LENGTH[len(expected)](data).hexdigest() != expected:
            mismatched.append(name)
    unlisted = sorted(name for name in files if name not in entries and name not in UNSIGNED_NAMES)
    findings = []
    if mismatched:
        findings.append(
            Finding(
                "MANIFEST_DIGEST_MISMATCH",
                "error",
                f"The content of {_names(mismatched)} does not match its digest in manifest.json "
                "(changed after signing).",
                tuple(sorted(mismatched)),
            )
        )
    if missing:
        findings.append(
            Finding(
                "MANIFEST_FILE_MISSING",
                "error",
                f"manifest.json lists {_names(missing)}, but the archive does not contain it.",
                tuple(sorted(missing)),
            )
        )
    if unlisted:
        findings.append(
            Finding(
                "MANIFEST_UNLISTED_FILE",
                "error",
                f"The archive contains {_names(unlisted)}, not listed in manifest.json; "
                "Wallet refuses such a pass.",
                tuple(unlisted),
            )
        )
    return findings


def _names(names: list[str]) -> str:
    shown = ", ".join(sorted(names)[:10])
    return f"{shown} and {len(names) - 10} more" if len(names) > 10 else shown
