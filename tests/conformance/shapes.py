"""Checks an answer against a fixture written from the original API's pages.

A fixture names the documented keys of an answer and their types; ``check`` asserts
that every one of them is present with that type (extra keys are passpost's additions
and allowed), that documented constants (messages) are exact, and that enumerated
values are among the documented ones.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures"


def load(name: str) -> dict[str, Any]:
    """The fixture ``fixtures/<name>.json``."""
    return json.loads((FIXTURES / f"{name}.json").read_text())


def is_type(value: Any, kind: str) -> bool:
    """True when ``value`` has the page's type (``long`` ids may be decimal strings)."""
    if kind == "long":
        if isinstance(value, bool):
            return False
        return isinstance(value, int) or (isinstance(value, str) and value.isdigit())
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "array":
        return isinstance(value, list)
    if kind == "object":
        return isinstance(value, dict)
    raise AssertionError(f"unknown fixture type {kind!r}")


def check_keys(data: Any, keys: dict[str, str], where: str) -> None:
    """Every documented key is present in ``data`` with its documented type."""
    assert isinstance(data, dict), f"{where}: expected an object, got {data!r}"
    for key, kind in keys.items():
        assert key in data, f"{where}: documented key {key!r} missing (got {sorted(data)})"
        assert is_type(data[key], kind), f"{where}.{key}: {data[key]!r} is not a {kind}"


def check_enums(data: dict[str, Any], enums: dict[str, list[str]], where: str) -> None:
    for key, allowed in enums.items():
        if key in data:
            assert data[key] in allowed, f"{where}.{key}: {data[key]!r} not in {allowed}"


def check(fixture: dict[str, Any], status: int, body: Any) -> None:
    """The answer (status and JSON body) is the one the fixture's page documents."""
    expected = fixture["response"]
    name = fixture["call"]
    assert status == expected["status"], f"{name}: status {status}, body {body!r}"
    check_keys(body, expected["keys"], name)
    if expected.get("exactKeys"):
        assert set(body) == set(expected["keys"]), f"{name}: keys {sorted(body)}"
    for key, value in expected.get("values", {}).items():
        assert body[key] == value, f"{name}.{key}: {body[key]!r} != documented {value!r}"
    for key, keys in expected.get("nested", {}).items():
        check_keys(body[key], keys, f"{name}.{key}")
    wrapper = expected.get("wrapper")
    if wrapper is None:
        return
    item_keys = expected.get("itemKeys", {})
    enums = expected.get("enums", {})
    if expected["wrapperType"] == "array":
        items = body[wrapper]
        assert isinstance(items, list), f"{name}.{wrapper} is not an array"
        assert items, f"{name}.{wrapper}: the test should produce at least one entry"
    else:
        items = [body[wrapper]]
    for index, item in enumerate(items):
        check_keys(item, item_keys, f"{name}.{wrapper}[{index}]")
        check_enums(item, enums, f"{name}.{wrapper}[{index}]")


def error_shape(status: int, body: Any, expected_status: int) -> None:
    """A documented error status, in passpost's error shape (the original's id/message)."""
    assert status == expected_status, f"status {status}, body {body!r}"
    assert isinstance(body, dict) and body.get("id") == "-1", body
    assert isinstance(body.get("message"), str) and body["message"], body
    assert isinstance(body.get("errorCode"), str) and body["errorCode"].isupper(), body
