"""``passpost requests list|show`` and ``passpost send``: requests from a terminal.

Every number comes from ``distribution.status``, the functions behind ``/api/v1/requests``.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from passpost.cli_support import cli_session
from passpost.distribution import status

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
