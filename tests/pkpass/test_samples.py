"""Every shared sample pass: its verdict and main errorCode (see shared/samples/SOURCES.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.x509.oid import NameOID

from passpost.pkpass import validate
from tests.conftest import shared_sample

SIGNED_OK: tuple[str, ...] = ("CERTIFICATE_EXPIRED",)  # every leaf has expired since signing

# file -> (error codes in report order, the first being the main one; warnings)
EXPECTED: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # Fully valid at signing time (Apple's own samples and real passes).
    "apple-sample-boardingpass-2015.pkpass": ((), ("PASS_JSON_TRAILING_COMMA", *SIGNED_OK)),
    "apple-sample-coupon-2015.pkpass": ((), SIGNED_OK),
    "apple-sample-event-2012.pkpass": ((), SIGNED_OK),
    "apple-sample-eventticket-2015.pkpass": ((), SIGNED_OK),
    "apple-sample-generic-2015.pkpass": ((), SIGNED_OK),
    "apple-sample-storecard-2015.pkpass": ((), SIGNED_OK),
    "avomark-lerendezvous-storecard-2020-good.pkpass": ((), SIGNED_OK),
    "deltasiege-asta-eventticket-2019.pkpass": ((), SIGNED_OK),
    "kudit-pawplanet-coupon-2023.pkpass": ((), SIGNED_OK),  # G4 leaf, embeds G1: bundled G4
    "kudit-skyport-boardingpass-aztec-2015.pkpass": ((), SIGNED_OK),
    "lmu-edutap-nfc-storecard-2024.pkpass": ((), SIGNED_OK),
    "newaer-coupon-2014.pkpass": ((), SIGNED_OK),
    "passkitsharp-aaa-generic-2012.pkpass": ((), SIGNED_OK),
    "passkitsharp-bestbuy-coupon-2012.pkpass": ((), SIGNED_OK),
    "passkitsharp-blockbuster-storecard-2012.pkpass": ((), SIGNED_OK),
    "wanfantian-coupon-2016.pkpass": ((), SIGNED_OK),
    # Signature and chain fine, files changed after signing.
    "apple-sample-boardingpass-modified-passjson.pkpass": (
        ("MANIFEST_DIGEST_MISMATCH",),
        SIGNED_OK,
    ),
    "apple-sample-generic-invalid-checksum.pkpass": (("MANIFEST_DIGEST_MISMATCH",), SIGNED_OK),
    "eurowings-boardingpass-2019-passjson-edited.pkpass": (
        ("MANIFEST_DIGEST_MISMATCH",),
        SIGNED_OK,
    ),
    # Manifest edited too, so the signature no longer covers it.
    "apple-sample-generic-missing-checksum.pkpass": (
        ("MANIFEST_DIGEST_MISMATCH", "MANIFEST_UNLISTED_FILE", "SIGNATURE_INVALID"),
        (),
    ),
    # Manifest regenerated after redaction: manifest fine, signature not.
    "eurowings-boardingpass-2019-manifest-regenerated.pkpass": (
        ("PASS_AUTH_TOKEN_SHORT", "SIGNATURE_INVALID"),  # token redacted to "REDACTED"
        (),
    ),
    "pretix-droidcon-eventticket-2024-manifest-regenerated.pkpass": (("SIGNATURE_INVALID",), ()),
    # Signed by an Apple Push Services certificate.
    "jps-mock-coupon-signed-with-apns-cert-2016.pkpass": (("SIGNER_NOT_PASS_TYPE_ID",), SIGNED_OK),
    # Self-signed, no style, no icon.
    "develatio-selfsigned-nostyle.pkpass": (
        ("PASS_STYLE_MISSING", "ICON_MISSING", "SIGNATURE_UNTRUSTED", "SIGNER_NOT_PASS_TYPE_ID"),
        SIGNED_OK,
    ),
    # Unsigned.
    "kde-apple-userpass-eventticket-scrubbed.pkpass": (("ICON_MISSING", "MANIFEST_MISSING"), ()),
    "kde-kpkpass-boardingpass-lproj-unsigned.pkpass": (("ICON_MISSING", "MANIFEST_MISSING"), ()),
    "kde-swiss-boardingpass-scrubbed.pkpass": (
        ("PASS_MISSING_KEY", "ICON_MISSING", "MANIFEST_MISSING"),  # no teamIdentifier
        (),
    ),
    "kde-united-boardingpass-unsigned-scrubbed.pkpass": (("ICON_MISSING", "MANIFEST_MISSING"), ()),
    "passkit-inc-nfcdemo-unsigned.pkpass": (("MANIFEST_MISSING",), ()),
    # Not one pass.
    "eurowings-2x-bundle.pkpasses": (("PKPASSES_NOT_SUPPORTED",), ()),
    "passandroid-not-a-zip.pkpass": (("NOT_A_ZIP",), ()),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_verdict(samples_dir: Path, name: str) -> None:
    path = shared_sample(name)
    errors, warnings = EXPECTED[name]
    report = validate(path)
    assert report.ok is (not errors)
    assert tuple(f.error_code for f in report.errors) == errors
    assert tuple(f.error_code for f in report.warnings) == warnings
    if errors:
        assert report.first_error is not None and report.first_error.error_code == errors[0]
    for finding in report.findings:
        assert finding.message.endswith("."), finding  # one readable sentence


def test_every_sample_has_an_expectation(samples_dir: Path) -> None:
    present = {p.name for p in (samples_dir / "pkpass").iterdir()}
    assert present <= set(EXPECTED), (
        f"samples without an expected verdict: {present - set(EXPECTED)}"
    )


def test_valid_samples_stay_valid_under_every_policy(samples_dir: Path) -> None:
    for name, (errors, _) in EXPECTED.items():
        path = shared_sample(name)
        if not errors:
            for policy in ("warn", "off"):
                assert validate(path, policy=policy).ok, (name, policy)


def test_signature_problems_are_warnings_under_warn(samples_dir: Path) -> None:
    path = shared_sample("jps-mock-coupon-signed-with-apns-cert-2016.pkpass")
    report = validate(path, policy="warn")
    assert report.ok
    assert "SIGNER_NOT_PASS_TYPE_ID" in [f.error_code for f in report.warnings]


def test_identity_and_chain_of_a_real_pass(samples_dir: Path) -> None:
    path = shared_sample("kudit-pawplanet-coupon-2023.pkpass")
    report = validate(path)
    assert report.identity is not None
    assert report.identity.pass_type_identifier == "pass.com.kudit.generic"
    assert report.identity.team_identifier == "3QPV894C33"
    assert report.identity.style == "coupon"
    # Issued by WWDR G4 although the signature embeds the 2013 G1: the bundled G4 completes it.
    leaf, wwdr, root = report.chain
    assert wwdr.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value == "G4"
    assert root.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Apple Root CA"
    assert leaf == report.signer
