"""The ``passpost`` command: each domain contributes its commands from its own ``cli`` module."""

from __future__ import annotations

import logging

import typer

from passpost.config import get_settings

app = typer.Typer(
    name="passpost",
    help="Self-hosted Apple Wallet pass distribution.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def main() -> None:
    """Self-hosted Apple Wallet pass distribution."""


def _configure_logging() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8080, help="Port to listen on."),
) -> None:
    """Migrate the database, then run the HTTP API and an embedded worker pool."""
    from passpost.web.server import run_server

    _configure_logging()
    run_server(get_settings(), host=host, port=port, with_worker=True)


@app.command()
def api(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8080, help="Port to listen on."),
) -> None:
    """Migrate the database, then run the HTTP API alone (workers run elsewhere)."""
    from passpost.web.server import run_server

    _configure_logging()
    run_server(get_settings(), host=host, port=port, with_worker=False)


@app.command()
def worker() -> None:
    """Run a worker alone: send queued deliveries and pushes (run as many as you like)."""
    from passpost.db import migrate
    from passpost.worker import run_worker

    _configure_logging()
    settings = get_settings()
    migrate(settings.resolved_database_url)
    run_worker(settings)


@app.command()
def migrate() -> None:
    """Bring the database schema up to date."""
    from passpost.db import migrate as run_migrations

    run_migrations(get_settings().resolved_database_url)
    typer.echo("database is up to date")


def _register() -> None:
    from passpost.auth import cli as auth_cli
    from passpost.passkit import cli as passkit_cli
    from passpost.pkpass import cli as pkpass_cli

    app.command("inspect")(pkpass_cli.inspect)
    app.add_typer(auth_cli.operator_app, name="operator")
    app.add_typer(auth_cli.apikey_app, name="apikey")
    app.add_typer(passkit_cli.pass_app, name="pass")
    app.command("push")(passkit_cli.push)


_register()


if __name__ == "__main__":
    app()
