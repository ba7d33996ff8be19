"""``passpost inspect`` (to be filled in)."""

import typer


def inspect(files: list[str] = typer.Argument(...)) -> None:
    """Validate .pkpass files offline and print a report."""
    raise typer.Exit(2)
