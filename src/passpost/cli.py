"""The ``passpost`` command: each domain contributes its commands from its own ``cli`` module."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="passpost",
    help="Self-hosted Apple Wallet pass distribution.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def main() -> None:
    """Self-hosted Apple Wallet pass distribution."""


def _register() -> None:
    from passpost.auth import cli as auth_cli
    from passpost.pkpass import cli as pkpass_cli

    app.command("inspect")(pkpass_cli.inspect)
    app.add_typer(auth_cli.operator_app, name="operator")
    app.add_typer(auth_cli.apikey_app, name="apikey")


_register()
