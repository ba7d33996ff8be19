"""``passpost inspect``: readable output, JSON, exit status, --trust and --policy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from passpost.cli import app
from tests.pkpass.pki import make_pki, pass_dict, pass_files, signed

runner = CliRunner()


@pytest.fixture(scope="module")
def pki():
    return make_pki()


@pytest.fixture
def good(tmp_path: Path, pki) -> Path:
    path = tmp_path / "good.pkpass"
    path.write_bytes(signed(pki))
    return path


@pytest.fixture
def root_pem(tmp_path: Path, pki) -> Path:
    path = tmp_path / "root.pem"
    path.write_bytes(pki.pem(pki.root))
    return path


def test_valid_pass_with_its_root(good, root_pem):
    result = runner.invoke(app, ["inspect", str(good), "--trust", str(root_pem)])
    assert result.exit_code == 0, result.output
    assert "VALID" in result.output and "INVALID" not in result.output
    assert "pass.dev.passpost.pkpass-test" in result.output


def test_untrusted_without_the_root(good):
    result = runner.invoke(app, ["inspect", str(good)])
    assert result.exit_code == 1
    assert "INVALID" in result.output and "SIGNATURE_UNTRUSTED" in result.output


def test_policy_warn_accepts_it(good):
    result = runner.invoke(app, ["inspect", str(good), "--policy", "warn"])
    assert result.exit_code == 0, result.output
    assert "SIGNATURE_UNTRUSTED" in result.output


def test_policy_from_the_environment(good):
    result = runner.invoke(app, ["inspect", str(good)], env={"PASSPOST_SIGNATURE_POLICY": "off"})
    assert result.exit_code == 0, result.output


def test_json_output_lists_every_file(good, root_pem, tmp_path, pki):
    bad = tmp_path / "bad.pkpass"
    bad.write_bytes(signed(pki, pass_files(pass_dict(eventTicket=None))))
    result = runner.invoke(
        app, ["inspect", "--json", "--trust", str(root_pem), str(good), str(bad)]
    )
    assert result.exit_code == 1
    reports = json.loads(result.stdout)
    assert [r["ok"] for r in reports] == [True, False]
    assert reports[1]["findings"][0]["errorCode"] == "PASS_STYLE_MISSING"
    assert reports[0]["identity"]["teamIdentifier"] == "PKTEST1234"
    assert "UID=pass.dev.passpost.pkpass-test" in reports[0]["signer"]["subject"]


def test_missing_file_is_invalid(tmp_path):
    result = runner.invoke(app, ["inspect", "--json", str(tmp_path / "nope.pkpass")])
    assert result.exit_code == 1
    assert json.loads(result.stdout)[0]["errorCode"] == "FILE_UNREADABLE"


def test_unreadable_trust_file_is_a_usage_error(good, tmp_path):
    result = runner.invoke(app, ["inspect", str(good), "--trust", str(tmp_path / "none.pem")])
    assert result.exit_code == 2
    assert "certificate" in result.output.lower()


def test_shared_samples(samples_dir: Path):
    valid = samples_dir / "pkpass" / "apple-sample-coupon-2015.pkpass"
    invalid = samples_dir / "pkpass" / "passandroid-not-a-zip.pkpass"
    assert runner.invoke(app, ["inspect", str(valid)]).exit_code == 0
    result = runner.invoke(app, ["inspect", str(valid), str(invalid)])
    assert result.exit_code == 1
    assert "NOT_A_ZIP" in result.output and "not a ZIP archive" in result.output
