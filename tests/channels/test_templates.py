"""Placeholders, HTML escaping, HTML → text, and fitting SMS around the link."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from passpost.channels.templates import (
    ELLIPSIS,
    RecipientFields,
    fit_sms,
    html_to_text,
    render_email,
    render_email_fast,
    render_sms,
    render_sms_fast,
)

LINK = "https://pp.example/p/AbC_123-xyz"
ALICE = RecipientFields(
    first_name="Alice", last_name="O'Hara", email="alice@example.com", mobile_number="+14155552671"
)


@pytest.mark.parametrize(
    "placeholder",
    [
        "##Email Pass Link##",
        "##SMS Pass Link##",
        "#Email Pass link",
        "#SMS Pass Link",
        "##email pass link##",
    ],
)
def test_every_link_spelling_is_replaced(placeholder: str) -> None:
    _, html, text = render_email(
        "S", f"<p>Get it: <a href='{placeholder}'>here</a></p>", LINK, ALICE
    )
    assert f"href='{LINK}'" in html
    assert "Pass" not in html and "pass link" not in html.lower()
    assert html.count(LINK) == 1  # placed, so not appended
    assert text == f"Get it: here ({LINK})"


def test_the_seed_template_renders() -> None:
    subject, html, text = render_email(
        "Pass Issued",
        "Pass Issue content Email <a href='##Email Pass Link##'>click here</a>",
        LINK,
        ALICE,
    )
    assert subject == "Pass Issued"
    assert html == f"Pass Issue content Email <a href='{LINK}'>click here</a>"
    assert text == f"Pass Issue content Email click here ({LINK})"


def test_recipient_fields_are_html_escaped_in_the_body_but_not_the_subject() -> None:
    evil = RecipientFields(first_name="<script>x</script>", last_name='"Bo" & Co')
    subject, html, text = render_email(
        "Hi ##First Name##",
        "<p title='##Last Name##'>Dear ##First Name## ##Last Name##</p>",
        LINK,
        evil,
    )
    assert subject == "Hi <script>x</script>"
    assert "<script>" not in html
    assert "title='&quot;Bo&quot; &amp; Co'" in html
    assert "Dear &lt;script&gt;x&lt;/script&gt; &quot;Bo&quot; &amp; Co" in html
    assert text.startswith('Dear <script>x</script> "Bo" & Co')


def test_link_with_ampersand_is_escaped_inside_the_attribute() -> None:
    link = "https://pp.example/p/a?x=1&y=2"
    _, html, text = render_email("S", '<a href="##Email Pass Link##">go</a>', link, ALICE)
    assert 'href="https://pp.example/p/a?x=1&amp;y=2"' in html
    assert text == f"go ({link})"


def test_fields_accept_the_original_api_key_spellings() -> None:
    fields = {"First Name": "Ann", "Last Name": "Lee", "Email": "a@x.io", "Mobile Number": "+1"}
    subject, html, _ = render_email(
        "##First Name## ##Last Name##",
        "##Email## ##Mobile Number## ##SMS Pass Link##",
        LINK,
        fields,
    )
    assert subject == "Ann Lee"
    assert html.startswith("a@x.io +1 ")


def test_link_appended_when_the_email_template_has_none() -> None:
    _, html, text = render_email("S", "<p>Hello ##First Name##</p>", LINK, ALICE)
    assert html == f'<p>Hello Alice</p>\n<p><a href="{LINK}">{LINK}</a></p>'
    assert text == f"Hello Alice\n\n{LINK}"


def test_plain_text_template_keeps_lines_and_links_the_placeholder() -> None:
    _, html, text = render_email(
        "S", "Hello ##First Name##\nYour pass: ##Email Pass Link##", LINK, ALICE
    )
    assert html == f'Hello Alice<br>\nYour pass: <a href="{LINK}">{LINK}</a>'
    assert text == f"Hello Alice\nYour pass: {LINK}"


def test_subject_newlines_are_folded() -> None:
    subject, _, _ = render_email("Line1\r\nBcc: x@evil", "<p>x</p>", LINK, ALICE)
    assert subject == "Line1 Bcc: x@evil"


def test_html_to_text_skips_style_and_lays_out_blocks() -> None:
    body = (
        "<html><head><style>p{color:red}</style><title>T</title></head><body>"
        "<h1>Title</h1><p>One<br>two</p><ul><li>a</li><li>b</li></ul>"
        "<p>Get <a href='https://l.example'>your pass</a> &amp; enjoy</p></body></html>"
    )
    assert (
        html_to_text(body)
        == "Title\n\nOne\ntwo\n\na\nb\n\nGet your pass (https://l.example) & enjoy"
    )


def test_unknown_placeholders_are_left_alone() -> None:
    assert render_sms("##Seat## ##SMS Pass Link##", LINK, ALICE, 160) == f"##Seat## {LINK}"


def test_render_sms_appends_the_link_and_fits() -> None:
    text = render_sms("Hi ##First Name##, your boarding pass is ready.", LINK, ALICE, 160)
    assert text == f"Hi Alice, your boarding pass is ready. {LINK}"
    short = render_sms("Hi ##First Name##, your boarding pass is ready.", LINK, ALICE, 50)
    assert short.endswith(" " + LINK) and len(short) <= 50 and ELLIPSIS in short


def test_fit_sms_shortens_the_text_after_the_link_first() -> None:
    text = f"Pass: {LINK} Thank you for flying with us, have a pleasant journey"
    fitted = fit_sms(text, LINK, 60)
    assert fitted.startswith(f"Pass: {LINK} ")
    assert fitted.endswith(ELLIPSIS)
    assert len(fitted) <= 60


def test_fit_sms_shortens_the_text_before_the_link_when_needed() -> None:
    text = "Dear customer, here is the boarding pass for your flight tomorrow: " + LINK
    fitted = fit_sms(text, LINK, len(LINK) + 20)
    assert fitted.endswith(" " + LINK)
    assert ELLIPSIS in fitted
    assert len(fitted) <= len(LINK) + 20


def test_fit_sms_keeps_a_link_longer_than_the_limit() -> None:
    assert fit_sms("Your pass " + LINK, LINK, 10) == LINK


link_chars = st.characters(min_codepoint=33, max_codepoint=126)
text_chars = st.characters(blacklist_categories=("Cs",))


@given(
    before=st.text(text_chars, max_size=300),
    after=st.text(text_chars, max_size=300),
    link=st.text(link_chars, min_size=1, max_size=80),
    slack=st.integers(min_value=0, max_value=400),
)
def test_fit_sms_never_cuts_the_link_and_respects_the_limit(
    before: str, after: str, link: str, slack: int
) -> None:
    max_chars = len(link) + slack
    fitted = fit_sms(before + link + after, link, max_chars)
    assert link in fitted
    assert len(fitted) <= max_chars
    if len(before + link + after) <= max_chars:
        assert fitted == before + link + after


@given(
    template=st.text(text_chars, max_size=400),
    first=st.text(text_chars, max_size=40),
    slack=st.integers(min_value=0, max_value=300),
)
def test_render_sms_always_carries_the_whole_link(template: str, first: str, slack: int) -> None:
    max_chars = len(LINK) + slack
    text = render_sms(template, LINK, RecipientFields(first_name=first), max_chars)
    assert LINK in text
    assert len(text) <= max_chars


@given(
    prefix=st.text(text_chars, max_size=200),
    suffix=st.text(text_chars, max_size=200),
    first=st.text(text_chars, max_size=30),
)
def test_render_email_always_carries_the_link_and_escapes_fields(
    prefix: str, suffix: str, first: str
) -> None:
    template = f"{prefix} ##First Name## {suffix}"
    _, html, text = render_email("S", template, LINK, RecipientFields(first_name="<b>" + first))
    assert LINK in html
    assert LINK in text
    assert "&lt;b&gt;" in html


# -- compiled templates give the reference's strings --------------------------------------

_TEMPLATE_PIECES = st.sampled_from(
    [
        "Hello ##First Name##",
        " ##Last Name##",
        ", <br>\n",
        "<p>",
        "</p>",
        "<a href='##Email Pass Link##'>click here</a>",
        "<a href='##Email Pass Link##'>##First Name##</a>",
        '<a href="mailto:##Email##">##Email##</a>',
        "##SMS Pass Link##",
        "#Email Pass link",
        "<style>p{}</style>",
        "<div>##Mobile Number##</div>",
        "&amp; text\n\n\n",
        "plain line\n",
        " <b>bold</b> ",
        "##email##",
        "<li>item",
    ]
)
_VALUES = st.one_of(
    st.none(),
    st.just(""),
    st.sampled_from(["Alice", "Mary  Ann", " Bo ", "O'Hara", "<b>x</b>", "Tom &amp; Jerry", "Zoë"]),
    st.text(max_size=12),
)


@given(
    pieces=st.lists(_TEMPLATE_PIECES, max_size=8),
    subject=st.sampled_from(["Hi ##First Name##", "Your\npass", "", "##Last Name## & co"]),
    first=_VALUES,
    last=_VALUES,
    email=_VALUES,
    mobile=_VALUES,
)
def test_compiled_email_renders_what_render_email_renders(
    pieces: list[str],
    subject: str,
    first: str | None,
    last: str | None,
    email: str | None,
    mobile: str | None,
) -> None:
    fields = RecipientFields(first, last, email, mobile)
    template = "".join(pieces)
    assert render_email_fast(subject, template, LINK, fields) == render_email(
        subject, template, LINK, fields
    )


@given(
    pieces=st.lists(_TEMPLATE_PIECES, max_size=6),
    first=_VALUES,
    last=_VALUES,
    limit=st.integers(min_value=20, max_value=200),
)
def test_compiled_sms_renders_what_render_sms_renders(
    pieces: list[str], first: str | None, last: str | None, limit: int
) -> None:
    fields = RecipientFields(first_name=first, last_name=last)
    template = "".join(pieces)
    assert render_sms_fast(template, LINK, fields, limit) == render_sms(
        template, LINK, fields, limit
    )


def test_a_compiled_template_serves_every_recipient() -> None:
    template = "<p>Dear ##First Name## ##Last Name##</p><a href='##Email Pass Link##'>get</a>"
    for n in range(3):
        fields = RecipientFields(first_name=f"R{n}", last_name="<Q>")
        subject, html, text = render_email_fast(
            "For ##First Name##", template, f"{LINK}{n}", fields
        )
        assert subject == f"For R{n}"
        assert f"Dear R{n} &lt;Q&gt;" in html and f"href='{LINK}{n}'" in html
        assert text == f"Dear R{n} <Q>\n\nget ({LINK}{n})"
