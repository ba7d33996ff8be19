"""ZIP safety bounds: each rule has one failing archive and the exact errorCode."""

from __future__ import annotations

import io
import tracemalloc
import warnings
import zipfile

import pytest

from passpost.pkpass import Limits, PkpassError, read_archive, validate
from tests.pkpass.pki import NOW, make_pki, pass_files, rezip, signed, unzip


@pytest.fixture(scope="module")
def pki():
    return make_pki()


@pytest.fixture(scope="module")
def good(pki) -> bytes:
    return signed(pki)


def first_code(data: bytes, pki, **options) -> str | None:
    report = validate(data, trust_anchors=pki.anchors, now=NOW, **options)
    assert report.errors == report.findings[: len(report.errors)] or report.errors
    return report.first_error.error_code if report.first_error else None


def only_finding(data: bytes, **options) -> str:
    report = validate(data, now=NOW, **options)
    assert len(report.findings) == 1, report.findings
    assert report.identity is None and report.files == {}
    return report.findings[0].error_code


def with_flag(data: bytes, flag: int) -> bytes:
    """Set a general-purpose flag bit on every local and central header."""
    raw = bytearray(data)
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        pos = raw.find(signature)
        while pos >= 0:
            raw[pos + offset] |= flag
            pos = raw.find(signature, pos + 4)
    return bytes(raw)


def test_valid_pass_reads(good, pki):
    assert first_code(good, pki) is None
    assert set(read_archive(good)) == {"pass.json", "icon.png", "manifest.json", "signature"}


@pytest.mark.parametrize(
    "data", [b"", b"fail\n", b"PK\x03\x04 truncated", b"%PDF-1.4" + b"\0" * 100]
)
def test_not_a_zip(data):
    assert only_finding(data) == "NOT_A_ZIP"


def test_too_large(good):
    assert only_finding(good, limits=Limits(max_archive_bytes=len(good) - 1)) == "ZIP_TOO_LARGE"


def test_too_many_members():
    data = rezip({f"f{i}.txt": b"x" for i in range(501)}, compression=zipfile.ZIP_STORED)
    assert only_finding(data) == "ZIP_TOO_MANY_MEMBERS"
    relaxed = validate(data, now=NOW, limits=Limits(max_members=1000))
    assert relaxed.first_error is not None
    assert relaxed.first_error.error_code == "PASS_JSON_MISSING"


def test_member_too_large(pki):
    data = signed(pki, pass_files(**{"strip.png": b"\x89PNG" + bytes(range(256)) * 40}))
    assert only_finding(data, limits=Limits(max_member_bytes=10_000)) == "ZIP_MEMBER_TOO_LARGE"


def test_bomb_by_ratio(pki):
    data = signed(pki, pass_files(**{"strip.png": bytes(3 * 1024 * 1024)}))
    assert len(data) < 30_000
    assert only_finding(data) == "ZIP_BOMB"


def test_bomb_with_lying_size_headers_stays_bounded():
    """Headers claim 10 bytes; the deflate stream holds 200 MB of zeros."""
    big = rezip({"pass.json": bytes(200 * 1024 * 1024)})
    declared = bytearray(big)
    for signature, size_offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        pos = declared.find(signature)
        declared[pos + size_offset : pos + size_offset + 4] = (10).to_bytes(4, "little")
    tracemalloc.start()
    try:
        code = only_finding(bytes(declared))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert code == "ZIP_CORRUPT"  # zipfile stops at the declared size, then the CRC fails
    assert peak < 8 * 1024 * 1024


@pytest.mark.parametrize(
    "member",
    [
        "/etc/passwd",
        "../evil.png",
        "a/../../evil.png",
        "de.lproj\\pass.strings",
        "C:evil",
        "a//b.png",
        "./pass.json",
    ],
)
def test_unsafe_path(good, member):
    members = unzip(good)
    members[member] = b"x"
    assert only_finding(rezip(members)) == "ZIP_UNSAFE_PATH"


def test_nul_in_name(good):
    """zipfile cuts names at NUL; another unzipper may not, so the raw name decides."""
    members = unzip(good)
    members["logoXsecret.png"] = b"x"
    data = rezip(members).replace(b"logoXsecret.png", b"logo\x00secret.png")
    assert only_finding(data) == "ZIP_UNSAFE_PATH"


def test_duplicate_name(good):
    buffer = io.BytesIO(good)
    with warnings.catch_warnings(), zipfile.ZipFile(buffer, "a") as archive:
        warnings.simplefilter("ignore", UserWarning)  # zipfile warns; we want the duplicate
        archive.writestr("pass.json", b"{}")
    assert only_finding(buffer.getvalue()) == "ZIP_DUPLICATE_NAME"


def test_symlink(good):
    buffer = io.BytesIO(good)
    with zipfile.ZipFile(buffer, "a") as archive:
        info = zipfile.ZipInfo("logo.png")
        info.create_system = 3
        info.external_attr = 0o120777 << 16
        archive.writestr(info, "/etc/passwd")
    assert only_finding(buffer.getvalue()) == "ZIP_SYMLINK"


def test_encrypted(good):
    assert only_finding(with_flag(good, 0x01)) == "ZIP_ENCRYPTED"


def test_unsupported_compression(good):
    data = rezip(unzip(good), compression=zipfile.ZIP_BZIP2)
    assert only_finding(data) == "ZIP_UNSUPPORTED_COMPRESSION"


def test_corrupt_member(good):
    members = unzip(good)
    stored = rezip(members, compression=zipfile.ZIP_STORED)
    pos = stored.find(members["icon.png"][:16])
    broken = stored[: pos + 20] + bytes([stored[pos + 20] ^ 0xFF]) + stored[pos + 21 :]
    assert only_finding(broken) == "ZIP_CORRUPT"


def test_truncated_archive(good):
    assert only_finding(good[: len(good) // 2]) == "NOT_A_ZIP"


def test_pkpasses_bundle(good):
    bundle = rezip({"one.pkpass": good, "two copy.pkpass": good})
    report = validate(bundle, now=NOW)
    assert [f.error_code for f in report.findings] == ["PKPASSES_NOT_SUPPORTED"]


def test_directory_entries_are_ignored(pki):
    files = pass_files(**{"de.lproj__pass.strings": b'"a" = "b";'})
    members = unzip(signed(pki, files))
    data = rezip({"./": b"", "de.lproj/": b"", **members})
    report = validate(data, trust_anchors=pki.anchors, now=NOW)
    assert report.ok, report.findings
    assert "de.lproj/" not in report.files and "./" not in report.files


def test_read_archive_raises_only_pkpass_error():
    with pytest.raises(PkpassError) as caught:
        read_archive(b"fail\n")
    assert caught.value.error_code == "NOT_A_ZIP"


def test_unreadable_path_raises(tmp_path):
    with pytest.raises(PkpassError) as caught:
        validate(tmp_path / "absent.pkpass")
    assert caught.value.error_code == "FILE_UNREADABLE"


def test_unknown_policy_raises(good):
    with pytest.raises(PkpassError) as caught:
        validate(good, policy="sometimes")  # type: ignore[arg-type]
    assert caught.value.error_code == "POLICY_INVALID"
