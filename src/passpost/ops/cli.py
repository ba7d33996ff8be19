"""``passpost backup`` and ``passpost rotate-key``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from passpost.config import get_settings
from passpost.db import migrate
from passpost.logs import configure_logging

if TYPE_CHECKING:
    from passpost.ops.keys import Survey


def backup(
    dest: Path = typer.Argument(..., help="An empty or new directory."),
) -> None:
    """Copy the SQLite database, the queue and the secret key into DEST, online."""
    from passpost.ops.backup import BackupError
    from passpost.ops.backup import backup as make_backup

    settings = get_settings()
    configure_logging(settings)
    try:
        made = make_backup(settings, dest)
    except BackupError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    queue = f"{made.queue_bytes} bytes" if made.queue_bytes is not None else "not SQLite, skipped"
    typer.echo(
        f"backup in {made.dest}: passpost.db {made.database_bytes} bytes, queue.db {queue}, "
        f"secret.key ({made.keys} key(s)). Run it with: passpost --data-dir {made.dest} serve"
    )


def rotate_key(
    check: bool = typer.Option(
        False, "--check", help="Only count the secrets under each key; change nothing."
    ),
) -> None:
    """Re-encrypt every stored secret under a new secret key, while passpost keeps running."""
    from passpost.ops import keys

    settings = get_settings()
    configure_logging(settings)
    url = settings.resolved_database_url
    migrate(url)
    if check:
        found = keys.survey(url)
        _print_survey(found)
        raise typer.Exit(1 if found.total("unreadable") else 0)
    try:
        rotation = keys.rotate(settings)
    except keys.RotationError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    changed = sum(rotation.changed.values())
    _print_survey(rotation.survey)
    if settings.secret_key:
        typer.echo(
            f"re-encrypted {changed} secret(s) under the first key of PASSPOST_SECRET_KEY; "
            "now remove the old key(s) from it on every process."
        )
    else:
        typer.echo(
            f"re-encrypted {changed} secret(s) under a new key; the old key was removed "
            "from secret.key."
        )


def _print_survey(found: Survey) -> None:
    table = Table("stored secret", "primary key", "older key", "unreadable")
    for name, counts in found.counts.items():
        table.add_row(name, str(counts["primary"]), str(counts["older"]), str(counts["unreadable"]))
    Console().print(table)
