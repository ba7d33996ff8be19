"""``passpost requests list|show`` and ``passpost send``: requests from a terminal.

Every number comes from ``distribution.status``, the functions behind ``/api/v1/requests``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from passpost.audience.csv_import import read_contacts
from passpost.cli_support import cli_session
from passpost.config import get_settings
from passpost.db import session_scope
from passpost.distribution import compose, status
from passpost.distribution.models import DeliveryState
from passpost.distribution.schemas import RecipientRef
from passpost.distribution.submit import commit_import, queue_import
from passpost.errors import BadRequest, PasspostError

requests_app = typer.Typer(help="Distribution requests: list them, show one.", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print the API's JSON instead.")]


def _channels_text(channels: dict[str, dict[str, int]]) -> str:
    return "  ".join(
        f"{channel}: " + ", ".join(f"{n} {state}" for state, n in sorted(states.items()))
        for channel, states in sorted(channels.items())
    )


@requests_app.command("list")
def list_requests(
    state: Annotated[
        str | None,
        typer.Option(help="queued, in progress, done, cancelled, or active."),
    ] = None,
    start: Annotated[int, typer.Option(min=0, help="Skip this many (newest first).")] = 0,
    page_size: Annotated[int, typer.Option("--page-size", min=1, max=500)] = 20,
    as_json: JsonOption = False,
) -> None:
    """List requests, newest first, with their progress and per-channel counts."""
    with cli_session(write=False) as session:
        page = status.list_requests(session, start=start, page_size=page_size, state=state)
    if as_json:
        typer.echo(json.dumps(page, indent=2))
        return
    table = Table(title=f"{page['total']} request(s)", title_justify="left")
    for column in ("request", "created", "state", "recipients", "progress", "channels"):
        table.add_column(column, no_wrap=column != "channels")
    for item in page["requests"]:
        table.add_row(
            item["requestId"],
            item["createdAt"],
            item["state"],
            str(item["recipients"]),
            f"{item['progress']:.0%}",
            _channels_text(item["channels"]),
        )
    Console().print(table)


@requests_app.command("show")
def show_request(
    request_id: Annotated[str, typer.Argument(help="The request id.")],
    as_json: JsonOption = False,
) -> None:
    """Show one request: state, progress, counts per channel and state, timings."""
    with cli_session(write=False) as session:
        progress = status.request_progress(session, status.parse_id(request_id, "requestId"))
    if as_json:
        typer.echo(json.dumps(progress, indent=2))
        return
    print_progress(progress)


def print_progress(progress: dict[str, Any]) -> None:
    """The request's facts, then one row per channel with its count in every state."""
    console = Console()
    console.print(
        f"request {progress['requestId']} ({progress['kind']}): [bold]{progress['state']}[/], "
        f"{progress['progress']:.0%} final, {progress['recipients']} recipient(s), "
        f"{progress['opened']} opened"
    )
    for key in ("createdAt", "firstSubmittedAt", "lastSubmittedAt", "cancelledAt"):
        if progress.get(key):
            console.print(f"  {key}: {progress[key]}")
    console.print(summary_table(progress["channels"]))


def summary_table(channels: dict[str, dict[str, int]]) -> Table:
    """Channels as rows, delivery states as columns."""
    states = sorted({state for counts in channels.values() for state in counts})
    table = Table()
    table.add_column("channel")
    for state in states:
        table.add_column(state, justify="right")
    table.add_column("total", justify="right")
    for channel, counts in sorted(channels.items()):
        table.add_row(channel, *(str(counts.get(s, 0)) for s in states), str(sum(counts.values())))
    return table


def _recipients(
    *, to: Path | None, recipient: list[str], audience_all: bool, region: str
) -> list[RecipientRef]:
    chosen = [to is not None, bool(recipient), audience_all]
    if sum(chosen) != 1:
        raise BadRequest(
            "Give exactly one of --to FILE.csv, --recipient ADDRESS (repeatable), --audience-all.",
            error_code="NO_RECIPIENTS",
        )
    if to is not None:
        with to.open("rb") as data:
            rows, report = read_contacts(data, region=region)
        for error in report.errors:
            typer.echo(
                f"{to}: row {error.row} skipped: {error.message} ({error.error_code})", err=True
            )
        return [compose.contact_ref(fields) for fields in rows]
    if recipient:
        return [compose.address_ref(address, region=region) for address in recipient]
    with cli_session(write=False) as session:
        return compose.audience_refs(session)


def _channel_progress(progress: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """``{channel: (final, total)}``."""
    return {
        channel: (
            sum(n for s, n in counts.items() if s not in DeliveryState.PENDING),
            sum(counts.values()),
        )
        for channel, counts in sorted(progress["channels"].items())
    }


def watch(request_id: int, *, interval: float = 0.5) -> dict[str, Any]:
    """A progress bar per channel until every delivery is final; the last progress read."""
    url = get_settings().resolved_database_url
    columns = (
        TextColumn("{task.description:>6}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns) as bars:
        tasks: dict[str, TaskID] = {}
        waited = 0.0
        while True:
            with session_scope(url) as session:
                progress = status.request_progress(session, request_id)
            for channel, (done, total) in _channel_progress(progress).items():
                if channel not in tasks:
                    tasks[channel] = bars.add_task(channel, total=total)
                bars.update(tasks[channel], completed=done, total=total)
            if progress["pending"] == 0:
                return progress
            if waited >= 10 and progress["pending"] == progress["deliveries"]:
                bars.console.print(
                    "[yellow]nothing sent yet: is a worker running "
                    "(passpost serve, or passpost worker) on this data directory?[/]"
                )
                waited = float("-inf")
            time.sleep(interval)
            waited += interval


def send(
    pkpass: Annotated[Path, typer.Argument(help="The signed .pkpass to send.", exists=True)],
    to: Annotated[
        Path | None, typer.Option("--to", help="A CSV of recipients (email/mobileNumber/name…).")
    ] = None,
    recipient: Annotated[
        list[str] | None,
        typer.Option("--recipient", help="An e-mail address or mobile number (repeatable)."),
    ] = None,
    audience_all: Annotated[
        bool, typer.Option("--audience-all", help="Everyone in the audience.")
    ] = False,
    email_subject: Annotated[str | None, typer.Option(help="E-mail subject.")] = None,
    email_body: Annotated[
        str | None, typer.Option(help="E-mail body (HTML or text; ##Email Pass Link##).")
    ] = None,
    sms_text: Annotated[str | None, typer.Option(help="SMS text (##SMS Pass Link##).")] = None,
    priority: Annotated[bool, typer.Option(help="Send before other requests.")] = False,
    watch_it: Annotated[
        bool, typer.Option("--watch", help="Show progress until every delivery is final.")
    ] = False,
) -> None:
    """Send a pass: the same request as POST /api/v1/message/pass/import.

    Without message options both channels are used with default texts; with only e-mail
    (or only SMS) options only that channel is.
    """
    settings = get_settings()
    upload = pkpass.read_bytes()
    try:
        refs = _recipients(
            to=to,
            recipient=recipient or [],
            audience_all=audience_all,
            region=settings.sms_default_region,
        )
        messages = compose.Messages.choose(
            email_subject=email_subject, email_body=email_body, sms_text=sms_text
        )
        content = compose.compose(refs, messages, priority=priority)
    except PasspostError as exc:
        typer.echo(f"error: {exc.message} ({exc.error_code})", err=True)
        raise typer.Exit(1) from exc
    with cli_session(write=False) as session:
        result = commit_import(
            session, settings=settings, upload=upload, content=content, created_by="cli"
        )
    queue_import(result, priority=priority, start_at=None)
    channels = ", ".join(n.channel for n in content.integration.issue if n.enabled)
    typer.echo(
        f"request {result.request_id} queued: {len(refs)} recipient(s), {channels or 'no channel'}"
    )
    if watch_it:
        Console().print(summary_table(watch(result.request_id)["channels"]))
