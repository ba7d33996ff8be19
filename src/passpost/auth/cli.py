"""``passpost operator ...`` and ``passpost apikey ...``: accounts for people and scripts."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from passpost.auth import service
from passpost.cli_support import cli_session

operator_app = typer.Typer(help="Operator accounts (HTTP Basic and the login call).")
apikey_app = typer.Typer(help="API keys for scripts (sent as a bearer token).")


def _read_password(password: str | None) -> str:
    """The password from the option, stdin (``-`` or piped), or a hidden prompt."""
    if password is not None and password != "-":
        return password
    if password == "-" or not sys.stdin.isatty():
        # One line: the trailing newline is not part of the password.
        return sys.stdin.readline().rstrip("\r\n")
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


PasswordOption = Annotated[
    str | None,
    typer.Option(
        "--password",
        "-p",
        help="The password; '-' or omitted with piped stdin reads one line from stdin; "
        "omitted on a terminal prompts (hidden).",
    ),
]


@operator_app.command("create")
def operator_create(
    username: Annotated[str, typer.Option("--username", "-u", help="Login name.")],
    password: PasswordOption = None,
) -> None:
    """Create an operator account."""
    secret = _read_password(password)
    with cli_session() as session:
        operator = service.create_operator(session, username=username, password=secret)
        typer.echo(f"operator {operator.username!r} created (id {operator.id})")


@operator_app.command("passwd")
def operator_passwd(
    username: Annotated[str, typer.Option("--username", "-u", help="Login name.")],
    password: PasswordOption = None,
) -> None:
    """Set an operator's password (ends its login sessions)."""
    secret = _read_password(password)
    with cli_session() as session:
        service.set_password(session, username=username, password=secret)
        typer.echo(f"password of {username!r} changed")


@apikey_app.command("create")
def apikey_create(
    name: Annotated[str, typer.Option("--name", "-n", help="What the key is for.")],
) -> None:
    """Create an API key and print it (it is shown only this once)."""
    with cli_session() as session:
        _, key = service.create_api_key(session, name=name)
    # The key alone on stdout (scriptable); the advice on stderr.
    typer.echo(key)
    typer.echo("Store this key now: it cannot be shown again.", err=True)


@apikey_app.command("list")
def apikey_list() -> None:
    """List API keys (never the keys themselves)."""
    with cli_session() as session:
        for key in service.list_api_keys(session):
            used = key.last_used_at.isoformat(timespec="seconds") if key.last_used_at else "never"
            state = "revoked" if key.revoked_at else "active"
            typer.echo(f"{key.name}\tppk_{key.prefix}_…\t{state}\tlast used {used}")


@apikey_app.command("revoke")
def apikey_revoke(
    name: Annotated[str, typer.Option("--name", "-n", help="The key's name.")],
) -> None:
    """Revoke an API key (immediately refused from then on)."""
    with cli_session() as session:
        service.revoke_api_key(session, name=name)
    typer.echo(f"API key {name!r} revoked")
