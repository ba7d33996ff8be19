"""Message templates (SPEC §1): placeholders, the personal link, HTML → text, SMS fitting.

Pure functions of strings: nothing here knows about recipients in the database.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from html.parser import HTMLParser

ELLIPSIS = "..."  # three dots, not "…": U+2026 is outside GSM 03.38 and would force UCS-2

# Both link spellings, with either one or two leading/trailing hashes (the console writes
# "#Email Pass link", the API "##Email Pass Link##"); case and inner spacing are forgiven.
_LINK = re.compile(r"#{1,2}[ \t]*(?:email|sms)[ \t]+pass[ \t]+link[ \t]*(?:#{1,2})?", re.IGNORECASE)
_FIELD = re.compile(
    r"##[ \t]*(first[ \t]+name|last[ \t]+name|email|mobile[ \t]+number)[ \t]*##", re.IGNORECASE
)
_TAG = re.compile(r"<\s*/?\s*[a-zA-Z][^>]*>")


@dataclass(frozen=True)
class RecipientFields:
    """The recipient attributes a template may mention."""

    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    mobile_number: str | None = None

    @classmethod
    def of(cls, fields: RecipientFields | Mapping[str, str | None]) -> RecipientFields:
        """Accept a ``RecipientFields`` or a mapping keyed ``"First Name"``/``first_name``…"""
        if isinstance(fields, RecipientFields):
            return fields
        by_key = {_squash(key): value for key, value in fields.items()}
        return cls(
            first_name=by_key.get("firstname"),
            last_name=by_key.get("lastname"),
            email=by_key.get("email"),
            mobile_number=by_key.get("mobilenumber"),
        )

    def value(self, placeholder: str) -> str:
        """The value for a placeholder name such as ``First Name``."""
        name = {"firstname": "first_name", "lastname": "last_name", "mobilenumber": "mobile_number"}
        return str(getattr(self, name.get(_squash(placeholder), "email")) or "")


Fields = RecipientFields | Mapping[str, str | None]


def _squash(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def has_link_placeholder(template: str) -> bool:
    """True when the template already says where the link goes."""
    return _LINK.search(template) is not None


def substitute(template: str, link: str, fields: Fields, *, escape: bool) -> str:
    """Replace every placeholder; with ``escape`` the values are HTML-escaped (quotes too)."""
    values = RecipientFields.of(fields)

    def clean(value: str) -> str:
        return html.escape(value, quote=True) if escape else value

    text = _LINK.sub(lambda _m: clean(link), template)
    return _FIELD.sub(lambda m: clean(values.value(m.group(1))), text)


def looks_like_html(template: str) -> bool:
    """True when the template contains at least one HTML tag."""
    return _TAG.search(template) is not None


def render_email(
    subject: str, html_template: str, link: str, recipient_fields: Fields
) -> tuple[str, str, str]:
    """Render an e-mail: ``(subject, html, text)``; the link is appended when not placed."""
    rendered_subject = " ".join(substitute(subject, link, recipient_fields, escape=False).split())
    template = html_template
    if not looks_like_html(template):
        # A plain-text template: keep its line breaks and make the link clickable.
        template = html.escape(template, quote=False).replace("\n", "<br>\n")
        template = _LINK.sub(lambda m: f'<a href="{m.group(0)}">{m.group(0)}</a>', template)
    body = substitute(template, link, recipient_fields, escape=True)
    if not has_link_placeholder(html_template):
        safe = html.escape(link, quote=True)
        body = f'{body}\n<p><a href="{safe}">{safe}</a></p>'
    text = html_to_text(body)
    if link not in text:  # e.g. an unclosed <style> swallowed it: the text part needs it too
        text = f"{text}\n\n{link}".strip()
    return rendered_subject, body, text


def render_sms(template: str, link: str, fields: Fields, max_chars: int) -> str:
    """Render an SMS text that fits ``max_chars`` without ever cutting the link."""
    text = substitute(template, link, fields, escape=False)
    if link not in text:
        text = f"{text.rstrip()} {link}" if text.strip() else link
    return fit_sms(text, link, max_chars)


def fit_sms(text: str, link: str, max_chars: int) -> str:
    """Shorten the text around ``link`` (with an ellipsis) so the whole is ≤ ``max_chars``.

    The link is never cut. It is appended when missing; a link longer than ``max_chars``
    is returned alone (the only answer that keeps it whole).
    """
    if link and link not in text:
        text = f"{text.rstrip()} {link}" if text.strip() else link
    if len(text) <= max_chars:
        return text
    if not link:
        return _cut_end(text, max_chars)
    before, _, after = text.partition(link)
    after = after.replace(link, "")  # later copies are text that could be cut mid-link
    budget = max_chars - len(link)
    if budget <= 0:
        return link
    if len(before) + len(after) <= budget:
        return before + link + after
    if len(before) < budget:
        return before + link + _cut_end(after, budget - len(before))
    return _cut_before(before, budget) + link


def _cut_end(text: str, limit: int) -> str:
    """``text`` shortened at its end to at most ``limit`` characters, with an ellipsis."""
    if len(text) <= limit:
        return text
    if limit <= len(ELLIPSIS):
        return ""
    head = text[: limit - len(ELLIPSIS)]
    space = head.rfind(" ")
    # Prefer a word boundary unless that throws away too much of the room.
    if space > len(head) - 12 and head[:space].strip():
        head = head[:space]
    head = head.rstrip()
    return head + ELLIPSIS if head else ""


def _cut_before(before: str, limit: int) -> str:
    """The text before the link shortened to ``limit``, keeping a space before the link."""
    if limit <= 1:
        return ""
    core = _cut_end(before.rstrip(), limit - 1)
    return core + " " if core else ""


class _TextExtractor(HTMLParser):
    """Collects readable text from HTML: blocks become lines, links show their target."""

    _LINES = frozenset({"br", "li", "tr"})
    _BLOCKS = frozenset({"p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol"})
    _SKIP = frozenset({"script", "style", "head", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0
        self._href: str | None = None
        self._anchor_text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skip += 1
        elif tag == "a":
            self._href = dict(attrs).get("href")
            self._anchor_text = []
        else:
            self._break(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._break(tag)

    def _break(self, tag: str) -> None:
        if tag in self._LINES:
            self.parts.append("\n")
        elif tag in self._BLOCKS:
            self.parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self._skip = max(0, self._skip - 1)
        elif tag == "a" and self._href is not None:
            label = " ".join("".join(self._anchor_text).split())
            href = self._href
            if not label or label == href:
                self.parts.append(href)
            else:
                self.parts.append(f"{label} ({href})")
            self._href = None
        elif tag in self._BLOCKS:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        data = re.sub(r"\s+", " ", data)  # HTML whitespace, line breaks included, is one space
        if self._href is not None:
            self._anchor_text.append(data)
        else:
            self.parts.append(data)


def html_to_text(body: str) -> str:
    """A plain-text rendering of an HTML body (the ``text/plain`` alternative)."""
    parser = _TextExtractor()
    parser.feed(body)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


# -- compiled templates: a fan-out renders one template for 100,000 recipients ------------
#
# The placeholders are replaced once by sentinels (private-use characters no template or
# value normally holds) and the HTML → text conversion runs once on that; each recipient
# then costs a few joins. ``render_email``/``render_sms`` stay the reference: the compiled
# forms give the same strings (tests compare them), and fall back to them for inputs the
# sentinels cannot stand for.

_MARK = "\ue000"
_END = "\ue001"
_SENTINEL = re.compile(f"{_MARK}([LFNEM]){_END}")
_SLOTS = {"L": "link", "F": "first_name", "N": "last_name", "E": "email", "M": "mobile_number"}
_SPACE = re.compile(r"\s+")
_ODD_SPACE = re.compile(r"[^\S ]")  # whitespace other than a plain space (tabs, line breaks…)
_BLANK_LINES = re.compile(r"\n{3,}")


def _sentinel(slot: str) -> str:
    return f"{_MARK}{slot}{_END}"


def _split(text: str) -> tuple[tuple[str, str], ...]:
    """``text`` as (literal, slot) pairs; the last slot is empty."""
    pieces = _SENTINEL.split(text)
    pieces.append("")
    return tuple(zip(pieces[::2], pieces[1::2], strict=True))


@lru_cache(maxsize=256)
def _slots(parts: tuple[tuple[str, str], ...]) -> frozenset[str]:
    return frozenset(slot for _, slot in parts if slot)


def _join(parts: tuple[tuple[str, str], ...], values: Mapping[str, str]) -> str:
    return "".join([literal + values[slot] if slot else literal for literal, slot in parts])


def _slot_values(link: str, fields: RecipientFields) -> dict[str, str]:
    """What each sentinel slot stands for: the link and the recipient's fields."""
    return {"L": link, **{s: str(getattr(fields, f) or "") for s, f in _SLOTS.items() if s != "L"}}


def _fields_with_sentinels(blank: frozenset[str]) -> RecipientFields:
    """Sentinels for the fields, except blank ones (a blank value changes the HTML → text)."""
    names = {v: k for k, v in _SLOTS.items()}
    values = {f: "" if f in blank else _sentinel(names[f]) for f in names if f != "link"}
    return RecipientFields(**values)


@dataclass(frozen=True)
class CompiledEmail:
    """An e-mail template ready to render for many recipients (see ``compile_email``)."""

    subject: tuple[tuple[str, str], ...]
    html: tuple[tuple[str, str], ...]
    text: tuple[tuple[str, str], ...]

    def render(self, link: str, fields: RecipientFields) -> tuple[str, str, str]:
        """``(subject, html, text)``, equal to ``render_email`` with the same inputs."""
        raw = _slot_values(link, fields)
        # Only the slots each part holds (usually the link and a name or two).
        escaped = {k: html.escape(raw[k], quote=True) for k in _slots(self.html)}
        spaced = {k: _SPACE.sub(" ", raw[k]) for k in _slots(self.text)}
        subject = " ".join(_join(self.subject, raw).split())
        lines = (" ".join(line.split()) for line in _join(self.text, spaced).splitlines())
        text = _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()
        return subject, _join(self.html, escaped), text


@lru_cache(maxsize=64)
def _compile_email(subject: str, html_template: str, blank: frozenset[str]) -> CompiledEmail:
    link = _sentinel("L")
    fields = _fields_with_sentinels(blank)
    subject_s, html_s, text_s = render_email(subject, html_template, link, fields)
    return CompiledEmail(_split(subject_s), _split(html_s), _split(text_s))


def _usable(fields: RecipientFields) -> frozenset[str] | None:
    """The blank fields, or None when a value cannot be stood for by a sentinel."""
    blank = set()
    for name in ("first_name", "last_name", "email", "mobile_number"):
        value = getattr(fields, name) or ""
        if _MARK in value or _END in value:
            return None
        if not value:
            blank.add(name)
        elif value != value.strip() or _ODD_SPACE.search(value):
            return None  # edge or odd whitespace: the reference path decides what survives
    return frozenset(blank)


def render_email_fast(
    subject: str, html_template: str, link: str, fields: RecipientFields
) -> tuple[str, str, str]:
    """``render_email`` through a compiled template (cached per template)."""
    blank = _usable(fields)
    templates = subject + html_template
    if blank is None or _MARK in templates or _END in templates or _MARK in link:
        return render_email(subject, html_template, link, fields)
    return _compile_email(subject, html_template, blank).render(link, fields)


@lru_cache(maxsize=64)
def _compile_sms(template: str) -> tuple[tuple[str, str], ...]:
    return _split(
        substitute(template, _sentinel("L"), _fields_with_sentinels(frozenset()), escape=False)
    )


def render_sms_fast(template: str, link: str, fields: RecipientFields, max_chars: int) -> str:
    """``render_sms`` through a compiled template (cached per template)."""
    if _usable(fields) is None or _MARK in template or _END in template or _MARK in link:
        return render_sms(template, link, fields, max_chars)
    return fit_sms(_join(_compile_sms(template), _slot_values(link, fields)), link, max_chars)
