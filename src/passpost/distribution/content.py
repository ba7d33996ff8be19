"""A pass.json read back in the original API's ``passContent`` shape (Get Pass Content).

The original built passes from ``basicDetails``/``appearance``/``frontLayout``/... objects;
an imported pass has only its pass.json, so each documented key is filled from the
pass.json key that carries the same meaning, and is ``""`` (or empty) when it has none.
"""

from __future__ import annotations

import json
import re
from typing import Any

STYLES = ("boardingPass", "coupon", "eventTicket", "generic", "storeCard")
# The pages' passType constants ("BOARDING" is the one their samples show).
PASS_TYPES = {
    "boardingPass": "BOARDING",
    "coupon": "COUPON",
    "eventTicket": "EVENT_TICKET",
    "generic": "GENERIC",
    "storeCard": "STORE_CARD",
}
_TRANSIT = {
    "PKTransitTypeAir": "AIR",
    "PKTransitTypeBoat": "BOAT",
    "PKTransitTypeBus": "BUS",
    "PKTransitTypeGeneric": "GENERIC",
    "PKTransitTypeTrain": "TRAIN",
}
_ALIGN = {
    "PKTextAlignmentLeft": "LEFT",
    "PKTextAlignmentCenter": "CENTER",
    "PKTextAlignmentRight": "RIGHT",
    "PKTextAlignmentNatural": "NATURAL",
}
_RGB = re.compile(r"^\s*rgba?\(\s*(\d{1,3})\s*,\s*(\d{1,3})\s*,\s*(\d{1,3})")


def style_of(pass_json: dict[str, Any]) -> str | None:
    """The pass.json style key (``eventTicket``...), if any."""
    return next((s for s in STYLES if isinstance(pass_json.get(s), dict)), None)


def pass_type_constant(pass_json: dict[str, Any]) -> str:
    """The pages' ``passType`` constant of a pass.json (``""`` when it has no style)."""
    style = style_of(pass_json)
    return PASS_TYPES[style] if style else ""


def barcode_of(pass_json: dict[str, Any]) -> dict[str, Any]:
    """The first barcode (``barcodes[0]``, else the legacy ``barcode``), or ``{}``."""
    barcodes = pass_json.get("barcodes")
    if isinstance(barcodes, list) and barcodes and isinstance(barcodes[0], dict):
        return barcodes[0]
    barcode = pass_json.get("barcode")
    return barcode if isinstance(barcode, dict) else {}


def text(value: Any) -> str:
    """A documented string value: ``""`` for absent, JSON for structures."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return json.dumps(value)
    return json.dumps(value, ensure_ascii=False)


def _hex_color(value: Any) -> str:
    match = _RGB.match(value) if isinstance(value, str) else None
    if match is None:
        return text(value)
    return "#" + "".join(f"{min(int(part), 255):02x}" for part in match.groups())


def _field(field: Any) -> dict[str, Any]:
    field = field if isinstance(field, dict) else {}
    value = field.get("value")
    if "currencyCode" in field:
        data_type = "CURRENCY"
    elif "dateStyle" in field or "timeStyle" in field:
        data_type = "DATE"
    elif isinstance(value, int | float) and not isinstance(value, bool):
        data_type = "NUMBER"
    else:
        data_type = "TEXT"
    return {
        "label": text(field.get("label")),
        "data": text(value),
        "dataType": data_type,
        "numberFormat": text(field.get("numberStyle")),
        "currency": text(field.get("currencyCode")),
        "dateTimeFormat": text(field.get("dateStyle")),
        "displayRelatively": bool(field.get("isRelative", False)),
        "ignoreTimezone": bool(field.get("ignoresTimeZone", False)),
        "alignment": _ALIGN.get(str(field.get("textAlignment")), "NATURAL"),
        "autolink": list(field.get("dataDetectorTypes") or []),
        "key": text(field.get("key")),
        "changeMessage": text(field.get("changeMessage")),
    }


def _fields(style: dict[str, Any], name: str) -> list[dict[str, Any]]:
    raw = style.get(name)
    return [_field(f) for f in raw] if isinstance(raw, list) else []


def _barcode_details(pass_json: dict[str, Any]) -> dict[str, str]:
    barcode = barcode_of(pass_json)
    fmt = text(barcode.get("format")).removeprefix("PKBarcodeFormat")
    return {
        "barcodeType": fmt.upper() if fmt else "",
        "embeddedMessageType": "MESSAGE" if barcode else "",
        "message": text(barcode.get("message")),
        "alternativeTextType": "MESSAGE_STRING" if barcode.get("altText") else "",
        "alternateText": text(barcode.get("altText")),
        "embeddedFormat": text(barcode.get("messageEncoding")),
    }


def pass_content(pass_json: dict[str, Any], *, serial_number: str) -> dict[str, Any]:
    """``{"passContent": {...}}`` for a pass.json, plus the pass.json itself (``passJson``)."""
    style_key = style_of(pass_json)
    style: dict[str, Any] = pass_json.get(style_key, {}) if style_key else {}
    stores = pass_json.get("associatedStoreIdentifiers")
    locations = pass_json.get("locations")
    beacons = pass_json.get("beacons")
    return {
        "passContent": {
            "basicDetails": {
                "passType": pass_type_constant(pass_json),
                "passTypeIdentifier": text(pass_json.get("passTypeIdentifier")),
                # Not generated by passpost: the serial came with the imported file.
                "passSerialNumberType": "IMPORTED",
                "passSerialNumber": serial_number,
                "groupIdentifier": text(pass_json.get("groupingIdentifier")),
                "appLaunchURL": text(pass_json.get("appLaunchURL")),
                "ituneIdentifiers": ",".join(str(s) for s in stores)
                if isinstance(stores, list)
                else "",
                "eventTicketType": "",
                "webServiceUrl": text(pass_json.get("webServiceURL")),
                "customJsonData": text(pass_json.get("userInfo")),
                "timezone": "",
                "organizationName": text(pass_json.get("organizationName")),
                "description": text(pass_json.get("description")),
            },
            "appearance": {
                "bgColor": _hex_color(pass_json.get("backgroundColor")),
                "labelColor": _hex_color(pass_json.get("labelColor")),
                "valueColor": _hex_color(pass_json.get("foregroundColor")),
                "suppressStripShine": bool(pass_json.get("suppressStripShine", False)),
                "images": [],
            },
            "frontLayout": {
                "logoText": text(pass_json.get("logoText")),
                "transitType": _TRANSIT.get(str(style.get("transitType")), ""),
                "headerFields": _fields(style, "headerFields"),
                "primaryFields": _fields(style, "primaryFields"),
                "auxiliaryFields": _fields(style, "auxiliaryFields"),
                "secondaryFields": _fields(style, "secondaryFields"),
                "barcodeDetails": _barcode_details(pass_json),
            },
            "backLayout": {"fields": _fields(style, "backFields")},
            "passRelevance": {
                "relevantDate": text(pass_json.get("relevantDate")),
                "ignoreTimezone": False,
                "relevantLocations": locations if isinstance(locations, list) else [],
                "relevantBeacons": beacons if isinstance(beacons, list) else [],
                "maxDistance": text(pass_json.get("maxDistance")),
            },
            "passRules": {
                "dateRestriction": "EXPIRES_ON_DATE"
                if pass_json.get("expirationDate")
                else "PERMANENTLY_AVAILABLE",
                "stopAfter": "",
                "expiryDate": text(pass_json.get("expirationDate")),
                "voided": bool(pass_json.get("voided", False)),
            },
            "languageDetails": {"originalFields": [], "languageEntries": "", "passLanguage": ""},
            "passJson": pass_json,
        }
    }
