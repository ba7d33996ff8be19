"""``passpost inspect``: validate .pkpass files offline and print a report."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from cryptography import x509
from rich.console import Console
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from passpost.pkpass.errors import PkpassError
from passpost.pkpass.report import Report
from passpost.pkpass.trust import apple_intermediates, load_certificates
from passpost.pkpass.validate import validate


class PolicyOption(StrEnum):
    """What a signature problem is: an error, a warning, or not checked."""

    require = "require"
    warn = "warn"
    off = "off"


def inspect(
    files: Annotated[
        list[Path],
        typer.Argument(help=".pkpass files to check.", show_default=False, metavar="FILE"),
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON list of reports instead of text.")
    ] = False,
    trust: Annotated[
        list[Path] | None,
        typer.Option(
            "--trust",
            help="PEM/DER file of trusted roots, replacing the bundled Apple roots (repeatable).",
            envvar="PASSPOST_TRUST_ANCHORS",
        ),
    ] = None,
    intermediate: Annotated[
        list[Path] | None,
        typer.Option(
            "--intermediate", help="Extra PEM/DER intermediates, besides the bundled WWDR set."
        ),
    ] = None,
    policy: Annotated[
        PolicyOption,
        typer.Option(
            help="Signature problems are errors (require), warnings (warn) or unchecked (off).",
            envvar="PASSPOST_SIGNATURE_POLICY",
        ),
    ] = PolicyOption.require,
) -> None:
    """Validate .pkpass files offline; exit status 0 when all are valid, 1 otherwise."""
    console = Console(highlight=False)
    try:
        anchors = _load_all(trust) if trust else None
        extra = _load_all(intermediate) if intermediate else []
    except PkpassError as exc:
        console.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(2) from exc
    results: list[dict[str, Any]] = []
    all_ok = True
    for path in files:
        try:
            report = validate(
                path,
                policy=policy.value,
                trust_anchors=anchors,
                intermediates=[*apple_intermediates(), *extra] if extra else None,
            )
        except PkpassError as exc:
            all_ok = False
            results.append(
                {
                    "file": str(path),
                    "ok": False,
                    "errorCode": exc.error_code,
                    "message": exc.message,
                }
            )
            if not as_json:
                console.print(f"[bold red]✘ {path}[/bold red]  {exc.error_code}: {exc.message}")
            continue
        all_ok = all_ok and report.ok
        results.append({"file": str(path), **report.to_dict()})
        if not as_json:
            _print_report(console, path, report)
    if as_json:
        typer.echo(json.dumps(results, indent=2, ensure_ascii=False))
    raise typer.Exit(0 if all_ok else 1)


def _load_all(paths: list[Path]) -> list[x509.Certificate]:
    certs: list[x509.Certificate] = []
    for path in paths:
        certs += load_certificates(path)
    return certs


def _print_report(console: Console, path: Path, report: Report) -> None:
    verdict = (
        Text("✔ VALID", style="bold green") if report.ok else Text("✘ INVALID", style="bold red")
    )
    console.print(Text.assemble(verdict, "  ", (str(path), "bold")))
    details = Table.grid(padding=(0, 2))
    details.add_column(style="dim", no_wrap=True)
    details.add_column()
    if report.identity is not None:
        ident = report.identity
        details.add_row(
            "pass", f"{ident.pass_type_identifier or '—'}  serial {ident.serial_number or '—'}"
        )
        details.add_row("team", ident.team_identifier or "—")
        details.add_row("style", ident.style or "—")
        details.add_row("issuer", f"{ident.organization_name or '—'}: {ident.description or '—'}")
    if report.signing_time is not None:
        details.add_row("signed", f"{report.signing_time:%Y-%m-%d %H:%M:%S} UTC")
    if report.chain:
        details.add_row("chain", " → ".join(_short(c) for c in report.chain))
    elif report.signer is not None:
        details.add_row("signer", _short(report.signer))
    details.add_row("files", ", ".join(sorted(report.files)) or "—")
    for finding in report.findings:
        style = "red" if finding.severity == "error" else "yellow"
        details.add_row(
            Text(finding.severity, style=style), f"{finding.error_code}: {finding.message}"
        )
    console.print(Padding(details, (0, 0, 1, 2)))


def _short(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    units = cert.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATIONAL_UNIT_NAME)
    name = str(names[0].value) if names else cert.subject.rfc4514_string()
    if name.startswith("Apple Worldwide Developer Relations") and units:
        return f"WWDR ({units[0].value!s})"
    return name
