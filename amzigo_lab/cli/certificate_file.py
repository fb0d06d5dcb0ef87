"""`amzigo certificate verify FILE.json [--public-key PEM]`: the offline branch (no home)."""

from __future__ import annotations

from pathlib import Path

from rich.markup import escape

from amzigo_lab.cli.common import console, print_json
from amzigo_lab.client.certificate_file import EXIT_CODES, VALID, verify_certificate_file


def verify_file(path: str, public_key: str | None, as_json: bool) -> None:
    """Verify an exported certificate file; exit 0 valid, 3 not yet valid, 1 invalid."""
    report = verify_certificate_file(Path(path), Path(public_key) if public_key else None)
    if as_json:
        print_json(report)
    else:
        colour = {VALID: "green", "not yet valid": "yellow"}.get(report["status"], "red")
        name = escape(str(report["certificate_id"] or path))
        console.print(f"{name}: [{colour}]{report['status'].upper()}[/]", soft_wrap=True)
        console.print(f"validation: {escape(str(report['validation']))}", soft_wrap=True)
        for p in report["problems"]:
            console.print(f"[red]problem[/] {escape(p)}", soft_wrap=True)
        for n in report["notes"]:
            console.print(f"note: {escape(n)}", soft_wrap=True)
    code = EXIT_CODES[report["status"]]
    if code:
        raise SystemExit(code)
