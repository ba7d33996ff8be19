"""Templates with ``##NAME##`` placeholders, filled into one pass per holder (SPEC §11).

Pure functions over a pass's files: no database, no signing. ``pass.json`` is filled value by
value inside the parsed JSON (a value with a quote cannot break the document), each
``xx.lproj/pass.strings`` in its own text encoding with its string escaping.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from passpost.pkpass.manifest import UNSIGNED_NAMES
from passpost.pkpass.passjson import JsonProblem, parse_lenient

PLACEHOLDER = re.compile(r"##([^#\r\n]{1,100}?)##")
_STRINGS = re.compile(r"^[^/]+\.lproj/pass\.strings$")
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")

# Placeholders of the messages (download links), never of a pass.
_MESSAGE_ONLY = frozenset({"email pass link", "sms pass link"})


class TemplateError(ValueError):
    """A template that cannot be filled: the message is one sentence."""


class MissingValue(TemplateError):
    """A placeholder with no value for this holder; ``name`` is the placeholder."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no value for the placeholder ##{name}##")
        self.name = name


@dataclass(frozen=True)
class Holder:
    """What a holder's pass is filled with: the attributes and the request's ``fields``."""

    audience_id: str
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    mobile_number: str | None = None
    fields: Mapping[str, Any] | None = None


def is_template_file(name: str) -> bool:
    """True for the files that may hold placeholders: pass.json and the pass.strings files."""
    return name == "pass.json" or bool(_STRINGS.match(name))


def placeholders(files: Mapping[str, bytes]) -> frozenset[str]:
    """Every placeholder name used in pass.json and the pass.strings files."""
    found: set[str] = set()
    for name, data in files.items():
        if is_template_file(name):
            found.update(PLACEHOLDER.findall(_decode(name, data)[0]))
    return frozenset(n for n in found if n.strip().lower() not in _MESSAGE_ONLY)


def values_for(names: Iterable[str], holder: Holder, *, serial_number: str) -> dict[str, str]:
    """The value of each placeholder for one holder; ``MissingValue`` for the first unknown.

    A key of ``fields`` wins over an attribute of the same name: the request said it.
    """
    attributes = {
        "first name": holder.first_name,
        "last name": holder.last_name,
        "email": holder.email,
        "mobile number": holder.mobile_number,
        "audience id": holder.audience_id,
        "serial number": serial_number,
    }
    fields = holder.fields or {}
    values: dict[str, str] = {}
    for name in sorted(names):
        value = fields.get(name)
        if value is None:
            value = attributes.get(name.strip().lower())
        if value is None or (isinstance(value, str) and not value.strip()):
            raise MissingValue(name)
        values[name] = value if isinstance(value, str) else json.dumps(value)
    return values


def sample_values(names: Iterable[str]) -> dict[str, str]:
    """Stand-in values to validate a template with (every placeholder gets one)."""
    return {name: f"sample-{index}" for index, name in enumerate(sorted(names))}


def fill_text(text: str, values: Mapping[str, str]) -> str:
    """``text`` with each placeholder replaced; ``MissingValue`` when one has no value."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.strip().lower() in _MESSAGE_ONLY:
            return match.group(0)
        if name not in values:
            raise MissingValue(name)
        return values[name]

    return PLACEHOLDER.sub(replace, text)


def fill_pass_json(pass_json: Any, values: Mapping[str, str]) -> Any:
    """A copy of the parsed pass.json with every string value filled (keys are kept)."""
    if isinstance(pass_json, str):
        return fill_text(pass_json, values)
    if isinstance(pass_json, list):
        return [fill_pass_json(item, values) for item in pass_json]
    if isinstance(pass_json, dict):
        return {key: fill_pass_json(item, values) for key, item in pass_json.items()}
    return pass_json


def load_template_json(files: Mapping[str, bytes]) -> dict[str, Any]:
    """The template's pass.json as a dict (leniently, like Wallet); ``TemplateError`` if not."""
    raw = files.get("pass.json")
    if raw is None:
        raise TemplateError("the template has no pass.json")
    try:
        value, _, _ = parse_lenient(raw)
    except JsonProblem as exc:
        raise TemplateError(f"pass.json is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise TemplateError("pass.json must contain a JSON object")
    return value


def personal_files(
    files: Mapping[str, bytes],
    values: Mapping[str, str],
    *,
    serial_number: str,
    authentication_token: str,
    web_service_url: str,
) -> tuple[dict[str, bytes], dict[str, Any]]:
    """One holder's files (unsigned: no manifest or signature) and their pass.json.

    The serial, token and web service are set after filling, so a template cannot
    override them; every other byte comes from the template.
    """
    pass_json = fill_pass_json(load_template_json(files), values)
    pass_json["serialNumber"] = serial_number
    pass_json["authenticationToken"] = authentication_token
    pass_json["webServiceURL"] = web_service_url
    out: dict[str, bytes] = {}
    for name, data in files.items():
        if name in UNSIGNED_NAMES:
            continue
        if name == "pass.json":
            out[name] = json.dumps(pass_json, ensure_ascii=False, indent=2).encode("utf-8")
        elif is_template_file(name):
            out[name] = fill_strings(name, data, values)
        else:
            out[name] = data
    return out, pass_json


def fill_strings(name: str, data: bytes, values: Mapping[str, str]) -> bytes:
    """A pass.strings file filled, in its own encoding, values escaped as strings-file text."""
    text, encoding = _decode(name, data)
    escaped = {key: _escape_strings(value) for key, value in values.items()}
    filled = fill_text(text, escaped)
    return filled.encode(encoding)


def _escape_strings(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _decode(name: str, data: bytes) -> tuple[str, str]:
    """Text and encoding; pass.strings may be UTF-16 (with a BOM) or UTF-8."""
    if name != "pass.json" and data.startswith(_UTF16_BOMS):
        return data.decode("utf-16"), "utf-16"
    try:
        return data.decode("utf-8-sig"), "utf-8-sig" if data.startswith(
            b"\xef\xbb\xbf"
        ) else "utf-8"
    except UnicodeDecodeError as exc:
        raise TemplateError(f"{name} is neither UTF-8 nor UTF-16 text") from exc
