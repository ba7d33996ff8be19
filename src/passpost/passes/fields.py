"""Changing a pass after it is sent (SPEC §13): field values by key, void, expire.

Pure functions on a parsed pass.json; signing and versions are the caller's.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

STYLES = ("boardingPass", "coupon", "eventTicket", "generic", "storeCard")
SECTIONS = ("headerFields", "primaryFields", "secondaryFields", "auxiliaryFields", "backFields")
MAX_CHANGE_MESSAGE = 500


class UnknownField(ValueError):
    """A key that no field of the pass has; ``known`` lists the keys it has."""

    def __init__(self, key: str, known: list[str]) -> None:
        listed = ", ".join(known) or "none"
        super().__init__(f"the pass has no field with key {key!r} (its keys: {listed})")
        self.key = key
        self.known = known


def _fields(pass_json: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    for style in STYLES:
        body = pass_json.get(style)
        if not isinstance(body, dict):
            continue
        for section in SECTIONS:
            entries = body.get(section)
            if isinstance(entries, list):
                yield from (e for e in entries if isinstance(e, dict) and "key" in e)


def field_keys(pass_json: Mapping[str, Any]) -> list[str]:
    """Every field key of the pass, in order of appearance."""
    return [str(f["key"]) for f in _fields(pass_json)]


def set_fields(
    pass_json: Mapping[str, Any],
    values: Mapping[str, Any],
    *,
    change_message: str | None = None,
) -> dict[str, Any]:
    """A copy with each field's ``value`` set by key (any section) and its ``changeMessage``.

    Wallet shows ``changeMessage`` (``%@`` is the new value) when the value differs from
    the version the device holds; every field with that key changes.
    """
    changed = copy.deepcopy(dict(pass_json))
    known = field_keys(changed)
    for key in values:
        if key not in known:
            raise UnknownField(key, known)
    for field in _fields(changed):
        key = str(field["key"])
        if key in values:
            field["value"] = values[key]
            if change_message:
                field["changeMessage"] = change_message
    return changed


def voided(pass_json: Mapping[str, Any]) -> dict[str, Any]:
    """A copy marked ``voided: true`` (Wallet greys it out; it cannot be un-voided there)."""
    changed = copy.deepcopy(dict(pass_json))
    changed["voided"] = True
    return changed


def expired(pass_json: Mapping[str, Any], *, now: datetime) -> dict[str, Any]:
    """A copy whose ``expirationDate`` is ``now`` (W3C date with a time zone, as Wallet wants)."""
    changed = copy.deepcopy(dict(pass_json))
    changed["expirationDate"] = now.replace(microsecond=0).isoformat()
    return changed
