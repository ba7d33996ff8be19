"""``passpost pass versions SERIAL`` and ``passpost push SERIAL``: look at and re-push passes."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from passpost.cli_support import cli_session
from passpost.errors import NotFound
from passpost.passes.models import PassUpdate, PassVersion, WalletPass
from passpost.passkit import service
from passpost.passkit.models import Registration

pass_app = typer.Typer(help="Passes: their versions.", no_args_is_help=True)

TypeOption = Annotated[
    str | None,
    typer.Option("--type", "-t", help="passTypeIdentifier (needed when serials collide)."),
]


def find_pass(session: Session, *, serial: str, pass_type: str | None) -> WalletPass:
    """The pass with this serial (and type); ``NotFound`` if none or ambiguous."""
    query = select(WalletPass).where(WalletPass.serial_number == serial)
    if pass_type:
        query = query.where(WalletPass.pass_type_identifier == pass_type)
    found = list(session.scalars(query.limit(10)))
    if not found:
        raise NotFound(f"No pass with serial {serial!r}.", error_code="PASS_NOT_FOUND")
    if len(found) > 1:
        types = ", ".join(sorted(p.pass_type_identifier for p in found))
        raise NotFound(
            f"Serial {serial!r} exists for several pass types ({types}): use --type.",
            error_code="PASS_AMBIGUOUS",
        )
    return found[0]


@pass_app.command("versions")
def versions(
    serial: Annotated[str, typer.Argument(help="The pass's serialNumber.")],
    pass_type: TypeOption = None,
) -> None:
    """List a pass's versions, newest last (without reading their bytes)."""
    with cli_session() as session:
        wallet_pass = find_pass(session, serial=serial, pass_type=pass_type)
        rows = session.execute(
            select(
                PassVersion.id,
                PassVersion.version,
                PassVersion.size,
                PassVersion.sha256,
                PassVersion.created_at,
                PassUpdate.seq,
                PassUpdate.last_modified,
            )
            .outerjoin(PassUpdate, PassUpdate.version_id == PassVersion.id)
            .where(PassVersion.pass_id == wallet_pass.id)
            .order_by(PassVersion.version)
        ).all()
        devices = session.scalar(select(func.count()).where(Registration.pass_id == wallet_pass.id))
        table = Table(
            title=f"{wallet_pass.pass_type_identifier} / {wallet_pass.serial_number} "
            f"(updatable: {'yes' if wallet_pass.updatable else 'no'}, devices: {devices})"
        )
        for column in ("version", "created (UTC)", "size", "sha256", "tag", "Last-Modified", ""):
            table.add_column(column)
        for row in rows:
            table.add_row(
                str(row.version),
                row.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                str(row.size),
                row.sha256[:16],
                str(row.seq) if row.seq is not None else "-",
                row.last_modified.strftime("%Y-%m-%d %H:%M:%S") if row.last_modified else "-",
                "current" if row.id == wallet_pass.latest_version_id else "",
            )
        Console(width=140).print(table)


def push(
    serial: Annotated[str, typer.Argument(help="The pass's serialNumber.")],
    pass_type: TypeOption = None,
) -> None:
    """Push the pass again to every registered device (through the queue)."""
    from passpost.passkit.tasks import push_pass_update
    from passpost.queue import PRIORITY_HIGH, enqueue

    with cli_session() as session:
        wallet_pass = find_pass(session, serial=serial, pass_type=pass_type)
        count = service.request_repush(session, pass_id=wallet_pass.id)
        pass_id, label = wallet_pass.id, f"{wallet_pass.pass_type_identifier}/{serial}"
    if count == 0:
        typer.echo(f"{label}: no registered device, nothing to push")
        return
    enqueue(push_pass_update, pass_id, priority=PRIORITY_HIGH)
    typer.echo(f"{label}: {count} push(es) queued")
