"""Cross-check the CMS verifier and signer against ``openssl cms`` on the same inputs.

OpenSSL is used here only, as an independent second opinion; the product never runs it.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from passpost.pkpass import apple_intermediates, apple_roots, validate
from passpost.pkpass.chain import build_chain
from passpost.pkpass.cms import SignatureProblem, verify_detached
from tests.conftest import missing
from tests.pkpass.pki import NOW, SIGNED_AT, ec_key, make_pki, pass_files, rezip, signed, unzip

# Runs the openssl binary (a process per check).
pytestmark = pytest.mark.slow

OPENSSL = shutil.which("openssl")


@pytest.fixture(autouse=True)
def _needs_openssl() -> None:
    if OPENSSL is None:
        missing("the openssl binary is not installed")


def pem(certs: Sequence[x509.Certificate]) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def openssl_verify(
    tmp: Path,
    signature: bytes,
    manifest: bytes,
    *,
    anchors: Sequence[x509.Certificate] | None,
    intermediates: Sequence[x509.Certificate] = (),
    at: datetime | None = None,
) -> bool:
    """`openssl cms -verify`; anchors=None checks only the signature (-noverify)."""
    (tmp / "signature").write_bytes(signature)
    (tmp / "manifest.json").write_bytes(manifest)
    cmd = [
        OPENSSL,
        "cms",
        "-verify",
        "-inform",
        "DER",
        "-binary",
        "-purpose",
        "any",
        "-in",
        str(tmp / "signature"),
        "-content",
        str(tmp / "manifest.json"),
        "-out",
        str(tmp / "out"),
    ]
    if anchors is None:
        cmd.append("-noverify")
    else:
        # cms -verify takes no untrusted-intermediates file: they go into -CAfile, where
        # OpenSSL still only accepts a chain ending in a self-signed root (no -partial_chain).
        (tmp / "store.pem").write_bytes(pem([*anchors, *intermediates]))
        cmd += ["-CAfile", str(tmp / "store.pem"), "-no-CApath", "-no-CAstore"]
        if at is not None:
            cmd += ["-attime", str(int(at.timestamp()))]
    return subprocess.run(cmd, capture_output=True, check=False).returncode == 0


def ours_signature_ok(signature: bytes, manifest: bytes) -> bool:
    try:
        verify_detached(signature, manifest)
    except SignatureProblem:
        return False
    return True


def ours_chain_ok(signature: bytes, manifest: bytes, anchors, intermediates) -> bool:
    verified = verify_detached(signature, manifest)
    chain = build_chain(
        verified.signer,
        anchors=anchors,
        intermediates=[*verified.certificates, *intermediates],
        at=verified.signing_time or NOW,
    )
    return chain.problem_code is None


# --- real passes


def sample_signatures(samples_dir: Path) -> list[tuple[str, bytes, bytes]]:
    found = []
    for path in sorted((samples_dir / "pkpass").glob("*.pkpass")):
        report = validate(path, policy="off")
        if "signature" in report.files and "manifest.json" in report.files:
            found.append((path.name, report.files["signature"], report.files["manifest.json"]))
    return found


def test_samples_agree_with_openssl(samples_dir: Path, tmp_path: Path) -> None:
    samples = sample_signatures(samples_dir)
    assert len(samples) >= 20
    disagreements = []
    for name, signature, manifest in samples:
        ours = ours_signature_ok(signature, manifest)
        theirs = openssl_verify(tmp_path, signature, manifest, anchors=None)
        if ours != theirs:
            disagreements.append((name, "signature", ours, theirs))
        if not ours:
            continue
        at = verify_detached(signature, manifest).signing_time
        ours_chain = ours_chain_ok(signature, manifest, apple_roots(), apple_intermediates())
        theirs_chain = openssl_verify(
            tmp_path,
            signature,
            manifest,
            anchors=apple_roots(),
            intermediates=apple_intermediates(),
            at=at,
        )
        if ours_chain != theirs_chain:
            disagreements.append((name, "chain at signingTime", ours_chain, theirs_chain))
    assert disagreements == []


def test_samples_with_broken_signatures_are_rejected_by_both(
    samples_dir: Path, tmp_path: Path
) -> None:
    verdicts = {n: ours_signature_ok(s, m) for n, s, m in sample_signatures(samples_dir)}
    for name in (
        "pretix-droidcon-eventticket-2024-manifest-regenerated.pkpass",
        "eurowings-boardingpass-2019-manifest-regenerated.pkpass",
        "apple-sample-generic-missing-checksum.pkpass",
    ):
        if name in verdicts:
            assert verdicts[name] is False


# --- passes made by our signer, checked by openssl


@pytest.mark.parametrize("digest", ["sha1", "sha256"])
@pytest.mark.parametrize("signer_identifier", ["issuer_serial", "subject_key_identifier"])
@pytest.mark.parametrize("key", ["rsa", "ec"])
def test_our_signatures_verify_with_openssl(tmp_path, digest, signer_identifier, key):
    pki = make_pki(leaf_key=ec_key()) if key == "ec" else make_pki()
    members = unzip(signed(pki, digest=digest, signer_identifier=signer_identifier))
    assert openssl_verify(
        tmp_path, members["signature"], members["manifest.json"], anchors=pki.anchors, at=SIGNED_AT
    )
    # And both refuse it once the manifest changes.
    changed = members["manifest.json"] + b" "
    assert not openssl_verify(tmp_path, members["signature"], changed, anchors=None)
    assert not ours_signature_ok(members["signature"], changed)


def test_openssl_and_we_agree_on_trust(tmp_path):
    pki, stranger = make_pki(), make_pki()
    members = unzip(signed(pki, embed_intermediate=False))
    sig, manifest = members["signature"], members["manifest.json"]
    cases = [
        (pki.anchors, [pki.intermediate]),
        (pki.anchors, []),
        ([stranger.root], [pki.intermediate]),
    ]
    for anchors, intermediates in cases:
        ours = ours_chain_ok(sig, manifest, anchors, intermediates)
        theirs = openssl_verify(
            tmp_path, sig, manifest, anchors=anchors, intermediates=intermediates, at=SIGNED_AT
        )
        assert ours == theirs, (anchors, intermediates)


# --- signatures made by openssl, checked by us (openssl signs at the real clock)


def current_pki(**options):
    today = datetime.now(UTC)
    return make_pki(
        leaf_not_before=today - timedelta(days=1),
        leaf_not_after=today + timedelta(days=30),
        **options,
    )


@pytest.mark.parametrize(
    "options",
    [
        ["-md", "sha1"],
        ["-md", "sha256"],
        ["-md", "sha256", "-keyid"],
        ["-md", "sha256", "-noattr"],
        ["-md", "sha256", "-keyopt", "rsa_padding_mode:pss"],
        ["-md", "sha512", "-nodetach"],
    ],
    ids=["sha1", "sha256", "keyid-v3", "no-signed-attributes", "rsa-pss", "embedded-content"],
)
def test_openssl_signatures_verify_with_us(tmp_path, options):
    pki = current_pki()
    files = pass_files()
    members = unzip(signed(pki, files))
    (tmp_path / "manifest.json").write_bytes(members["manifest.json"])
    (tmp_path / "leaf.pem").write_bytes(pem([pki.leaf]))
    (tmp_path / "inter.pem").write_bytes(pem([pki.intermediate]))
    (tmp_path / "key.pem").write_bytes(
        pki.leaf_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    subprocess.run(
        [
            OPENSSL,
            "cms",
            "-sign",
            "-binary",
            "-outform",
            "DER",
            "-in",
            str(tmp_path / "manifest.json"),
            "-signer",
            str(tmp_path / "leaf.pem"),
            "-inkey",
            str(tmp_path / "key.pem"),
            "-certfile",
            str(tmp_path / "inter.pem"),
            "-out",
            str(tmp_path / "signature"),
            *options,
        ],
        check=True,
        capture_output=True,
    )
    members["signature"] = (tmp_path / "signature").read_bytes()
    report = validate(rezip(members), trust_anchors=pki.anchors, intermediates=[])
    assert report.ok, report.findings
    assert report.signer == pki.leaf
    tampered = dict(members, **{"manifest.json": members["manifest.json"].replace(b"{", b"{ ", 1)})
    bad = validate(rezip(tampered), trust_anchors=pki.anchors)
    assert "SIGNATURE_INVALID" in [f.error_code for f in bad.errors]


def test_openssl_ecdsa_signature_verifies_with_us(tmp_path):
    pki = current_pki(leaf_key=ec_key())
    members = unzip(signed(pki))
    (tmp_path / "manifest.json").write_bytes(members["manifest.json"])
    (tmp_path / "leaf.pem").write_bytes(pem([pki.leaf]))
    (tmp_path / "key.pem").write_bytes(
        pki.leaf_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    subprocess.run(
        [
            OPENSSL,
            "cms",
            "-sign",
            "-binary",
            "-outform",
            "DER",
            "-md",
            "sha384",
            "-in",
            str(tmp_path / "manifest.json"),
            "-signer",
            str(tmp_path / "leaf.pem"),
            "-inkey",
            str(tmp_path / "key.pem"),
            "-out",
            str(tmp_path / "signature"),
        ],
        check=True,
        capture_output=True,
    )
    members["signature"] = (tmp_path / "signature").read_bytes()
    report = validate(rezip(members), trust_anchors=pki.anchors, intermediates=[pki.intermediate])
    assert report.ok, report.findings
