"""Untrusted JSON: bad text, deep nesting and lone surrogates are 400s with an errorCode."""

from __future__ import annotations

import pytest

from passpost import jsontext
from passpost.errors import BadRequest


@pytest.mark.parametrize("depth", [33, 900, 100_000])
def test_deep_nesting_is_refused_at_any_depth(depth: int) -> None:
    with pytest.raises(BadRequest) as caught:
        jsontext.loads(b"[" * depth + b"]" * depth)
    assert caught.value.error_code == "JSON_TOO_DEEP"
    with pytest.raises(BadRequest):
        jsontext.loads('{"a":' * depth + "1" + "}" * depth)


def test_the_depth_limit_itself_is_accepted() -> None:
    assert jsontext.nesting_depth(jsontext.loads("[" * 32 + "]" * 32)) == 32
    assert jsontext.nesting_depth(7) == 0
    assert jsontext.nesting_depth({"a": [1, {"b": []}], "c": {}}) == 4


def test_unclosed_nesting_is_invalid_json_not_a_crash() -> None:
    with pytest.raises(BadRequest) as caught:
        jsontext.loads(b"[" * 200_000, error_code="MY_CODE")
    assert caught.value.error_code in ("JSON_TOO_DEEP", "MY_CODE")


def test_lone_surrogates_are_refused_pairs_are_text() -> None:
    assert jsontext.loads(b'{"a": "\\ud83d\\ude00"}') == {"a": "\U0001f600"}
    for raw in (b'{"a": "\\ud83d"}', b'{"\\udfff": 1}', b'["ok", ["\\uDC00x"]]'):
        with pytest.raises(BadRequest) as caught:
            jsontext.loads(raw)
        assert caught.value.error_code == "INVALID_JSON"


@pytest.mark.parametrize("raw", [b"", b"{", b"\xff\xfe", b"[1,]", b"NaNx"])
def test_bad_text_uses_the_callers_code(raw: bytes) -> None:
    with pytest.raises(BadRequest) as caught:
        jsontext.loads(raw, what="passContent", error_code="INVALID_PASS_CONTENT_JSON")
    assert caught.value.error_code == "INVALID_PASS_CONTENT_JSON"
    assert caught.value.message.startswith("passContent ")
