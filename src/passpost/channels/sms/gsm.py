"""The GSM 03.38 alphabet (default table and its extension), from ``gsm0338``'s tables.

The one definition of "fits in GSM-7": the SMPP encoder packs septets with it, the HTTP
providers ask it whether a text must go as unicode.
"""

from __future__ import annotations

import unicodedata

from gsm0338.charset import BASIC_CHARACTER_SET, BASIC_CHARACTER_SET_EXTENSION

GSM_ESCAPE = 0x1B


def _gsm_table() -> dict[int, str]:
    """GSM 03.38 from gsm0338's tables as a ``str.translate`` map (its codec is per-char Python).

    Each character maps to its septet(s) as latin-1 code points; extension-table characters
    become ESC + septet. A literal ESC in the text is not encodable (it would swallow the
    next character).
    """
    table = {
        ord(unicodedata.lookup(name)): chr(septet)
        for septet, name in BASIC_CHARACTER_SET.items()
        if septet != GSM_ESCAPE
    }
    for septet, name in BASIC_CHARACTER_SET_EXTENSION.items():
        table.setdefault(ord(unicodedata.lookup(name)), chr(GSM_ESCAPE) + chr(septet))
    return table


_GSM_TABLE = _gsm_table()
GSM_CHARS = frozenset(chr(code) for code in _GSM_TABLE)


def gsm_encode(text: str) -> bytes | None:
    """The unpacked GSM 03.38 septets of ``text``, or ``None`` if a character is not in it."""
    if not GSM_CHARS.issuperset(text):
        return None
    return text.translate(_GSM_TABLE).encode("latin-1")


def is_gsm7(text: str) -> bool:
    """True when ``text`` fits the GSM 03.38 alphabet (else it must go as UCS-2/unicode)."""
    return GSM_CHARS.issuperset(text)
