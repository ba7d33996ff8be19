"""The ``passpost`` command: each domain contributes its commands from its own ``cli`` module."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import typer

from passpost import __version__
from passpost.config import Settings, get_settings

app = typer.Typer(
    name="passpost",
    help="Self-hosted Apple Wallet pass distribution.",
    no_args_is_help=True,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"passpost {__version__}")
        raise typer.Exit()


# Commands that never open the data directory: no note about creating one.
_NO_DATA = {"inspect", None}


@app.callback()
def main(
    ctx: typer.Context,
    data_dir: Path | None = typer.Option(
        None,
        "--data-dir",
        help="Data directory (default: $PASSPOST_DATA_DIR or ./passpost-data).",
        show_default=False,
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Self-hosted Apple Wallet pass distribution."""
    if data_dir is not None:
        os.environ["PASSPOST_DATA_DIR"] = str(data_dir)
        get_settings.cache_clear()
    if ctx.invoked_subcommand not in _NO_DATA:
        _note_new_data_dir()


def _note_new_data_dir() -> None:
    # Settings() rather than get_settings(): the latter creates the directory.
    settings = Settings()
    if settings.database_url or (settings.data_dir / "passpost.db").exists():
        return
    where = settings.data_dir.resolve()
    state = "an empty directory" if where.is_dir() else "a new directory"
    typer.secho(
        f"note: no passpost database in {where}: starting a new, empty one in {state}. "
        "Use --data-dir or PASSPOST_DATA_DIR to open an existing one.",
        err=True,
        fg=typer.colors.YELLOW,
    )


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
    from passpost.distribution import cli as distribution_cli
    from passpost.passkit import cli as passkit_cli
    from passpost.pkpass import cli as pkpass_cli

    app.command("inspect")(pkpass_cli.inspect)
    app.add_typer(auth_cli.operator_app, name="operator")
    app.add_typer(auth_cli.apikey_app, name="apikey")
    app.add_typer(passkit_cli.pass_app, name="pass")
    app.command("push")(passkit_cli.push)
    app.add_typer(distribution_cli.requests_app, name="requests")
    app.command("send")(distribution_cli.send)


_register()


if __name__ == "__main__":
    app()
