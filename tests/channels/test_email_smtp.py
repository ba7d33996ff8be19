"""SmtpSender against a real aiosmtpd server on loopback."""

from __future__ import annotations

import asyncio
import email
import itertools
from email import policy

import pytest

from passpost.channels import mime
from passpost.channels.base import ChannelError, EmailMessage, PermanentError, TransientError
from passpost.channels.email import SmtpConfig, SmtpSender, compose_message, message_id_for
from tests.support.net import free_port
from tests.support.smtp import SmtpServer, TlsCert, authenticator_for, start_peer


def _message(to: str, key: str = "d-1", **extra: object) -> EmailMessage:
    fields: dict[str, object] = {
        "key": key,
        "to": to,
        "subject": "Your pass – ready",
        "html": "<p>Hello Zoë, <a href='https://x.test/p/abc'>get it</a></p>",
        "text": "Hello Zoë, get it (https://x.test/p/abc)",
    }
    fields.update(extra)
    return EmailMessage(**fields)  # type: ignore[arg-type]


def _send(config: SmtpConfig, *messages: EmailMessage) -> list[object]:
    async def run() -> list[object]:
        sender = SmtpSender(config)
        try:
            return await asyncio.gather(*(sender.send(m) for m in messages), return_exceptions=True)
        finally:
            await sender.aclose()

    return asyncio.run(run())


def _send_in_turn(config: SmtpConfig, *messages: EmailMessage) -> list[object]:
    """``_send``, one message after the other (on one connection)."""

    async def run() -> list[object]:
        sender = SmtpSender(config)
        results: list[object] = []
        try:
            for message in messages:
                try:
                    results.append(await sender.send(message))
                except ChannelError as exc:
                    results.append(exc)
        finally:
            await sender.aclose()
        return results

    return asyncio.run(run())


def test_accepted_message_has_both_parts_sender_and_stable_message_id(
    smtp_peer: SmtpServer,
) -> None:
    config = SmtpConfig(host="127.0.0.1", port=smtp_peer.port, default_sender="noreply@pp.test")
    message = _message(
        "alice@example.com",
        key="42:7",
        sender_email="ops@example.com",
        sender_name="Ops Désk",
        attachment=("boarding.pkpass", b"PK\x03\x04fake"),
    )
    [result] = _send(config, message)

    assert not isinstance(result, BaseException), result
    assert result.provider_message_id == "<42-7@passpost>" == message_id_for("42:7")
    [received] = smtp_peer.handler.messages
    assert received.sender == "ops@example.com"
    assert received.recipients == ["alice@example.com"]
    parsed = email.message_from_bytes(received.content, policy=policy.default)
    assert parsed["Message-ID"] == "<42-7@passpost>"
    assert parsed["From"].addresses[0].display_name == "Ops Désk"
    assert parsed["Subject"] == "Your pass – ready"
    assert parsed.get_content_type() == "multipart/mixed"
    alternative = next(p for p in parsed.walk() if p.get_content_type() == "multipart/alternative")
    kinds = [p.get_content_type() for p in alternative.iter_parts()]
    assert kinds == ["text/plain", "text/html"]
    assert "Zoë" in parsed.get_body(("plain",)).get_content()
    assert "href='https://x.test/p/abc'" in parsed.get_body(("html",)).get_content()
    [attachment] = list(parsed.iter_attachments())
    assert attachment.get_content_type() == "application/vnd.apple.pkpass"
    assert attachment.get_filename() == "boarding.pkpass"
    assert attachment.get_content() == b"PK\x03\x04fake"


def test_default_sender_used_without_sender_email(smtp_peer: SmtpServer) -> None:
    config = SmtpConfig(
        host="127.0.0.1",
        port=smtp_peer.port,
        default_sender="noreply@pp.test",
        default_sender_name="PassPost",
    )
    [result] = _send(config, _message("bob@example.com"))
    assert not isinstance(result, BaseException), result
    [received] = smtp_peer.handler.messages
    assert received.sender == "noreply@pp.test"
    parsed = email.message_from_bytes(received.content, policy=policy.default)
    assert str(parsed["From"]) == "PassPost <noreply@pp.test>"


def test_451_is_transient_and_the_retry_is_delivered(smtp_peer: SmtpServer) -> None:
    config = SmtpConfig(host="127.0.0.1", port=smtp_peer.port)

    async def run() -> tuple[BaseException | None, object]:
        sender = SmtpSender(config)
        first: BaseException | None = None
        try:
            await sender.send(_message("tempfail1-carol@example.com"))
        except TransientError as exc:
            first = exc
        second = await sender.send(_message("tempfail1-carol@example.com"))
        await sender.aclose()
        return first, second

    first, second = asyncio.run(run())
    assert isinstance(first, TransientError)
    assert first.reason.startswith("451 4.7.1 Greylisted")
    assert second.provider_message_id == "<d-1@passpost>"  # type: ignore[attr-defined]
    assert [m.recipients for m in smtp_peer.handler.messages] == [["tempfail1-carol@example.com"]]
    assert smtp_peer.connections == 1  # the connection survived the refusal (RSET)


def test_550_recipient_is_permanent_with_the_server_reply(smtp_peer: SmtpServer) -> None:
    config = SmtpConfig(host="127.0.0.1", port=smtp_peer.port)
    bad, good = _send(config, _message("reject550-dan@example.com"), _message("erin@example.com"))
    assert isinstance(bad, PermanentError)
    assert bad.reason.startswith("550 5.1.1 <reject550-dan@example.com>: Recipient address")
    assert not isinstance(good, BaseException)
    assert [m.recipients for m in smtp_peer.handler.messages] == [["erin@example.com"]]


def test_a_refused_sender_is_permanent_and_the_connection_is_kept(smtp_peer: SmtpServer) -> None:
    config = SmtpConfig(host="127.0.0.1", port=smtp_peer.port)
    refused = _message("gina@example.com", sender_email="refused-ops@example.com")
    bad, good = _send_in_turn(config, refused, _message("hank@example.com"))
    assert isinstance(bad, PermanentError)
    assert bad.reason.startswith("553 5.7.1 <refused-ops@example.com>: Sender address rejected")
    assert not isinstance(good, BaseException)
    assert [m.recipients for m in smtp_peer.handler.messages] == [["hank@example.com"]]
    assert smtp_peer.connections == 1  # RSET after the refusal: the connection is reused


def test_a_server_without_ehlo_is_greeted_with_helo() -> None:
    peer = SmtpServer()
    peer.handler.helo_only = True
    with peer:
        [result] = _send(SmtpConfig(host="127.0.0.1", port=peer.port), _message("ivy@example.com"))
    assert not isinstance(result, BaseException)
    assert [m.recipients for m in peer.handler.messages] == [["ivy@example.com"]]


def test_554_after_data_is_permanent(smtp_peer: SmtpServer) -> None:
    config = SmtpConfig(host="127.0.0.1", port=smtp_peer.port)
    [result] = _send(config, _message("data554-frank@example.com"))
    assert isinstance(result, PermanentError)
    assert result.reason == "554 5.7.1 Message rejected as spam"


def test_a_server_that_does_not_answer_in_time_is_transient_and_its_connection_dropped(
    smtp_peer: SmtpServer,
) -> None:
    config = SmtpConfig(host="127.0.0.1", port=smtp_peer.port, timeout=0.3)
    slow, prompt = _message("slow1500-kim@example.com"), _message("lee@example.com")
    late, later = _send_in_turn(config, slow, prompt)
    assert isinstance(late, TransientError)
    assert late.reason.endswith("did not answer the message within 0.3 s")
    # The late reply could be taken for the next message's: that one gets a new connection.
    assert not isinstance(later, BaseException)
    assert smtp_peer.connections == 2


def test_invalid_recipient_address_is_permanent_before_connecting(smtp_peer: SmtpServer) -> None:
    config = SmtpConfig(host="127.0.0.1", port=smtp_peer.port)
    [result] = _send(config, _message("not-an-address"))
    assert isinstance(result, PermanentError)
    assert "recipient" in result.reason
    assert smtp_peer.connections == 0


def test_connections_are_reused_up_to_the_concurrency_limit(smtp_peer: SmtpServer) -> None:
    config = SmtpConfig(host="127.0.0.1", port=smtp_peer.port, concurrency=3)
    messages = [_message(f"user{i}@example.com", key=f"k{i}") for i in range(60)]
    results = _send(config, *messages)
    assert all(not isinstance(r, BaseException) for r in results)
    assert len(smtp_peer.handler.messages) == 60
    assert 1 <= smtp_peer.connections <= 3


def test_reconnects_after_the_server_dropped_an_idle_connection() -> None:
    peers = [start_peer()]
    config = SmtpConfig(host="127.0.0.1", port=peers[0].port, idle_check_seconds=3600)

    async def run() -> tuple[object, object, int]:
        sender = SmtpSender(config)
        first = await sender.send(_message("a@example.com", key="k1"))
        # A new server on the same port: the pooled connection to the old one is dead.
        peers[0].controller.stop()
        peers.append(start_peer(port=peers[0].port))
        second = await sender.send(_message("b@example.com", key="k2"))
        opened = sender.connections_opened
        await sender.aclose()
        return first, second, opened

    try:
        first, second, opened = asyncio.run(run())
    finally:
        peers[-1].controller.stop()
    assert first.provider_message_id == "<k1@passpost>"  # type: ignore[attr-defined]
    assert second.provider_message_id == "<k2@passpost>"  # type: ignore[attr-defined]
    assert opened == 2
    assert [m.recipients for m in peers[0].handler.messages] == [["a@example.com"]]
    assert [m.recipients for m in peers[1].handler.messages] == [["b@example.com"]]


def test_connection_refused_is_transient() -> None:
    config = SmtpConfig(host="127.0.0.1", port=free_port(), timeout=5)
    [result] = _send(config, _message("a@example.com"))
    assert isinstance(result, TransientError)
    assert "Cannot connect to SMTP server 127.0.0.1" in result.reason


def test_starttls_with_login(test_cert: TlsCert) -> None:
    peer = start_peer(
        tls_context=test_cert.server_context(),
        require_starttls=True,
        authenticator=authenticator_for("mailer", "s3cret"),
        auth_required=True,
    )
    url = f"smtp://mailer:s3cret@127.0.0.1:{peer.port}?starttls=1&ca_file={test_cert.cert}"
    try:
        [result] = _send(SmtpConfig.from_url(url), _message("a@example.com"))
    finally:
        peer.controller.stop()
    assert not isinstance(result, BaseException), result
    [received] = peer.handler.messages
    assert received.tls is True
    assert received.login == "mailer"


def test_starttls_rejects_an_untrusted_certificate(test_cert: TlsCert) -> None:
    peer = start_peer(tls_context=test_cert.server_context(), require_starttls=True)
    try:
        [result] = _send(
            SmtpConfig.from_url(f"smtp://127.0.0.1:{peer.port}?starttls=1"),
            _message("a@example.com"),
        )
    finally:
        peer.controller.stop()
    assert isinstance(result, TransientError)
    assert peer.handler.messages == []


def test_implicit_tls_smtps(test_cert: TlsCert) -> None:
    peer = start_peer(ssl_context=test_cert.server_context())
    url = f"smtps://127.0.0.1:{peer.port}?ca_file={test_cert.cert}"
    try:
        [result] = _send(SmtpConfig.from_url(url), _message("a@example.com"))
    finally:
        peer.controller.stop()
    assert not isinstance(result, BaseException), result
    assert peer.handler.messages[0].tls is True


def test_wrong_password_is_transient_with_the_server_reply() -> None:
    peer = start_peer(
        authenticator=authenticator_for("mailer", "s3cret"),
        auth_required=True,
        auth_require_tls=False,
    )
    config = SmtpConfig(host="127.0.0.1", port=peer.port, username="mailer", password="wrong")
    try:
        [result] = _send(config, _message("a@example.com"))
    finally:
        peer.controller.stop()
    assert isinstance(result, TransientError)
    assert "535" in result.reason
    assert peer.handler.messages == []


def test_plain_auth_without_tls() -> None:
    peer = start_peer(
        authenticator=authenticator_for("mailer", "p@ss:word"),
        auth_required=True,
        auth_require_tls=False,
    )
    url = f"smtp://mailer:p%40ss%3Aword@127.0.0.1:{peer.port}"
    try:
        [result] = _send(SmtpConfig.from_url(url), _message("a@example.com"))
    finally:
        peer.controller.stop()
    assert not isinstance(result, BaseException), result
    assert peer.handler.messages[0].login == "mailer"


@pytest.mark.parametrize(
    ("url", "host", "port", "security", "user"),
    [
        ("smtp://mail.test", "mail.test", 25, "none", None),
        ("smtp://u:p@mail.test:2525?starttls=1", "mail.test", 2525, "starttls", "u"),
        ("smtp://mail.test?starttls=true", "mail.test", 587, "starttls", None),
        ("smtps://u%40x:p@mail.test", "mail.test", 465, "ssl", "u@x"),
    ],
)
def test_smtp_url_parsing(url: str, host: str, port: int, security: str, user: str | None) -> None:
    config = SmtpConfig.from_url(url, default_sender="d@pp.test", concurrency=5)
    assert (config.host, config.port, config.security, config.username) == (
        host,
        port,
        security,
        user,
    )
    assert config.default_sender == "d@pp.test"
    assert config.concurrency == 5


@pytest.mark.parametrize("url", ["http://x", "smtp://", "smtp://h:99999", "smtp://h?timeout=x"])
def test_bad_smtp_urls_raise_value_error(url: str) -> None:
    with pytest.raises(ValueError):
        SmtpConfig.from_url(url)


def test_composed_message_parses_cleanly_with_awkward_content() -> None:
    html = "<p>Grüße " + "y" * 1200 + "</p>\n<p>. leading dot\r\nand CR</p>"
    composed = compose_message(
        EmailMessage(
            key="req 7/holder:9",
            to="ana@bücher.example",
            subject="Ihr Pass – bereit " + "x" * 90,
            html=html,
            text="Grüße\n" + "z" * 1100,
            sender_email="ops@example.com",
            sender_name='Ops, "Inc." Zoë',
            attachment=("Boarding Päss.pkpass", bytes(range(256)) * 40),
        ),
        SmtpConfig(host="unused"),
    )
    assert composed.recipient == "ana@xn--bcher-kva.example"
    assert composed.message_id == "<req-7/holder-9@passpost>"
    assert all(len(line) <= 998 for line in composed.data.split(b"\r\n"))
    assert b"\n" not in composed.data.replace(b"\r\n", b"")
    parsed = email.message_from_bytes(composed.data, policy=policy.default)
    assert all(not part.defects for part in parsed.walk())
    assert parsed["Subject"] == "Ihr Pass – bereit " + "x" * 90
    assert parsed["From"].addresses[0].display_name == 'Ops, "Inc." Zoë'
    # Line breaks arrive as CRLF on the wire, whatever the template used.
    lines = html.replace("\r\n", "\n").split("\n")
    assert parsed.get_body(("html",)).get_content().splitlines() == lines
    assert parsed.get_body(("plain",)).get_content().splitlines() == ["Grüße", "z" * 1100]
    [attachment] = list(parsed.iter_attachments())
    assert attachment.get_filename() == "Boarding Päss.pkpass"
    assert attachment.get_content() == bytes(range(256)) * 40


def test_a_boundary_found_in_a_part_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    # Boundaries are a per-process prefix and a counter: text that happens to hold the next
    # one (it can, in a 7bit part) makes the composer take another.
    monkeypatch.setattr(mime, "_boundaries", itertools.count(7))
    taken = f"--{mime._BOUNDARY_PREFIX}7"
    message = _message("jo@example.com", html=f"<p>{taken}</p>", text=f"see {taken} here")
    parsed = email.message_from_bytes(
        compose_message(message, SmtpConfig(host="unused")).data, policy=policy.default
    )
    assert parsed.get_boundary() != taken[2:]
    assert all(not part.defects for part in parsed.walk())
    assert parsed.get_body(("plain",)).get_content().strip() == f"see {taken} here"
    assert parsed.get_body(("html",)).get_content().strip() == f"<p>{taken}</p>"


@pytest.mark.parametrize(
    "address", ["", "plain", "a@", "@b.example", "a b@c.example", "a..b@c.example", "a@-b.example"]
)
def test_unusable_recipient_addresses_are_permanent(address: str) -> None:
    with pytest.raises(PermanentError, match="Invalid recipient e-mail address"):
        compose_message(
            EmailMessage(key="k", to=address, subject="s", html="h", text="t"),
            SmtpConfig(host="unused"),
        )
