"""Parse JSON from anonymous or careless clients: bad text and deep nesting are 400s, never 500s.

``json.loads`` recurses once per nesting level: a body of ``[[[[…`` a thousand deep raises
``RecursionError``, and a few hundred deep passes only to blow up later in whatever walks
the value (serialising it again, pydantic, Jinja). Every value passpost accepts is shallow,
so a small depth bound costs nothing and ends the whole class of failure.
"""

from __future__ import annotations

import json
import re
from typing import Any

from passpost.errors import BadRequest

MAX_DEPTH = 32
# Only a \uD800-\uDFFF escape can put a lone surrogate into a parsed string (raw UTF-8
# cannot), and such a string cannot be encoded again: the database driver would raise.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def nesting_depth(value: Any, *, stop_at: int | None = None) -> int:
    """How deeply lists and objects nest in ``value`` (a scalar is 0), iteratively.

    With ``stop_at``, returns as soon as that depth is exceeded (any answer > ``stop_at``).
    """
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        if stop_at is not None and deepest > stop_at:
            return deepest
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return deepest


def loads(
    raw: bytes | str,
    *,
    what: str = "The body",
    error_code: str = "INVALID_JSON",
    max_depth: int = MAX_DEPTH,
) -> Any:
    """``raw`` parsed as JSON; ``BadRequest`` (``error_code``, or ``JSON_TOO_DEEP``) otherwise."""
    try:
        value = json.loads(raw)
    except RecursionError as exc:
        raise _too_deep(what, max_depth) from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"{what} is not valid JSON.", error_code=error_code) from exc
    if nesting_depth(value, stop_at=max_depth) > max_depth:
        raise _too_deep(what, max_depth)
    raw_bytes = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    if _SURROGATE_ESCAPE.search(raw_bytes) and _has_lone_surrogate(value):
        raise BadRequest(
            f"{what} has a \\u escape of half a UTF-16 surrogate pair, which is not text.",
            error_code=error_code,
        )
    return value


def _has_lone_surrogate(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _too_deep(what: str, max_depth: int) -> BadRequest:
    return BadRequest(
        f"{what} nests lists or objects more than {max_depth} levels deep.",
        error_code="JSON_TOO_DEEP",
    )
