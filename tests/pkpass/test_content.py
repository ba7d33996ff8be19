"""pass.json, icon and manifest.json rules: one failing pass each, with the exact errorCode."""

from __future__ import annotations

import hashlib
import json

import pytest

from passpost.pkpass import build_manifest, validate
from passpost.pkpass.passjson import parse_lenient, strip_trailing_commas
from tests.pkpass.pki import ICON_PNG, NOW, make_pki, pass_dict, pass_files, rezip, signed, unzip


@pytest.fixture(scope="module")
def pki():
    return make_pki()


def findings(pki, files: dict[str, bytes]) -> list[tuple[str, str]]:
    report = validate(signed(pki, files), trust_anchors=pki.anchors, now=NOW)
    return [(f.error_code, f.severity) for f in report.findings]


def errors_for(pki, **overrides) -> list[str]:
    return [
        code
        for code, severity in findings(pki, pass_files(pass_dict(**overrides)))
        if severity == "error"
    ]


def test_minimal_pass_has_no_findings(pki):
    assert findings(pki, pass_files()) == []


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"formatVersion": None}, "PASS_MISSING_KEY"),
        ({"formatVersion": 2}, "PASS_FORMAT_VERSION_INVALID"),
        ({"formatVersion": "1"}, "PASS_FORMAT_VERSION_INVALID"),
        ({"formatVersion": True}, "PASS_FORMAT_VERSION_INVALID"),
        ({"serialNumber": None}, "PASS_MISSING_KEY"),
        ({"description": None}, "PASS_MISSING_KEY"),
        ({"organizationName": None}, "PASS_MISSING_KEY"),
        ({"serialNumber": 12345}, "PASS_KEY_INVALID"),
        ({"description": ""}, "PASS_KEY_INVALID"),
        ({"serialNumber": "s" * 256}, "PASS_VALUE_TOO_LONG"),
        (
            {"webServiceURL": "https://passes.example.com/", "authenticationToken": "a" * 256},
            "PASS_VALUE_TOO_LONG",
        ),
        ({"organizationName": "o" * 1001}, "PASS_VALUE_TOO_LONG"),
        ({"userInfo": {"terms": "t" * 65537}}, "PASS_VALUE_TOO_LONG"),
        ({"eventTicket": None}, "PASS_STYLE_MISSING"),
        ({"coupon": {}}, "PASS_STYLE_MULTIPLE"),
        ({"eventTicket": ["not", "a", "dict"]}, "PASS_KEY_INVALID"),
        ({"eventTicket": None, "boardingPass": {}}, "PASS_TRANSIT_TYPE_MISSING"),
        (
            {"eventTicket": None, "boardingPass": {"transitType": "PKTransitTypeRocket"}},
            "PASS_TRANSIT_TYPE_INVALID",
        ),
        (
            {"webServiceURL": "http://passes.example.com/", "authenticationToken": "a" * 16},
            "PASS_WEB_SERVICE_INVALID",
        ),
        (
            {"webServiceURL": "not a url", "authenticationToken": "a" * 16},
            "PASS_WEB_SERVICE_INVALID",
        ),
        ({"webServiceURL": 42, "authenticationToken": "a" * 16}, "PASS_WEB_SERVICE_INVALID"),
        ({"webServiceURL": "https://passes.example.com/"}, "PASS_AUTH_TOKEN_MISSING"),
        (
            {"webServiceURL": "https://passes.example.com/", "authenticationToken": "a" * 15},
            "PASS_AUTH_TOKEN_SHORT",
        ),
    ],
)
def test_pass_json_rule(pki, overrides, expected):
    assert errors_for(pki, **overrides) == [expected]


def test_team_and_type_keys_are_required(pki):
    # Missing identifiers also make the signer check fail; the key finding comes first.
    assert errors_for(pki, teamIdentifier=None)[0] == "PASS_MISSING_KEY"
    assert errors_for(pki, passTypeIdentifier=None)[0] == "PASS_MISSING_KEY"


def test_boarding_pass_with_transit_type_is_valid(pki):
    assert (
        errors_for(pki, eventTicket=None, boardingPass={"transitType": "PKTransitTypeTrain"}) == []
    )


def test_web_service_pair_is_valid(pki):
    ok = {"webServiceURL": "https://passes.example.com/v1", "authenticationToken": "x" * 16}
    assert findings(pki, pass_files(pass_dict(**ok))) == []


def test_http_localhost_web_service_is_a_warning(pki):
    local = {"webServiceURL": "http://127.0.0.1:8080/", "authenticationToken": "x" * 16}
    assert findings(pki, pass_files(pass_dict(**local))) == [
        ("PASS_WEB_SERVICE_INSECURE", "warning")
    ]


def test_token_without_web_service_is_a_warning(pki):
    assert findings(pki, pass_files(pass_dict(authenticationToken="x" * 16))) == [
        ("PASS_AUTH_TOKEN_UNUSED", "warning")
    ]


def test_unknown_keys_are_kept(pki):
    report = validate(
        signed(pki, pass_files(pass_dict(futureKey={"a": 1}))), trust_anchors=pki.anchors, now=NOW
    )
    assert report.ok and report.pass_json is not None and report.pass_json["futureKey"] == {"a": 1}


def test_trailing_comma_and_bom_are_warnings(pki):
    raw = b"\xef\xbb\xbf" + json.dumps(pass_dict(), indent=1).encode().replace(
        b'"Test"\n', b'"Test",\n', 1
    )
    raw = raw.replace(b"\n}", b",\n}")
    assert findings(pki, pass_files(raw)) == [
        ("PASS_JSON_BOM", "warning"),
        ("PASS_JSON_TRAILING_COMMA", "warning"),
    ]


@pytest.mark.parametrize(
    "raw",
    [b"{", b"[1, 2]", b'"text"', b"\xff\xfe{}", b"{'single': 1}", b"[" * 100_000 + b"]" * 100_000],
    ids=["truncated", "array", "string", "utf16", "single-quotes", "deep"],
)
def test_pass_json_invalid(pki, raw):
    assert [c for c, s in findings(pki, pass_files(raw)) if s == "error"] == ["PASS_JSON_INVALID"]


def test_pass_json_missing(pki):
    files = {"icon.png": ICON_PNG}
    assert [c for c, _ in findings(pki, files)] == ["PASS_JSON_MISSING"]


def test_icon_missing(pki):
    files = pass_files()
    del files["icon.png"]
    files["logo.png"] = ICON_PNG
    assert [c for c, _ in findings(pki, files)] == ["ICON_MISSING"]


def test_localised_icon_counts(pki):
    files = pass_files()
    files["de.lproj/icon.png"] = files.pop("icon.png")
    assert findings(pki, files) == []


def test_strip_trailing_commas_respects_strings():
    text = '{"a": "x,}", "b": [1, 2, ], "c": "\\",]", }'
    assert json.loads(strip_trailing_commas(text)) == {"a": "x,}", "b": [1, 2], "c": '",]'}
    assert parse_lenient(b'{"a": [1,]}') == ({"a": [1]}, False, True)


# --- manifest.json


def test_digest_mismatch_names_the_file(pki):
    members = unzip(signed(pki))
    members["pass.json"] = json.dumps(pass_dict(description="edited")).encode()
    report = validate(rezip(members), trust_anchors=pki.anchors, now=NOW)
    assert [f.error_code for f in report.findings] == ["MANIFEST_DIGEST_MISMATCH"]
    assert report.findings[0].files == ("pass.json",)


@pytest.mark.parametrize("digest", ["sha1", "sha256"])
def test_digest_mismatch_in_a_signed_sha256_or_sha1_manifest(pki, digest):
    """The signature is valid (the manifest is what was signed); a member changed after."""
    members = unzip(signed(pki, manifest_digest=digest))
    members["icon.png"] = members["icon.png"] + b"\0"
    report = validate(rezip(members), trust_anchors=pki.anchors, now=NOW)
    assert [(f.error_code, f.files) for f in report.findings] == [
        ("MANIFEST_DIGEST_MISMATCH", ("icon.png",))
    ]


@pytest.mark.parametrize("digest", ["sha1", "sha256"])
def test_digest_mismatch_without_precomputed_digests(digest):
    """check_manifest hashes members itself when the reader has not (``sha1`` omitted)."""
    files = pass_files()
    manifest = build_manifest(files, digest=digest)
    tampered = {**files, "pass.json": files["pass.json"] + b" "}
    from passpost.pkpass.manifest import check_manifest

    assert check_manifest(files, manifest) == []
    [finding] = check_manifest(tampered, manifest)
    assert (finding.error_code, finding.files) == ("MANIFEST_DIGEST_MISMATCH", ("pass.json",))


def test_listed_file_missing(pki):
    members = unzip(signed(pki))
    del members["icon.png"]
    codes = [
        f.error_code for f in validate(rezip(members), trust_anchors=pki.anchors, now=NOW).findings
    ]
    assert codes == ["ICON_MISSING", "MANIFEST_FILE_MISSING"]


@pytest.mark.parametrize("extra", ["__MACOSX/._pass.json", ".DS_Store", "logo.png"])
def test_unlisted_file_is_named(pki, extra):
    members = unzip(signed(pki))
    members[extra] = b"junk"
    report = validate(rezip(members), trust_anchors=pki.anchors, now=NOW)
    assert [f.error_code for f in report.findings] == ["MANIFEST_UNLISTED_FILE"]
    assert report.findings[0].files == (extra,)
    assert extra in report.findings[0].message


@pytest.mark.parametrize(
    "manifest",
    [
        b"not json",
        b"[]",
        b'{"pass.json": "abc"}',
        b'{"pass.json": 5}',
        b'{"pass.json": "' + b"g" * 40 + b'"}',
    ],
    ids=["text", "array", "short-hex", "number", "not-hex"],
)
def test_manifest_invalid(pki, manifest):
    members = unzip(signed(pki))
    members["manifest.json"] = manifest
    codes = [
        f.error_code for f in validate(rezip(members), trust_anchors=pki.anchors, now=NOW).errors
    ]
    assert codes[0] == "MANIFEST_INVALID"
    assert codes == ["MANIFEST_INVALID", "SIGNATURE_INVALID"]  # it was not what was signed


def test_manifest_accepts_uppercase_sha1_and_sha256(pki):
    files = pass_files()
    entries = {
        "pass.json": hashlib.sha1(files["pass.json"]).hexdigest().upper(),
        "icon.png": hashlib.sha256(files["icon.png"]).hexdigest(),
    }
    manifest = json.dumps(entries).replace(",", ",\r\n").encode()
    from passpost.pkpass.manifest import check_manifest

    assert check_manifest(files, manifest) == []
    assert check_manifest(files, build_manifest(files, digest="sha256")) == []


def test_whitespace_description_is_a_warning_as_wallet_takes_it(pki):
    report = validate(
        signed(pki, pass_files(pass_dict(description=" \t "))), trust_anchors=pki.anchors, now=NOW
    )
    assert report.ok
    assert [(f.error_code, f.severity) for f in report.findings] == [
        ("PASS_DESCRIPTION_BLANK", "warning")
    ]


def test_values_at_their_limits_are_valid(pki):
    overrides = {
        "serialNumber": "s" * 255,
        "organizationName": "o" * 1000,
        "userInfo": {"terms": "t" * 65536},
    }
    assert errors_for(pki, **overrides) == []


def _nested(depth: int) -> object:
    value: object = 1
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("depth", [20, 900])
def test_deeply_nested_pass_json_is_an_error(pki, depth):
    # userInfo at level 2 holding ``depth`` lists: deeper than 20 levels.
    assert errors_for(pki, userInfo=_nested(depth)) == ["PASS_JSON_TOO_DEEP"]


def test_nesting_up_to_the_limit_is_valid(pki):
    assert errors_for(pki, userInfo=_nested(18)) == []  # pass.json 1 + userInfo 18 = 19 levels


@pytest.mark.parametrize("policy", ["require", "warn", "off"])
def test_absurd_passes_are_errors_under_every_policy(pki, policy):
    """SPEC §7: policy ``off`` skips the signature only (issue 9, finding 9)."""

    def codes(files: dict[str, bytes]) -> list[str]:
        report = validate(rezip(files), policy=policy, trust_anchors=pki.anchors, now=NOW)
        return [f.error_code for f in report.errors]

    good = unzip(signed(pki, pass_files()))
    no_manifest = {k: v for k, v in good.items() if k not in ("manifest.json", "signature")}
    assert codes(no_manifest) == ["MANIFEST_MISSING"]
    latin1 = json.dumps(pass_dict(description="Caf\u00e9"), ensure_ascii=False).encode("latin-1")
    assert codes(unzip(signed(pki, pass_files(latin1)))) == ["PASS_JSON_INVALID"]
    long_serial = unzip(signed(pki, pass_files(pass_dict(serialNumber="s" * 20_000))))
    assert codes(long_serial)[:1] == ["PASS_VALUE_TOO_LONG"]
    long_name = {**good, "n" * 3000 + ".png": ICON_PNG}
    assert codes(long_name) == ["ZIP_NAME_TOO_LONG"]
