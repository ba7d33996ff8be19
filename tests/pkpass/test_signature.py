"""The signature rules: CMS shapes, chain building, trust, signing time, Pass Type ID checks."""

from __future__ import annotations

from datetime import timedelta

import pytest
from asn1crypto import cms
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from passpost.pkpass import PkpassError, sign, validate
from passpost.pkpass.report import Report
from tests.pkpass.pki import (
    NOW,
    SIGNED_AT,
    TEAM_ID,
    certificate,
    ec_key,
    make_pki,
    name,
    pass_dict,
    pass_files,
    pass_type_extension,
    rezip,
    rsa_key,
    signed,
    unzip,
)


@pytest.fixture(scope="module")
def pki():
    return make_pki()


def check(data: bytes, pki, **options) -> Report:
    options.setdefault("trust_anchors", pki.anchors)
    options.setdefault("intermediates", [])
    options.setdefault("now", NOW)
    return validate(data, **options)


def codes(report: Report) -> list[str]:
    return [f.error_code for f in report.findings]


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


@pytest.mark.parametrize("digest", ["sha1", "sha256"])
@pytest.mark.parametrize("manifest_digest", ["sha1", "sha256"])
@pytest.mark.parametrize("signer_identifier", ["issuer_serial", "subject_key_identifier"])
def test_signed_pass_is_valid_in_every_cms_shape(pki, digest, manifest_digest, signer_identifier):
    data = signed(
        pki, digest=digest, manifest_digest=manifest_digest, signer_identifier=signer_identifier
    )
    report = check(data, pki)
    assert report.ok, report.findings
    assert report.findings == []
    assert report.signer == pki.leaf
    assert report.chain == (pki.leaf, pki.intermediate, pki.root)
    assert report.signing_time == SIGNED_AT
    assert report.identity is not None and report.identity.style == "eventTicket"


def test_ecdsa_signer_is_valid():
    pki = make_pki(leaf_key=ec_key())
    report = check(signed(pki, signer_identifier="subject_key_identifier"), pki)
    assert report.ok, report.findings


def test_signed_data_version_is_three_for_a_key_identifier_signer(pki):
    signature = unzip(signed(pki, signer_identifier="subject_key_identifier"))["signature"]
    content = cms.ContentInfo.load(signature)["content"]
    assert content["version"].native == "v3"
    assert content["signer_infos"][0]["sid"].name == "subject_key_identifier"


def test_missing_signature(pki):
    members = unzip(signed(pki))
    del members["signature"]
    assert codes(check(rezip(members), pki)) == ["SIGNATURE_MISSING"]


def test_missing_manifest_is_an_error_under_every_policy(pki):
    # Wallet opens no pass without a manifest, so "warn" and "off" cannot make it pass.
    data = rezip(pass_files())
    for policy in ("require", "warn", "off"):
        report = check(data, pki, policy=policy)
        assert not report.ok and codes(report) == ["MANIFEST_MISSING"]


@pytest.mark.parametrize(
    "garbage",
    [b"", b"not der at all", b"\x30\x03\x02\x01\x01", b"\x30\x80" * 5000],
    ids=["empty", "text", "wrong-asn1", "deep-ber"],
)
def test_garbage_signature_is_invalid(pki, garbage):
    members = unzip(signed(pki))
    members["signature"] = garbage
    report = check(rezip(members), pki)
    assert codes(report) == ["SIGNATURE_INVALID"]


def test_manifest_changed_after_signing_is_invalid(pki):
    members = unzip(signed(pki))
    members["pass.json"] = b'{"changed": true}'
    members["manifest.json"] = members["manifest.json"].replace(b"{", b"{ ", 1)
    report = check(rezip(members), pki)
    assert "SIGNATURE_INVALID" in codes(report)
    assert "messageDigest" in report.findings[-1].message


def test_signature_by_another_key_is_invalid(pki):
    members = unzip(signed(pki))
    other = unzip(signed(make_pki(leaf_key=rsa_key(7)), pass_files(pass_dict(serialNumber="x"))))
    # Right certificate, wrong signature value: graft the other signer's value into ours.
    ours = cms.ContentInfo.load(members["signature"])
    theirs = cms.ContentInfo.load(other["signature"])
    ours_info = ours["content"]["signer_infos"][0]
    their_info = theirs["content"]["signer_infos"][0]
    ours_info["signed_attrs"] = their_info["signed_attrs"]
    ours_info["signature"] = their_info["signature"]
    members["signature"] = ours.dump(force=True)
    members["manifest.json"] = other["manifest.json"]
    members["pass.json"] = other["pass.json"]
    report = check(rezip(members), pki)
    assert codes(report) == ["SIGNATURE_INVALID"]
    assert "does not verify" in report.findings[0].message


def test_signature_without_signer_certificate_is_invalid(pki):
    members = unzip(signed(pki))
    info = cms.ContentInfo.load(members["signature"])
    only_intermediate = der(pki.intermediate)
    info["content"]["certificates"] = [asn1_x509.Certificate.load(only_intermediate)]
    members["signature"] = info.dump(force=True)
    report = check(rezip(members), pki)
    assert codes(report) == ["SIGNATURE_INVALID"]
    assert "signer's certificate" in report.findings[0].message


def test_intermediate_from_the_configured_set(pki):
    data = signed(pki, embed_intermediate=False)
    assert codes(check(data, pki)) == ["SIGNATURE_UNTRUSTED"]
    report = check(data, pki, intermediates=[pki.intermediate])
    assert report.ok and report.chain == (pki.leaf, pki.intermediate, pki.root)


def test_wrong_embedded_intermediate_is_completed_from_the_configured_set(pki):
    """Like real passes issued by WWDR G4 that embed the old G1 certificate."""
    stale = certificate(
        name("pkpass Test WWDR CA", ou="G1"),
        key=rsa_key(5),
        issuer=pki.root,
        issuer_key=pki.root_key,
        ca=True,
    )
    data = signed(pki, embed_intermediate=False)
    members = unzip(data)
    info = cms.ContentInfo.load(members["signature"])
    info["content"]["certificates"] = [
        asn1_x509.Certificate.load(der(pki.leaf)),
        asn1_x509.Certificate.load(der(stale)),
    ]
    members["signature"] = info.dump(force=True)
    assert codes(check(rezip(members), pki)) == ["SIGNATURE_UNTRUSTED"]
    assert check(rezip(members), pki, intermediates=[stale, pki.intermediate]).ok


def test_root_embedded_in_the_signature_is_not_trusted():
    pki = make_pki()
    other_root = certificate(name("Evil Root"), key=rsa_key(3), ca=True)
    # The same chain, but the verifier trusts some other root: embedding ours must not help.
    data = signed(pki, embed_intermediate=False)
    data_with_root = unzip(
        sign(
            pass_files(),
            certificate=pki.leaf,
            private_key=pki.leaf_key,
            intermediates=[pki.intermediate, pki.root],
            signing_time=SIGNED_AT,
        )
    )
    assert codes(check(data, pki, trust_anchors=[other_root])) == ["SIGNATURE_UNTRUSTED"]
    report = check(rezip(data_with_root), pki, trust_anchors=[other_root])
    assert codes(report) == ["SIGNATURE_UNTRUSTED"]
    assert check(rezip(data_with_root), pki).ok


def test_self_signed_signer_is_untrusted():
    key = rsa_key(4)
    leaf = certificate(
        name("Pass Type ID: x", uid="pass.dev.passpost.pkpass-test", ou=TEAM_ID),
        key=key,
        ca=None,
        extensions=(pass_type_extension("pass.dev.passpost.pkpass-test"),),
    )
    data = sign(pass_files(), certificate=leaf, private_key=key, signing_time=SIGNED_AT)
    report = check(data, make_pki())
    assert codes(report) == ["SIGNATURE_UNTRUSTED"]
    # Trusting that very certificate makes it its own one-element chain.
    assert check(data, make_pki(), trust_anchors=[leaf]).ok


def test_non_ca_issuer_cannot_extend_the_chain(pki):
    """A leaf (CA:false) that signs another certificate does not make a path."""
    key = rsa_key(6)
    child = certificate(
        name("Pass Type ID: sub", uid="pass.dev.passpost.pkpass-test", ou=TEAM_ID),
        key=key,
        issuer=pki.leaf,
        issuer_key=pki.leaf_key,
        extensions=(pass_type_extension("pass.dev.passpost.pkpass-test"),),
    )
    data = sign(
        pass_files(),
        certificate=child,
        private_key=key,
        intermediates=[pki.leaf, pki.intermediate],
        signing_time=SIGNED_AT,
    )
    assert codes(check(data, pki)) == ["SIGNATURE_UNTRUSTED"]


def test_certificate_not_valid_at_signing_time():
    pki = make_pki(leaf_not_before=SIGNED_AT + timedelta(days=1))
    report = check(signed(pki), pki)
    assert codes(report) == ["CERTIFICATE_NOT_VALID_AT_SIGNING_TIME"]
    expired = make_pki(leaf_not_after=SIGNED_AT - timedelta(days=1))
    assert check(signed(expired), expired).errors[0].error_code == (
        "CERTIFICATE_NOT_VALID_AT_SIGNING_TIME"
    )


def test_expired_since_signing_is_only_a_warning():
    pki = make_pki(leaf_not_after=NOW - timedelta(days=1))
    report = check(signed(pki), pki)
    assert report.ok
    assert codes(report) == ["CERTIFICATE_EXPIRED"]
    assert report.warnings[0].severity == "warning"


def test_signing_time_in_the_future(pki):
    report = check(signed(pki, signing_time=NOW + timedelta(days=2)), pki)
    assert codes(report)[0] == "SIGNING_TIME_IN_FUTURE"


def test_signer_without_pass_type_extension():
    pki = make_pki(extension_value=None)
    assert codes(check(signed(pki), pki)) == ["SIGNER_NOT_PASS_TYPE_ID"]


@pytest.mark.parametrize(
    ("pki_options", "fragment"),
    [
        ({"extension_value": "Le Rendez Vous"}, "extension says 'Le Rendez Vous'"),
        ({"uid": "pass.other.type"}, "certificate is for 'pass.other.type'"),
        ({"team_id": "OTHERTEAM1"}, "team 'OTHERTEAM1'"),
    ],
    ids=["extension-value", "uid", "team"],
)
def test_signer_for_another_pass_type_or_team(pki_options, fragment):
    pki = make_pki(**pki_options)
    report = check(signed(pki), pki)
    assert codes(report) == ["SIGNER_MISMATCH"]
    assert fragment in report.findings[0].message


def test_warn_policy_turns_signature_problems_into_warnings():
    pki = make_pki(extension_value=None)
    report = check(signed(pki), pki, policy="warn")
    assert report.ok
    assert [(f.error_code, f.severity) for f in report.findings] == [
        ("SIGNER_NOT_PASS_TYPE_ID", "warning")
    ]


def test_off_policy_skips_signature_checks_but_not_the_manifest(pki):
    members = unzip(signed(pki))
    members["signature"] = b"garbage"
    assert check(rezip(members), pki, policy="off").findings == []
    members["pass.json"] += b" "
    assert codes(check(rezip(members), pki, policy="off")) == ["MANIFEST_DIGEST_MISMATCH"]


def resign_sha1(cert: x509.Certificate, issuer_key) -> x509.Certificate:
    """The same certificate signed with sha1WithRSA (cryptography no longer makes those)."""
    parsed = asn1_x509.Certificate.load(der(cert))
    tbs = parsed["tbs_certificate"]
    tbs["signature"] = {"algorithm": "sha1_rsa"}
    value = issuer_key.sign(tbs.dump(force=True), padding.PKCS1v15(), hashes.SHA1())
    parsed["signature_algorithm"] = {"algorithm": "sha1_rsa"}
    parsed["signature_value"] = value
    return x509.load_der_x509_certificate(parsed.dump(force=True))


def test_sha1_signed_certificates_chain(pki):
    """2012-era chains are SHA-1 signed throughout; cryptography's own verifier refuses them."""
    leaf = resign_sha1(pki.leaf, pki.intermediate_key)
    assert leaf.signature_hash_algorithm.name == "sha1"
    data = sign(
        pass_files(),
        certificate=leaf,
        private_key=pki.leaf_key,
        intermediates=[pki.intermediate],
        signing_time=SIGNED_AT,
        digest="sha1",
    )
    assert check(data, pki).ok
    tampered = resign_sha1(pki.leaf, rsa_key(9))  # same certificate, signed by the wrong key
    data = sign(
        pass_files(),
        certificate=tampered,
        private_key=pki.leaf_key,
        intermediates=[pki.intermediate],
        signing_time=SIGNED_AT,
    )
    assert codes(check(data, pki)) == ["SIGNATURE_UNTRUSTED"]


def malformed_basic_constraints() -> x509.UnrecognizedExtension:
    """A BasicConstraints extension whose DER is cut short (found by the fuzz tests)."""
    return x509.UnrecognizedExtension(x509.oid.ExtensionOID.BASIC_CONSTRAINTS, b"\x30\x03\x01")


def test_malformed_embedded_intermediate_is_ignored(pki):
    broken = certificate(
        name("pkpass Test WWDR CA", ou="G9"),
        key=pki.intermediate_key,
        issuer=pki.root,
        issuer_key=pki.root_key,
        ca=None,
        extensions=(malformed_basic_constraints(),),
    )
    data = sign(
        pass_files(),
        certificate=pki.leaf,
        private_key=pki.leaf_key,
        intermediates=[broken],
        signing_time=SIGNED_AT,
    )
    assert codes(check(data, pki)) == ["SIGNATURE_UNTRUSTED"]
    assert check(data, pki, intermediates=[pki.intermediate]).ok


def test_malformed_signer_certificate_is_invalid(pki):
    broken = certificate(
        name("Pass Type ID: x", uid="pass.dev.passpost.pkpass-test", ou=TEAM_ID),
        key=pki.leaf_key,
        issuer=pki.intermediate,
        issuer_key=pki.intermediate_key,
        ca=None,
        extensions=(malformed_basic_constraints(),),
    )
    data = sign(pass_files(), certificate=broken, private_key=pki.leaf_key, signing_time=SIGNED_AT)
    report = check(data, pki)
    assert codes(report) == ["SIGNATURE_INVALID"]
    assert "malformed" in report.findings[0].message


def without_signed_attributes(pki, data: bytes) -> bytes:
    """The same pass, its signature re-made over manifest.json itself (no signed attributes)."""
    members = unzip(data)
    info = cms.ContentInfo.load(members["signature"])
    signer_info = info["content"]["signer_infos"][0]
    signer_info["signed_attrs"] = None
    signer_info["signature"] = pki.leaf_key.sign(
        members["manifest.json"], padding.PKCS1v15(), hashes.SHA256()
    )
    members["signature"] = info.dump(force=True)
    return rezip(members)


def test_signature_without_signed_attributes_is_checked_now(pki):
    report = check(without_signed_attributes(pki, signed(pki)), pki)
    assert report.ok, report.findings
    assert report.signing_time is None
    expired = make_pki(leaf_not_after=NOW - timedelta(days=1))
    report = check(without_signed_attributes(expired, signed(expired)), expired)
    assert codes(report) == ["CERTIFICATE_NOT_VALID_AT_SIGNING_TIME", "CERTIFICATE_EXPIRED"]
    assert "has no signingTime" in report.findings[0].message


def test_raise_for_errors(pki):
    check(signed(pki), pki).raise_for_errors()  # valid: nothing raised
    push_like = make_pki(extension_value=None)
    with pytest.raises(PkpassError) as caught:
        check(signed(push_like), push_like).raise_for_errors()
    assert caught.value.error_code == "SIGNER_NOT_PASS_TYPE_ID"


def test_two_signers_are_refused(pki):
    members = unzip(signed(pki))
    info = cms.ContentInfo.load(members["signature"])
    signer_info = info["content"]["signer_infos"][0]
    info["content"]["signer_infos"] = [signer_info, cms.SignerInfo.load(signer_info.dump())]
    members["signature"] = info.dump(force=True)
    report = check(rezip(members), pki)
    assert codes(report) == ["SIGNATURE_INVALID"]
    assert "2 signers" in report.findings[0].message


@pytest.mark.parametrize(
    "signature",
    [
        b"\x30\x82\x00\x00" + b"\x00" * (300 * 1024),  # larger than any real signature
        # a SignedData whose SET of signers holds thousands of empty elements
        b"\x30\x80\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x02\xa0\x80\x30\x80\x02\x01\x01"
        b"\x31\x00\x30\x00\x31\x80" + b"\x05\x00" * 50_000 + b"\x00\x00" * 4,
    ],
    ids=["too-large", "many-elements"],
)
def test_hostile_signature_shapes(pki, signature):
    members = unzip(signed(pki))
    members["signature"] = signature
    assert codes(check(rezip(members), pki)) == ["SIGNATURE_INVALID"]


def test_signer_issuer_reencoded_with_other_string_types(pki):
    """Same issuer, different DER (PrintableString instead of UTF8String): still the signer."""
    members = unzip(signed(pki))
    info = cms.ContentInfo.load(members["signature"])
    sid = info["content"]["signer_infos"][0]["sid"].chosen
    original = sid["issuer"].dump()
    issuer = asn1_x509.Name.load(original)
    for rdn in issuer.chosen:
        for attribute in rdn:
            if attribute["value"].name == "utf8_string":
                text = attribute["value"].native
                attribute["value"] = asn1_x509.DirectoryString(name="printable_string", value=text)
    sid["issuer"] = issuer
    assert sid["issuer"].dump(force=True) != original
    members["signature"] = info.dump(force=True)
    assert check(rezip(members), pki).ok


@pytest.mark.parametrize(
    ("moment", "year"),
    [("1999-12-31T23:59:58+00:00", 1999), ("2049-01-01T00:00:00+00:00", 2049)],
)
def test_utc_time_year_window(pki, moment, year):
    from datetime import datetime

    report = check(signed(pki, signing_time=datetime.fromisoformat(moment)), pki)
    assert report.signing_time is not None and report.signing_time.year == year
