"""Field changes after sending (SPEC §13): by key in any section, void, expire."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from passpost.passes import fields

PASS = {
    "boardingPass": {
        "transitType": "PKTransitTypeAir",
        "headerFields": [{"key": "gate", "value": "A1"}],
        "backFields": [{"key": "gate", "value": "A1"}, {"key": "terms", "value": "none"}],
    }
}


def test_every_field_with_the_key_changes_with_its_message() -> None:
    changed = fields.set_fields(PASS, {"gate": "B12"}, change_message="Gate changed to %@")
    assert changed["boardingPass"]["headerFields"] == [
        {"key": "gate", "value": "B12", "changeMessage": "Gate changed to %@"}
    ]
    assert changed["boardingPass"]["backFields"][0]["value"] == "B12"
    assert changed["boardingPass"]["backFields"][1] == {"key": "terms", "value": "none"}
    assert PASS["boardingPass"]["headerFields"][0]["value"] == "A1"  # the input is kept


def test_an_unknown_key_lists_the_known_ones() -> None:
    with pytest.raises(fields.UnknownField) as caught:
        fields.set_fields(PASS, {"seat": "1"})
    assert caught.value.known == ["gate", "gate", "terms"]
    assert "'seat'" in str(caught.value)


def test_void_and_expire() -> None:
    assert fields.voided(PASS)["voided"] is True
    now = datetime(2026, 11, 27, 8, 0, 1, 500, tzinfo=UTC)
    assert fields.expired(PASS, now=now)["expirationDate"] == "2026-11-27T08:00:01+00:00"
