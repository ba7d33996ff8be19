"""Parse pass.json the way Wallet does (BOM and trailing commas tolerated) and check its rules."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from passpost.pkpass.report import Finding, PassIdentity

STYLE_KEYS = ("boardingPass", "coupon", "eventTicket", "generic", "storeCard")
REQUIRED_STRING_KEYS = (
    "passTypeIdentifier",
    "serialNumber",
    "teamIdentifier",
    "organizationName",
    "description",
)
TRANSIT_TYPES = (
    "PKTransitTypeAir",
    "PKTransitTypeBoat",
    "PKTransitTypeBus",
    "PKTransitTypeGeneric",
    "PKTransitTypeTrain",
)
MIN_AUTH_TOKEN_LENGTH = 16
# Real passes nest 7 levels at most (style → fields → field → semantics → seats → seat).
MAX_DEPTH = 20
# Characters. The identifiers and the token are stored in 255-character columns; names
# shown on the lock screen need no more than a sentence; a back field's terms may be long.
MAX_LENGTHS = {
    "passTypeIdentifier": 255,
    "serialNumber": 255,
    "authenticationToken": 255,
    "teamIdentifier": 64,
    "organizationName": 1000,
    "description": 1000,
}
MAX_STRING_LENGTH = 65536
_LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
_LPROJ = re.compile(r"^[^/]+\.lproj/")
_BOM = b"\xef\xbb\xbf"


class JsonProblem(ValueError):
    """A document that is not JSON even leniently; the message is one sentence."""


def parse_lenient(raw: bytes) -> tuple[Any, bool, bool]:
    """Decode JSON like Wallet: returns (value, had_bom, had_trailing_commas)."""
    had_bom = raw.startswith(_BOM)
    try:
        text = raw[len(_BOM) :].decode("utf-8") if had_bom else raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise JsonProblem(f"it is not valid UTF-8 (byte {exc.start})") from exc
    try:
        return json.loads(text), had_bom, False
    except RecursionError as exc:
        raise JsonProblem("it is nested too deeply") from exc
    except ValueError as first:
        cleaned = strip_trailing_commas(text)
        if cleaned == text:
            raise JsonProblem(_json_error(first)) from first
        try:
            return json.loads(cleaned), had_bom, True
        except RecursionError as exc:
            raise JsonProblem("it is nested too deeply") from exc
        except ValueError:
            raise JsonProblem(_json_error(first)) from first


def _json_error(exc: ValueError) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    return str(exc)


def strip_trailing_commas(text: str) -> str:
    """Remove commas that directly precede ``}`` or ``]`` outside strings."""
    out: list[str] = []
    in_string = False
    escaped = False
    pending_comma = -1  # index in out of a comma that may turn out to be trailing
    for ch in text:
        if in_string:
            out.append(ch)
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
            continue
        if ch in "}]" and pending_comma >= 0:
            out[pending_comma] = ""
        if not ch.isspace():
            pending_comma = -1
        if ch == ",":
            pending_comma = len(out)
        elif ch == '"':
            in_string = True
        out.append(ch)
    return "".join(out)


def load_pass_json(files: Mapping[str, bytes]) -> tuple[dict[str, Any] | None, list[Finding]]:
    """Parse pass.json: the dict (None when unusable) and the findings on how it is written."""
    raw = files.get("pass.json")
    if raw is None:
        return None, [
            Finding(
                "PASS_JSON_MISSING",
                "error",
                "The pass has no pass.json at the top level of the archive.",
                ("pass.json",),
            )
        ]
    try:
        value, had_bom, had_commas = parse_lenient(raw)
    except JsonProblem as exc:
        return None, [_invalid(f"pass.json is not valid JSON: {exc}.")]
    if not isinstance(value, dict):
        return None, [_invalid("pass.json must contain a JSON object.")]
    if nesting_depth(value, stop_at=MAX_DEPTH) > MAX_DEPTH:
        too_deep = f"pass.json nests lists or objects more than {MAX_DEPTH} levels deep."
        return None, [Finding("PASS_JSON_TOO_DEEP", "error", too_deep, ("pass.json",))]
    findings = []
    if had_bom:
        findings.append(
            Finding(
                "PASS_JSON_BOM",
                "warning",
                "pass.json starts with a UTF-8 byte order mark; Wallet accepts it.",
                ("pass.json",),
            )
        )
    if had_commas:
        findings.append(
            Finding(
                "PASS_JSON_TRAILING_COMMA",
                "warning",
                "pass.json has trailing commas, which strict JSON forbids; Wallet accepts them.",
                ("pass.json",),
            )
        )
    return value, findings


def nesting_depth(value: Any, *, stop_at: int) -> int:
    """How deeply lists and objects nest (iteratively; stops once past ``stop_at``)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack and deepest <= stop_at:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        deepest = max(deepest, depth)
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return deepest


def _invalid(message: str) -> Finding:
    return Finding("PASS_JSON_INVALID", "error", message, ("pass.json",))


def check_pass(pass_json: Mapping[str, Any]) -> list[Finding]:
    """The rules of SPEC §7 on pass.json's content."""
    findings = _check_required(pass_json)
    findings += _check_lengths(pass_json)
    findings += _check_style(pass_json)
    findings += _check_web_service(pass_json)
    return findings


def _check_required(pass_json: Mapping[str, Any]) -> list[Finding]:
    findings = []
    if "formatVersion" not in pass_json:
        findings.append(_key("PASS_MISSING_KEY", "pass.json has no formatVersion."))
    elif type(pass_json["formatVersion"]) is not int or pass_json["formatVersion"] != 1:
        findings.append(
            _key(
                "PASS_FORMAT_VERSION_INVALID",
                f"formatVersion must be the number 1, not {pass_json['formatVersion']!r}.",
            )
        )
    for key in REQUIRED_STRING_KEYS:
        value = pass_json.get(key)
        if key not in pass_json:
            findings.append(_key("PASS_MISSING_KEY", f"pass.json has no {key}."))
        elif key == "description" and isinstance(value, str) and value and not value.strip():
            findings.append(
                Finding(
                    "PASS_DESCRIPTION_BLANK",
                    "warning",
                    "description is only whitespace; Wallet accepts it, but VoiceOver "
                    "reads nothing for this pass.",
                    ("pass.json",),
                )
            )
        elif not isinstance(value, str) or not value.strip():
            findings.append(_key("PASS_KEY_INVALID", f"{key} must be a non-empty string."))
    return findings


def _check_lengths(pass_json: Mapping[str, Any]) -> list[Finding]:
    findings = []
    for key, limit in MAX_LENGTHS.items():
        value = pass_json.get(key)
        if isinstance(value, str) and len(value) > limit:
            findings.append(_too_long(key, len(value), limit))
    stack: list[Any] = [pass_json]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.items())
        elif isinstance(item, list | tuple):
            stack.extend(item)
        elif isinstance(item, str) and len(item) > MAX_STRING_LENGTH:
            findings.append(
                _too_long(f"a string starting {item[:20]!r}", len(item), MAX_STRING_LENGTH)
            )
    return findings


def _too_long(what: str, length: int, limit: int) -> Finding:
    return _key(
        "PASS_VALUE_TOO_LONG",
        f"{what} is {length} characters long in pass.json; the limit is {limit}.",
    )


def _check_style(pass_json: Mapping[str, Any]) -> list[Finding]:
    styles = [key for key in STYLE_KEYS if key in pass_json]
    if not styles:
        return [
            _key(
                "PASS_STYLE_MISSING",
                "pass.json has no style key; it needs exactly one of "
                + ", ".join(STYLE_KEYS)
                + ".",
            )
        ]
    if len(styles) > 1:
        return [
            _key(
                "PASS_STYLE_MULTIPLE",
                "pass.json has several style keys ("
                + ", ".join(styles)
                + "); it needs exactly one.",
            )
        ]
    style = pass_json[styles[0]]
    if not isinstance(style, dict):
        return [_key("PASS_KEY_INVALID", f"{styles[0]} must be a JSON object.")]
    if styles[0] != "boardingPass":
        return []
    if "transitType" not in style:
        return [_key("PASS_TRANSIT_TYPE_MISSING", "The boardingPass has no transitType.")]
    if style["transitType"] not in TRANSIT_TYPES:
        return [
            _key(
                "PASS_TRANSIT_TYPE_INVALID",
                f"transitType {style['transitType']!r} is not one of "
                + ", ".join(TRANSIT_TYPES)
                + ".",
            )
        ]
    return []


def _check_web_service(pass_json: Mapping[str, Any]) -> list[Finding]:
    url = pass_json.get("webServiceURL")
    token = pass_json.get("authenticationToken")
    if url is None:
        if token is not None:
            return [
                Finding(
                    "PASS_AUTH_TOKEN_UNUSED",
                    "warning",
                    "pass.json has an authenticationToken but no webServiceURL; it is ignored.",
                    ("pass.json",),
                )
            ]
        return []
    findings = _check_url(url)
    if token is None:
        findings.append(
            _key(
                "PASS_AUTH_TOKEN_MISSING",
                "webServiceURL is set, so authenticationToken is required.",
            )
        )
    elif not isinstance(token, str) or len(token) < MIN_AUTH_TOKEN_LENGTH:
        findings.append(
            _key(
                "PASS_AUTH_TOKEN_SHORT",
                "authenticationToken must be a string of at least "
                f"{MIN_AUTH_TOKEN_LENGTH} characters.",
            )
        )
    return findings


def _check_url(url: object) -> list[Finding]:
    parts = None
    if isinstance(url, str):
        try:
            parts = urlsplit(url)
            host = parts.hostname
        except ValueError:
            parts = None
    if parts is None or not host:
        return [_key("PASS_WEB_SERVICE_INVALID", f"webServiceURL {url!r} is not a URL.")]
    if parts.scheme == "https":
        return []
    if parts.scheme == "http" and host in _LOCAL_HOSTS:
        return [
            Finding(
                "PASS_WEB_SERVICE_INSECURE",
                "warning",
                f"webServiceURL {url!r} is plain http; only acceptable for local development.",
                ("pass.json",),
            )
        ]
    return [
        _key(
            "PASS_WEB_SERVICE_INVALID",
            f"webServiceURL {url!r} must use https (http only for localhost).",
        )
    ]


def _key(code: str, message: str) -> Finding:
    return Finding(code, "error", message, ("pass.json",))


def check_icon(files: Mapping[str, bytes]) -> list[Finding]:
    """Wallet refuses a pass without icon.png (a localised one in xx.lproj/ also counts)."""
    for name in files:
        localised = _LPROJ.match(name) and name.count("/") == 1 and name.endswith("/icon.png")
        if name == "icon.png" or localised:
            return []
    return [
        Finding(
            "ICON_MISSING",
            "error",
            "The pass has no icon.png, which Wallet requires.",
            ("icon.png",),
        )
    ]


def identity_of(pass_json: Mapping[str, Any]) -> PassIdentity:
    """The identity fields, as strings ('' when absent or not a string)."""

    def text(key: str) -> str:
        value = pass_json.get(key)
        return value if isinstance(value, str) else ""

    styles = [key for key in STYLE_KEYS if key in pass_json]
    return PassIdentity(
        pass_type_identifier=text("passTypeIdentifier"),
        serial_number=text("serialNumber"),
        team_identifier=text("teamIdentifier"),
        style=styles[0] if len(styles) == 1 else None,
        organization_name=text("organizationName"),
        description=text("description"),
    )
