"""sign/sign_folder inputs and output, certificate loading, bundled Apple certificates, codes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

import passpost.pkpass
from passpost.pkpass import (
    ERROR_CODES,
    PkpassError,
    apple_intermediates,
    apple_roots,
    load_certificates,
    sign,
    sign_folder,
    validate,
)
from tests.pkpass.pki import (
    ICON_PNG,
    NOW,
    SIGNED_AT,
    ec_key,
    make_pki,
    pass_dict,
    pass_files,
    unzip,
)


@pytest.fixture(scope="module")
def pki():
    return make_pki()


def test_sign_replaces_manifest_and_signature(pki):
    files = {**pass_files(), "manifest.json": b"stale", "signature": b"stale"}
    data = sign(files, certificate=pki.leaf, private_key=pki.leaf_key, signing_time=SIGNED_AT)
    members = unzip(data)
    assert sorted(members) == ["icon.png", "manifest.json", "pass.json", "signature"]
    assert members["manifest.json"] != b"stale"
    assert validate(data, trust_anchors=pki.anchors, intermediates=[pki.intermediate], now=NOW).ok


def test_sign_is_deterministic_for_rsa(pki):
    def once() -> bytes:
        return sign(
            pass_files(), certificate=pki.leaf, private_key=pki.leaf_key, signing_time=SIGNED_AT
        )

    assert once() == once()


@pytest.mark.parametrize("name", ["../evil.png", "/abs.png", "a\\b.png", "dir/"])
def test_sign_refuses_unsafe_names(pki, name):
    with pytest.raises(PkpassError) as caught:
        sign({**pass_files(), name: b"x"}, certificate=pki.leaf, private_key=pki.leaf_key)
    assert caught.value.error_code == "SIGN_INVALID_INPUT"


def test_sign_refuses_a_key_that_does_not_match(pki):
    with pytest.raises(PkpassError) as caught:
        sign(pass_files(), certificate=pki.leaf, private_key=ec_key())
    assert caught.value.error_code == "SIGN_INVALID_INPUT"


def test_sign_folder_skips_hidden_files_and_keeps_lproj(tmp_path, pki):
    (tmp_path / "pass.json").write_bytes(pass_files()["pass.json"])
    (tmp_path / "icon.png").write_bytes(ICON_PNG)
    (tmp_path / ".DS_Store").write_bytes(b"finder junk")
    (tmp_path / "de.lproj").mkdir()
    (tmp_path / "de.lproj" / "pass.strings").write_text('"Test" = "Prüfung";', encoding="utf-8")
    data = sign_folder(
        tmp_path,
        certificate=pki.leaf,
        private_key=pki.leaf_key,
        intermediates=[pki.intermediate],
        signing_time=SIGNED_AT,
    )
    report = validate(data, trust_anchors=pki.anchors, now=NOW)
    assert report.ok, report.findings
    assert set(report.files) == {
        "pass.json",
        "icon.png",
        "de.lproj/pass.strings",
        "manifest.json",
        "signature",
    }


def test_sign_folder_of_a_shared_sample(samples_dir: Path):
    """Apple's BoardingPass.raw (trailing comma and all), re-signed for its own type and team."""
    folder = samples_dir / "pass-folders" / "apple-sample-BoardingPass.raw"
    raw = (folder / "pass.json").read_bytes()
    pki = make_pki(
        pass_type_id="pass.jsapps.io",
        uid="pass.jsapps.io",
        extension_value="pass.jsapps.io",
        team_id=re.search(rb'"teamIdentifier"\s*:\s*"([^"]+)"', raw).group(1).decode(),
    )
    data = sign_folder(
        folder,
        certificate=pki.leaf,
        private_key=pki.leaf_key,
        intermediates=[pki.intermediate],
        signing_time=SIGNED_AT,
    )
    report = validate(data, trust_anchors=pki.anchors, now=NOW)
    assert report.ok, report.findings
    assert [f.error_code for f in report.warnings] == ["PASS_JSON_TRAILING_COMMA"]


def test_load_certificates_pem_bundle_der_and_garbage(tmp_path, pki):
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(pki.pem(pki.root, pki.intermediate))
    assert load_certificates(bundle) == [pki.root, pki.intermediate]
    der = pki.root.public_bytes(serialization.Encoding.DER)
    assert load_certificates(der) == [pki.root]
    for bad in (b"garbage", tmp_path / "missing.pem"):
        with pytest.raises(PkpassError) as caught:
            load_certificates(bad)
        assert caught.value.error_code == "CERTIFICATE_UNREADABLE"


def test_bundled_apple_certificates():
    roots = {r.subject.rfc4514_string() for r in apple_roots()}
    assert roots == {
        "CN=Apple Root CA,OU=Apple Certification Authority,O=Apple Inc.,C=US",
        "C=US,O=Apple Inc.,OU=Apple Certification Authority,CN=Apple Root CA - G2",
        "C=US,O=Apple Inc.,OU=Apple Certification Authority,CN=Apple Root CA - G3",
    }
    assert len(apple_intermediates()) == 9  # both G1 editions, G2 … G8
    assert all(
        "Worldwide Developer Relations" in c.subject.rfc4514_string() for c in apple_intermediates()
    )
    assert apple_roots() is apple_roots()  # parsed once


def test_every_code_used_is_documented():
    source = "".join(p.read_text() for p in Path(passpost.pkpass.__file__).parent.glob("*.py"))
    used = set(re.findall(r'"([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)"', source))
    used = {c for c in used if not c.startswith("PASSPOST_") and c != "ERROR_CODES"}
    assert used - set(ERROR_CODES) == set()
    assert {"NOT_A_ZIP", "SIGNATURE_UNTRUSTED", "PASS_JSON_TRAILING_COMMA"} <= used


def test_report_to_dict_is_json(pki):
    import json

    data = sign(
        pass_files(pass_dict()),
        certificate=pki.leaf,
        private_key=pki.leaf_key,
        intermediates=[pki.intermediate],
        signing_time=SIGNED_AT,
    )
    report = validate(data, trust_anchors=pki.anchors, now=NOW)
    decoded = json.loads(json.dumps(report.to_dict()))
    assert decoded["ok"] is True
    assert decoded["signingTime"] == SIGNED_AT.isoformat()
    assert [c["subject"] for c in decoded["chain"]][-1] == pki.root.subject.rfc4514_string()
    assert decoded["files"]["icon.png"] == len(ICON_PNG)
