"""The original API's generated passes (SPEC §12): its JSON objects mapped to a pass.json.

Pure functions: ``basicDetails``, ``appearance``, ``frontLayout``, ``backLayout``,
``passRelevance``, ``passRules`` and ``languageDetails`` become pass.json keys, strings
files and the list of images to add. The original's constants are accepted ignoring case,
``-``/``_``/spaces, and also by their PassKit names; an unknown value is a
``GenerationError`` that lists the accepted ones. Values may hold ``##placeholders##``:
the result is a template, filled per recipient (SPEC §11).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class GenerationError(ValueError):
    """A value the generation cannot map; the message is one sentence naming the key."""


def _norm(value: str) -> str:
    return re.sub(r"[\s_\-]+", "", value).lower()


@dataclass(frozen=True)
class Constants:
    """One of the original's constant sets: its names (and PassKit's) → the PassKit value."""

    name: str
    values: Mapping[str, str]

    def map(self, value: Any, where: str) -> str:
        """The PassKit value of ``value``; ``GenerationError`` listing the accepted names."""
        if isinstance(value, str):
            found = {_norm(k): v for k, v in self.values.items()}.get(_norm(value))
            if found is not None:
                return found
        accepted = ", ".join(sorted(self.values))
        raise GenerationError(
            f"{where}: {value!r} is not a {self.name}; accepted (any case): {accepted}"
        )


PASS_TYPE = Constants(
    "PassType",
    {
        "BOARDING": "boardingPass",
        "BOARDING_PASS": "boardingPass",
        "boardingPass": "boardingPass",
        "COUPON": "coupon",
        "EVENT_TICKET": "eventTicket",
        "eventTicket": "eventTicket",
        "STORE_CARD": "storeCard",
        "storeCard": "storeCard",
        "GENERIC": "generic",
        "MEMBERSHIP": "generic",
    },
)
TRANSIT_TYPE = Constants(
    "TransitType",
    {
        "AIR": "PKTransitTypeAir",
        "BOAT": "PKTransitTypeBoat",
        "BUS": "PKTransitTypeBus",
        "TRAIN": "PKTransitTypeTrain",
        "GENERIC": "PKTransitTypeGeneric",
        **{f"PKTransitType{t}": f"PKTransitType{t}" for t in ("Air", "Boat", "Bus", "Train")},
        "PKTransitTypeGeneric": "PKTransitTypeGeneric",
    },
)
IMAGE_TYPE = Constants(
    "ImageType",
    {name.upper(): name for name in ("icon", "logo", "strip", "background", "thumbnail", "footer")},
)
BARCODE_TYPE = Constants(
    "BarcodeType",
    {
        "QR": "PKBarcodeFormatQR",
        "PDF417": "PKBarcodeFormatPDF417",
        "AZTEC": "PKBarcodeFormatAztec",
        "CODE128": "PKBarcodeFormatCode128",
        **{f"PKBarcodeFormat{t}": f"PKBarcodeFormat{t}" for t in ("QR", "PDF417", "Aztec")},
        "PKBarcodeFormatCode128": "PKBarcodeFormatCode128",
    },
)
ENCODING_TYPE = Constants(
    "EncodingType",
    {
        "ISO_8859_1": "iso-8859-1",
        "iso-8859-1": "iso-8859-1",
        "LATIN1": "iso-8859-1",
        "UTF_8": "utf-8",
        "utf-8": "utf-8",
    },
)
ALIGNMENT = Constants(
    "PassFieldAlignment",
    {
        **{t.upper(): f"PKTextAlignment{t}" for t in ("Left", "Center", "Right", "Natural")},
        **{f"PKTextAlignment{t}": f"PKTextAlignment{t}" for t in ("Left", "Center", "Right")},
        "PKTextAlignmentNatural": "PKTextAlignmentNatural",
    },
)
DATA_DETECTOR = Constants(
    "DataDetectorType",
    {
        "PHONE_NUMBER": "PKDataDetectorTypePhoneNumber",
        "LINK": "PKDataDetectorTypeLink",
        "ADDRESS": "PKDataDetectorTypeAddress",
        "CALENDAR_EVENT": "PKDataDetectorTypeCalendarEvent",
        **{
            f"PKDataDetectorType{t}": f"PKDataDetectorType{t}"
            for t in ("PhoneNumber", "Link", "Address", "CalendarEvent")
        },
    },
)
DATE_STYLE = Constants(
    "DateFormatType",
    {
        **{t.upper(): f"PKDateStyle{t}" for t in ("None", "Short", "Medium", "Long", "Full")},
        **{f"PKDateStyle{t}": f"PKDateStyle{t}" for t in ("None", "Short", "Medium", "Long")},
        "PKDateStyleFull": "PKDateStyleFull",
    },
)
NUMBER_STYLE = Constants(
    "NumberFormatType",
    {
        **{
            t.upper(): f"PKNumberStyle{t}" for t in ("Decimal", "Percent", "Scientific", "SpellOut")
        },
        "SPELL_OUT": "PKNumberStyleSpellOut",
        **{
            f"PKNumberStyle{t}": f"PKNumberStyle{t}"
            for t in ("Decimal", "Percent", "Scientific", "SpellOut")
        },
    },
)
DATA_TYPE = Constants(
    "PassDataType",
    {"TEXT": "text", "STRING": "text", "NUMBER": "number", "CURRENCY": "currency", "DATE": "date"},
)
SERIAL_TYPE = Constants(
    "PassSerialNumberType",
    {
        "AUTO": "auto",
        "AUTO_GENERATED": "auto",
        "AUTOGENERATE": "auto",
        "CUSTOM": "custom",
        "MANUAL": "custom",
        "USER_DEFINED": "custom",
    },
)
BARCODE_TEXT = Constants(
    "BarcodeMsgType",
    {
        "CUSTOM": "custom",
        "TEXT": "custom",
        "SERIAL_NUMBER": "serial",
        "NONE": "none",
    },
)
# Every constant set, by the name the pages use (for the 400 and the fixtures).
CONSTANTS = {
    c.name: c
    for c in (
        PASS_TYPE,
        TRANSIT_TYPE,
        IMAGE_TYPE,
        BARCODE_TYPE,
        ENCODING_TYPE,
        ALIGNMENT,
        DATA_DETECTOR,
        DATE_STYLE,
        NUMBER_STYLE,
        DATA_TYPE,
        SERIAL_TYPE,
        BARCODE_TEXT,
    )
}
# The pages' date format: "09/18/2014 12:00:00 AM" (month first, 12-hour clock).
DATE_FORMATS = ("%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y")
_HEX = re.compile(r"^#?([0-9a-fA-F]{6})$")
FIELD_SECTIONS = ("headerFields", "primaryFields", "secondaryFields", "auxiliaryFields")


@dataclass(frozen=True)
class ImageRef:
    """An image the pass needs: its file name and where its bytes come from."""

    filename: str  # e.g. "logo.png", "fr.lproj/logo.png"
    field_name: str | None = None  # a multipart part (imageFieldName)
    url: str | None = None
    image_id: str | None = None


@dataclass
class Generated:
    """What the objects make: pass.json, pass.strings per language, the images to fetch."""

    pass_json: dict[str, Any]
    strings: dict[str, str] = field(default_factory=dict)  # "fr.lproj/pass.strings" → text
    images: list[ImageRef] = field(default_factory=list)


def _text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else json.dumps(value)


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


def _color(value: Any, where: str) -> str | None:
    text = _text(value)
    if text is None:
        return None
    if text.startswith("rgb("):
        return text
    match = _HEX.match(text.strip())
    if not match:
        raise GenerationError(f"{where}: {text!r} is not a hexadecimal color like #1a2b3c")
    rgb = bytes.fromhex(match.group(1))
    return f"rgb({rgb[0]}, {rgb[1]}, {rgb[2]})"


def parse_date(value: Any, where: str, *, timezone: str | None = None) -> str | None:
    """A date of the pages ("09/18/2014 12:00:00 AM") as a W3C date with a UTC offset."""
    text = _text(value)
    if text is None:
        return None
    moment = None
    for pattern in DATE_FORMATS:
        try:
            moment = datetime.strptime(text.strip(), pattern)
            break
        except ValueError:
            continue
    if moment is None:
        try:
            moment = datetime.fromisoformat(text.strip())
        except ValueError:
            raise GenerationError(
                f"{where}: {text!r} is not a date like 09/18/2014 12:00:00 AM"
            ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_zone(timezone))
    return moment.isoformat()


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name) if name else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise GenerationError(f"basicDetails.timezone: {name!r} is not an IANA time zone") from None


def _field(raw: Mapping[str, Any], where: str, timezone: str | None) -> dict[str, Any]:
    key = _text(raw.get("key"))
    if not key:
        raise GenerationError(f"{where}.key is required")
    out: dict[str, Any] = {"key": key}
    label = _text(raw.get("label"))
    if label is not None:
        out["label"] = label
    data = raw.get("data")
    kind = DATA_TYPE.map(raw["dataType"], f"{where}.dataType") if raw.get("dataType") else "text"
    if kind == "date":
        out["value"] = parse_date(data, f"{where}.data", timezone=timezone) or ""
        style = raw.get("dateTimeFormat")
        if style:
            out["dateStyle"] = out["timeStyle"] = DATE_STYLE.map(style, f"{where}.dateTimeFormat")
        if raw.get("displayRelatively") is not None:
            out["isRelative"] = _flag(raw.get("displayRelatively"))
        if raw.get("ignoreTimezone") is not None:
            out["ignoresTimeZone"] = _flag(raw.get("ignoreTimezone"))
    elif kind in ("number", "currency"):
        out["value"] = _number(data, f"{where}.data")
        if kind == "currency":
            out["currencyCode"] = _text(raw.get("currency")) or "USD"
        elif raw.get("numberFormat"):
            out["numberStyle"] = NUMBER_STYLE.map(raw["numberFormat"], f"{where}.numberFormat")
    else:
        out["value"] = _text(data) or ""
    if raw.get("alignment"):
        out["textAlignment"] = ALIGNMENT.map(raw["alignment"], f"{where}.alignment")
    if raw.get("autolink"):
        detectors = raw["autolink"] if isinstance(raw["autolink"], list) else [raw["autolink"]]
        out["dataDetectorTypes"] = [DATA_DETECTOR.map(d, f"{where}.autolink") for d in detectors]
    return out


def _number(value: Any, where: str) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    text = _text(value)
    if text is not None and "##" in text:
        return text  # a placeholder: filled per recipient
    try:
        number = float(text or "")
    except ValueError:
        raise GenerationError(f"{where}: {text!r} is not a number") from None
    return int(number) if number.is_integer() else number


def _fields(items: Any, where: str, timezone: str | None) -> list[dict[str, Any]]:
    if items is None:
        return []
    if not isinstance(items, list):
        raise GenerationError(f"{where} must be a list of fields")
    return [_field(item, f"{where}[{i}]", timezone) for i, item in enumerate(items)]


def _images(items: Any, where: str, folder: str = "") -> list[ImageRef]:
    refs: list[ImageRef] = []
    for index, item in enumerate(items or []):
        here = f"{where}[{index}]"
        if not isinstance(item, Mapping):
            raise GenerationError(f"{here} must be an object")
        name = IMAGE_TYPE.map(item.get("imageType"), f"{here}.imageType")
        field_name = _text(item.get("imageFieldName"))
        url = _text(item.get("url"))
        image_id = _text(item.get("imageId"))
        if not (field_name or url or image_id):
            raise GenerationError(f"{here} needs an imageFieldName, an imageId or a url")
        refs.append(ImageRef(f"{folder}{name}.png", field_name, url, image_id))
    return refs


def _barcode(details: Any, where: str) -> dict[str, Any] | None:
    if not isinstance(details, Mapping) or not details.get("barcodeType"):
        return None
    message_kind = BARCODE_TEXT.map(
        details.get("embeddedMessageType") or "CUSTOM", f"{where}.embeddedMessageType"
    )
    message = "##Serial Number##" if message_kind == "serial" else _text(details.get("message"))
    if not message:
        raise GenerationError(f"{where}.message is required for a barcode")
    barcode: dict[str, Any] = {
        "format": BARCODE_TYPE.map(details["barcodeType"], f"{where}.barcodeType"),
        "message": message,
        "messageEncoding": ENCODING_TYPE.map(
            details.get("embeddedFormat") or "ISO_8859_1", f"{where}.embeddedFormat"
        ),
    }
    alt_kind = BARCODE_TEXT.map(
        details.get("alternativeTextType") or "CUSTOM", f"{where}.alternativeTextType"
    )
    alt = "##Serial Number##" if alt_kind == "serial" else _text(details.get("alternateText"))
    if alt and alt_kind != "none":
        barcode["altText"] = alt
    return barcode


def generate(content: Mapping[str, Any], *, team_identifier: str, serial_number: str) -> Generated:
    """pass.json, strings and image list of a ``passContent`` (``GenerationError`` if bad).

    ``serial_number`` is used when ``passSerialNumberType`` is automatic or absent.
    """
    basic = _object(content, "basicDetails", required=True)
    style = PASS_TYPE.map(basic.get("passType"), "basicDetails.passType")
    timezone = _text(basic.get("timezone"))
    if timezone:
        _zone(timezone)
    pass_json: dict[str, Any] = {
        "formatVersion": 1,
        "passTypeIdentifier": _required(basic, "passTypeIdentifier", "basicDetails"),
        "serialNumber": _serial(basic, serial_number),
        "teamIdentifier": team_identifier,
        "organizationName": _required(basic, "organizationName", "basicDetails"),
        "description": _required(basic, "description", "basicDetails"),
    }
    _basic_extras(pass_json, basic)
    images = _appearance(pass_json, _object(content, "appearance"))
    front = _object(content, "frontLayout")
    body: dict[str, Any] = {}
    for section in FIELD_SECTIONS:
        fields = _fields(front.get(section), f"frontLayout.{section}", timezone)
        if fields:
            body[section] = fields
    back = _object(content, "backLayout")
    back_fields = _fields(back.get("fields"), "backLayout.fields", timezone)
    if back_fields:
        body["backFields"] = back_fields
    if style == "boardingPass":
        body["transitType"] = TRANSIT_TYPE.map(
            front.get("transitType") or "GENERIC", "frontLayout.transitType"
        )
    pass_json[style] = body
    logo_text = _text(front.get("logoText"))
    if logo_text:
        pass_json["logoText"] = logo_text
    barcode = _barcode(front.get("barcodeDetails"), "frontLayout.barcodeDetails")
    if barcode:
        pass_json["barcodes"] = [barcode]
        pass_json["barcode"] = barcode  # iOS 8 and earlier read only this key
    _relevance(pass_json, _object(content, "passRelevance"), timezone)
    _rules(pass_json, _object(content, "passRules"), timezone)
    strings, language_images = _languages(_object(content, "languageDetails"))
    return Generated(pass_json, strings, images + language_images)


def _object(content: Mapping[str, Any], key: str, *, required: bool = False) -> Mapping[str, Any]:
    value = content.get(key)
    if value is None and not required:
        return {}
    if not isinstance(value, Mapping):
        raise GenerationError(f"passContent.{key} must be an object")
    return value


def _required(obj: Mapping[str, Any], key: str, where: str) -> str:
    value = _text(obj.get(key))
    if not value:
        raise GenerationError(f"{where}.{key} is required")
    return value


def _serial(basic: Mapping[str, Any], generated: str) -> str:
    kind = basic.get("passSerialNumberType")
    given = _text(basic.get("passSerialNumber"))
    if kind and SERIAL_TYPE.map(kind, "basicDetails.passSerialNumberType") == "custom":
        if not given:
            raise GenerationError("basicDetails.passSerialNumber is required for a custom serial")
        return given
    return given if kind is None and given else generated


def _basic_extras(pass_json: dict[str, Any], basic: Mapping[str, Any]) -> None:
    group = _text(basic.get("groupIdentifier"))
    if group:
        pass_json["groupingIdentifier"] = group
    launch = _text(basic.get("appLaunchURL"))
    if launch:
        pass_json["appLaunchURL"] = launch
    itunes = _text(basic.get("ituneIdentifiers"))
    if itunes:
        try:
            pass_json["associatedStoreIdentifiers"] = [
                int(i) for i in itunes.replace(" ", "").split(",") if i
            ]
        except ValueError:
            raise GenerationError(
                "basicDetails.ituneIdentifiers must be comma-separated numbers"
            ) from None
    custom = basic.get("customJsonData")
    if custom:
        try:
            pass_json["userInfo"] = json.loads(custom) if isinstance(custom, str) else custom
        except ValueError:
            raise GenerationError("basicDetails.customJsonData is not valid JSON") from None


def _appearance(pass_json: dict[str, Any], appearance: Mapping[str, Any]) -> list[ImageRef]:
    for source, key in (
        ("bgColor", "backgroundColor"),
        ("labelColor", "labelColor"),
        ("valueColor", "foregroundColor"),
    ):
        color = _color(appearance.get(source), f"appearance.{source}")
        if color:
            pass_json[key] = color
    if appearance.get("suppressStripShine") is not None:
        pass_json["suppressStripShine"] = _flag(appearance.get("suppressStripShine"))
    return _images(appearance.get("images"), "appearance.images")


def _relevance(
    pass_json: dict[str, Any], relevance: Mapping[str, Any], timezone: str | None
) -> None:
    date = parse_date(
        relevance.get("relevantDate"), "passRelevance.relevantDate", timezone=timezone
    )
    if date:
        pass_json["relevantDate"] = date
    locations = [
        _location(item, f"passRelevance.relevantLocations[{i}]")
        for i, item in enumerate(relevance.get("relevantLocations") or [])
    ]
    if locations:
        pass_json["locations"] = locations
    if relevance.get("maxDistance") not in (None, ""):
        pass_json["maxDistance"] = _number(
            relevance.get("maxDistance"), "passRelevance.maxDistance"
        )
    beacons = [
        _beacon(item, f"passRelevance.relevantBeacons[{i}]")
        for i, item in enumerate(relevance.get("relevantBeacons") or [])
    ]
    if beacons:
        pass_json["beacons"] = beacons


def _location(item: Any, where: str) -> dict[str, Any]:
    # The original refers to locations stored in its console by id; passpost has no such
    # store, so a location carries its coordinates itself.
    if not isinstance(item, Mapping) or item.get("latitude") is None:
        raise GenerationError(
            f"{where} needs latitude and longitude (stored location ids are not supported)"
        )
    location = {
        "latitude": _number(item.get("latitude"), f"{where}.latitude"),
        "longitude": _number(item.get("longitude"), f"{where}.longitude"),
    }
    if _text(item.get("relevantText")):
        location["relevantText"] = item["relevantText"]
    return location


def _beacon(item: Any, where: str) -> dict[str, Any]:
    if not isinstance(item, Mapping) or not _text(item.get("proximityUUID")):
        raise GenerationError(
            f"{where} needs a proximityUUID (stored beacon ids are not supported)"
        )
    beacon: dict[str, Any] = {"proximityUUID": item["proximityUUID"]}
    for key in ("major", "minor"):
        if item.get(key) is not None:
            beacon[key] = int(_number(item[key], f"{where}.{key}"))
    if _text(item.get("relevantText")):
        beacon["relevantText"] = item["relevantText"]
    return beacon


def _rules(pass_json: dict[str, Any], rules: Mapping[str, Any], timezone: str | None) -> None:
    expiry = parse_date(rules.get("expiryDate"), "passRules.expiryDate", timezone=timezone)
    if expiry:
        pass_json["expirationDate"] = expiry
    if rules.get("voided") is not None and _flag(rules.get("voided")):
        pass_json["voided"] = True


def _languages(details: Mapping[str, Any]) -> tuple[dict[str, str], list[ImageRef]]:
    """``originalFields`` + per language ``data[i].localText`` → ``xx.lproj/pass.strings``."""
    originals = details.get("originalFields") or []
    if not isinstance(originals, list):
        raise GenerationError("languageDetails.originalFields must be a list")
    strings: dict[str, str] = {}
    images: list[ImageRef] = []
    for index, entry in enumerate(details.get("languageEntries") or []):
        where = f"languageDetails.languageEntries[{index}]"
        language = _language(entry.get("language") if isinstance(entry, Mapping) else None, where)
        data = entry.get("data") or []
        if len(data) > len(originals):
            raise GenerationError(f"{where}.data has more entries than originalFields")
        lines = [
            f'"{_escape(str(original))}" = "{_escape(str(item.get("localText", "")))}";'
            for original, item in zip(originals, data, strict=False)
            if isinstance(item, Mapping)
        ]
        strings[f"{language}.lproj/pass.strings"] = "\n".join(lines) + "\n"
        images += _images(entry.get("images"), f"{where}.images", f"{language}.lproj/")
    return strings, images


def _language(value: Any, where: str) -> str:
    text = _text(value)
    if not text or not re.fullmatch(r"[A-Za-z]{2,3}([_-][A-Za-z0-9]{2,4})?", text):
        raise GenerationError(
            f"{where}.language: {value!r} is not a language code like fr or pt-BR"
        )
    return text.replace("_", "-")


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
