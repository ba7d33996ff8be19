"""Placeholders in pass.json and pass.strings, filled per holder (SPEC §11)."""

from __future__ import annotations

import json

import pytest

from passpost.passes import personalize
from passpost.passes.personalize import Holder, MissingValue

TEMPLATE = {
    "formatVersion": 1,
    "serialNumber": "T-1",
    "description": "Ticket for ##First Name## ##Last Name##",
    "generic": {
        "primaryFields": [{"key": "name", "label": "NAME", "value": "##First Name##"}],
        "secondaryFields": [{"key": "seat", "value": "##seat##"}],
    },
    "barcodes": [{"message": "##Serial Number##", "format": "PKBarcodeFormatQR"}],
}
STRINGS = '"NAME" = "Name of ##First Name##";\n'


def files() -> dict[str, bytes]:
    return {
        "pass.json": json.dumps(TEMPLATE).encode(),
        "de.lproj/pass.strings": STRINGS.encode("utf-16"),
        "icon.png": b"\x89PNG",
        "manifest.json": b"{}",
        "signature": b"x",
    }


def test_placeholders_are_found_in_pass_json_and_strings_only() -> None:
    found = personalize.placeholders(
        {**files(), "other.txt": b"##Not Me##", "fr.lproj/pass.strings": b'"a" = "##Lang##";'}
    )
    assert found == {"First Name", "Last Name", "seat", "Serial Number", "Lang"}


def test_link_placeholders_are_not_pass_placeholders() -> None:
    assert personalize.placeholders({"pass.json": b'{"a": "##Email Pass Link##"}'}) == set()


def test_values_come_from_fields_then_attributes() -> None:
    holder = Holder("7", first_name="Ada", last_name="Lovelace", fields={"seat": "12A", "n": 3})
    values = personalize.values_for(
        {"First Name", "last name", "seat", "Serial Number", "Audience Id", "n"},
        holder,
        serial_number="T-1-7",
    )
    assert values == {
        "First Name": "Ada",
        "last name": "Lovelace",
        "seat": "12A",
        "Serial Number": "T-1-7",
        "Audience Id": "7",
        "n": "3",
    }


@pytest.mark.parametrize("first_name", [None, "", "  "])
def test_a_missing_or_blank_value_names_the_placeholder(first_name: str | None) -> None:
    with pytest.raises(MissingValue) as caught:
        personalize.values_for(
            {"First Name"}, Holder("1", first_name=first_name), serial_number="s"
        )
    assert caught.value.name == "First Name"
    assert "##First Name##" in str(caught.value)


def test_personal_files_fill_everything_and_set_identity() -> None:
    values = {"First Name": 'Ada "the" Countess', "Last Name": "L", "seat": "12A"}
    values["Serial Number"] = "T-1-42"
    out, pass_json = personalize.personal_files(
        files(),
        values,
        serial_number="T-1-42",
        authentication_token="tok" * 10,
        web_service_url="https://p.example/api",
    )
    assert "manifest.json" not in out and "signature" not in out
    assert out["icon.png"] == b"\x89PNG"
    parsed = json.loads(out["pass.json"])
    assert parsed == pass_json
    assert parsed["description"] == 'Ticket for Ada "the" Countess L'
    assert parsed["generic"]["secondaryFields"][0]["value"] == "12A"
    assert parsed["barcodes"][0]["message"] == "T-1-42"
    assert parsed["serialNumber"] == "T-1-42"
    assert parsed["authenticationToken"] == "tok" * 10
    assert parsed["webServiceURL"] == "https://p.example/api"
    strings = out["de.lproj/pass.strings"]
    assert strings.startswith(b"\xff\xfe") or strings.startswith(b"\xfe\xff")
    assert strings.decode("utf-16") == '"NAME" = "Name of Ada \\"the\\" Countess";\n'


def test_filling_refuses_a_placeholder_without_value() -> None:
    with pytest.raises(MissingValue) as caught:
        personalize.personal_files(
            files(),
            {"First Name": "A", "Last Name": "B", "Serial Number": "s"},
            serial_number="s",
            authentication_token="t" * 20,
            web_service_url="https://p.example/api",
        )
    assert caught.value.name == "seat"


def test_utf8_strings_stay_utf8() -> None:
    out = personalize.fill_strings("en.lproj/pass.strings", b'"a" = "##x##";', {"x": "é"})
    assert out.decode("utf-8") == '"a" = "é";'


def test_a_template_that_is_not_json_is_a_template_error() -> None:
    with pytest.raises(personalize.TemplateError):
        personalize.load_template_json({"pass.json": b"{nope"})
