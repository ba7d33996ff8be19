"""The ``passpost`` command: each domain contributes its commands from its own ``cli`` module."""

from __future__ import annotations

import os
from pathlib import Path

import typer
from pydantic import ValidationError

from passpost import __version__
from passpost.config import Settings, get_settings
from passpost.logs import configure_logging, log_start

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
    try:
        settings = Settings()
    except ValidationError:
        return  # the command reports it (serve/api/worker: one line, exit status 2)
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


def _start(role: str) -> Settings:
    """Check the configuration, configure logging, then say what this process is about to
    use (its one start line). Bad configuration: one line naming the variable, exit 2."""
    from passpost import startup

    try:
        settings = startup.read_settings()
        startup.prepare(settings)
    except startup.ConfigurationError as exc:
        typer.secho(f"passpost {role}: configuration error: {exc}", err=True, fg=typer.colors.RED)
        raise typer.Exit(startup.EXIT_CONFIGURATION) from None
    startup.private_umask()
    configure_logging(settings)
    log_start(role, settings)
    return settings


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8080, help="Port to listen on."),
) -> None:
    """Migrate the database, then run the HTTP API and an embedded worker pool."""
    from passpost.web.server import run_server

    run_server(_start("serve"), host=host, port=port, with_worker=True)


@app.command()
def api(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8080, help="Port to listen on."),
) -> None:
    """Migrate the database, then run the HTTP API alone (workers run elsewhere)."""
    from passpost.web.server import run_server

    run_server(_start("api"), host=host, port=port, with_worker=False)


@app.command()
def worker(
    metrics_port: int = typer.Option(
        0, help="Serve this worker's Prometheus metrics on this port (0: don't)."
    ),
    metrics_host: str = typer.Option("127.0.0.1", help="Address of the metrics endpoint."),
) -> None:
    """Run a worker alone: send queued deliveries and pushes (run as many as you like)."""
    from prometheus_client import start_http_server

    from passpost.db import migrate
    from passpost.worker import run_worker

    settings = _start("worker")
    migrate(settings.resolved_database_url)
    if metrics_port:
        start_http_server(metrics_port, addr=metrics_host)
    run_worker(settings)


@app.command()
def migrate() -> None:
    """Bring the database schema up to date."""
    from passpost.db import migrate as run_migrations

    configure_logging(get_settings())
    run_migrations(get_settings().resolved_database_url)
    typer.echo("database is up to date")


def _register() -> None:
    from passpost.auth import cli as auth_cli
    from passpost.distribution import cli as distribution_cli
    from passpost.ops import cli as ops_cli
    from passpost.passkit import cli as passkit_cli
    from passpost.pkpass import cli as pkpass_cli

    app.command("inspect")(pkpass_cli.inspect)
    app.add_typer(auth_cli.operator_app, name="operator")
    app.add_typer(auth_cli.apikey_app, name="apikey")
    app.add_typer(passkit_cli.pass_app, name="pass")
    app.command("push")(passkit_cli.push)
    app.add_typer(distribution_cli.requests_app, name="requests")
    app.command("send")(distribution_cli.send)
    app.command("backup")(ops_cli.backup)
    app.command("rotate-key")(ops_cli.rotate_key)


_register()


if __name__ == "__main__":
    app()
