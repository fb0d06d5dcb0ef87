"""`amzigo incident ...`: incident response as a runbook (a gateway client).

Every command acts as the logged-in user of $AMZIGO_SESSION, who must hold the compliance or
security_officer role (checked and audited by the home's gateway). The gateway does the work;
`evidence verify` alone runs offline, with no home (amzigo_lab.client.evidence).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from amzigo_lab.cli.auth import act
from amzigo_lab.cli.common import (
    client_home_option,
    console,
    handle_errors,
    json_option,
    print_json,
)
from amzigo_lab.client import evidence as ev
from amzigo_lab.client import protocol
from amzigo_lab.client.workbench import home_path

SEVERITIES = ("low", "medium", "high", "critical")


def _call(home: str | None, action: str, payload: dict[str, Any]) -> dict[str, Any]:
    return act(home_path(home), action, payload)


def _clock(inc: dict[str, Any]) -> str:
    if inc.get("notification") in ("met", "missed"):
        return f"notified {inc['notified_at']} ({inc['notification']})"
    left = inc.get("hours_left", 0)
    if inc["notification"] == "overdue":
        return f"Amazon notification OVERDUE since {inc['deadline']}"
    return f"notify Amazon by {inc['deadline']} ({left} h left)"


@click.group("incident")
def incident_group() -> None:
    """Security incident response (data policy 3.3): the 3 a.m. runbook.

    \b
    1. amzigo incident open --title "..." --severity high      (clock starts at detection)
    2. amzigo incident isolate INC --scope user:NAME           (or tenant:, token:, credential:,
                                                                analysts, all; --mode deny-all)
    3. amzigo incident evidence collect INC --out DIR          (signed, with chain of custody)
    4. amzigo incident notify-draft INC                        (Amazon within 24 h; you send it)
    5. amzigo incident mark-notified INC                       (when you sent it)
    6. amzigo incident restore INC; amzigo incident close INC --note "root cause, fix"

    Every command needs the compliance or security_officer role ($AMZIGO_SESSION) and is
    audited; `amzigo incident timeline INC` shows everything done so far.
    """


@incident_group.command("open")
@click.option("--title", required=True, help="What happened, in one line.")
@click.option("--severity", type=click.Choice(SEVERITIES), required=True)
@click.option(
    "--detected-at", default=None, help="When it was detected (ISO time, UTC); default now."
)
@client_home_option
@json_option
@handle_errors
def open_cmd(
    title: str, severity: str, detected_at: str | None, home: str | None, as_json: bool
) -> None:
    """Open an incident; the 24-hour Amazon notification clock starts at detection.

    Example:

        amzigo incident open --title "analyst token used from unknown host" --severity high
    """
    body = {"title": title, "severity": severity, "detected_at": detected_at}
    inc = _call(home, protocol.INCIDENT_OPEN, body)["incident"]
    if as_json:
        print_json(inc)
        return
    console.print(f"incident {inc['id']} opened ({inc['severity']}): {_clock(inc)}")
    console.print(f"next: amzigo incident isolate {inc['id']} --scope ...")


@incident_group.command("list")
@click.option("--open-only", is_flag=True, help="Leave out closed incidents.")
@client_home_option
@json_option
@handle_errors
def list_cmd(open_only: bool, home: str | None, as_json: bool) -> None:
    """List incidents with their notification deadline.

    Example:

        amzigo incident list --open-only
    """
    answer = _call(home, protocol.INCIDENT_LIST, {"all": not open_only})
    rows = answer["incidents"]
    if as_json:
        print_json(answer)
        return
    if answer["mode"] != "normal":
        console.print(f"[bold red]gateway mode: {answer['mode']}[/]")
    if not rows:
        console.print("no incidents")
        return
    table = Table("id", "severity", "status", "detected", "Amazon notification", "title")
    for inc in rows:
        table.add_row(inc["id"], inc["severity"], inc["status"], inc["detected_at"],
                      _clock(inc), inc["title"])  # fmt: skip
    console.print(table)


def _print_timeline(timeline: list[dict[str, Any]]) -> None:
    for a in timeline:
        undone = "released" if a["kind"] == "hold" else "reversed"
        flags = (f" ({undone} {a['undone_at']})" if a["undone_at"] else "") + (
            "" if a["intact"] else " [MAC FAIL]"
        )
        click.echo(f"#{a['seq']:>3} {a['at']} {a['actor']:<14} {a['kind']:<18} "
                   f"{a['summary']}{flags}")  # fmt: skip


@incident_group.command("show")
@click.argument("incident_id")
@client_home_option
@json_option
@handle_errors
def show_cmd(incident_id: str, home: str | None, as_json: bool) -> None:
    """Show an incident, its deadline and its timeline.

    Example:

        amzigo incident show INC-20261201-3bd696 --json
    """
    answer = _call(home, protocol.INCIDENT_SHOW, {"id": incident_id})
    if as_json:
        print_json(answer)
        return
    inc = answer["incident"]
    console.print(f"{inc['id']} [{inc['severity']}, {inc['status']}] {inc['title']}",
                  markup=False)  # fmt: skip
    console.print(f"detected {inc['detected_at']}; {_clock(inc)}; gateway mode {answer['mode']}")
    if not inc["intact"]:
        console.print("[bold red]the incident record fails its MAC (edited outside amzigo)[/]")
    _print_timeline(answer["timeline"])


@incident_group.command("timeline")
@click.argument("incident_id")
@client_home_option
@json_option
@handle_errors
def timeline_cmd(incident_id: str, home: str | None, as_json: bool) -> None:
    """Every action of an incident, in order (each is also an audit event).

    Example:

        amzigo incident timeline INC-20261201-3bd696
    """
    answer = _call(home, protocol.INCIDENT_SHOW, {"id": incident_id})
    if as_json:
        print_json(answer["timeline"])
        return
    console.print(f"{answer['incident']['id']}: {_clock(answer['incident'])}")
    _print_timeline(answer["timeline"])


@incident_group.command("isolate")
@click.argument("incident_id")
@click.option(
    "--scope",
    default=None,
    help="user:NAME, tenant:ID, token:ID (audit token id or s<session id>), credential:NAME, "
    "analysts, or all.",
)
@click.option("--mode", type=click.Choice(["read-only", "deny-all"]), default=None,
              help="Put the whole gateway in this mode.")  # fmt: skip
@client_home_option
@json_option
@handle_errors
def isolate_cmd(
    incident_id: str, scope: str | None, mode: str | None, home: str | None, as_json: bool
) -> None:
    """Contain: revoke sessions and tokens, disable accounts, pause ingestion, hold the data.

    Never deletes data; places a legal hold on every affected tenant (released at close).

    Example:

        amzigo incident isolate INC-20261201-ab12cd --scope user:ana --mode read-only
    """
    answer = _call(home, protocol.INCIDENT_ISOLATE,
                   {"id": incident_id, "scope": scope, "mode": mode})  # fmt: skip
    if as_json:
        print_json(answer)
        return
    _print_timeline(answer["actions"])
    console.print(f"gateway mode: {answer['mode']}; undo with `amzigo incident restore`")


@incident_group.command("restore")
@click.argument("incident_id")
@click.option("--action", "actions", type=int, multiple=True,
              help="Only this timeline action (#seq); repeatable. Default: all.")  # fmt: skip
@client_home_option
@json_option
@handle_errors
def restore_cmd(
    incident_id: str, actions: tuple[int, ...], home: str | None, as_json: bool
) -> None:
    """Reverse isolation deliberately (accounts, pauses, gateway mode). Revoked sessions and
    tokens stay revoked; legal holds stay until close.

    Example:

        amzigo incident restore INC-20261201-3bd696 --action 3
    """
    answer = _call(home, protocol.INCIDENT_RESTORE, {"id": incident_id, "actions": list(actions)})
    if as_json:
        print_json(answer)
        return
    for line in answer["restored"]:
        console.print(f"restored: {line}", markup=False)
    console.print(f"gateway mode: {answer['mode']}")


@incident_group.command("close")
@click.argument("incident_id")
@click.option("--note", required=True, help="Root cause and remediation.")
@client_home_option
@json_option
@handle_errors
def close_cmd(incident_id: str, note: str, home: str | None, as_json: bool) -> None:
    """Close an incident (after restore); releases its legal holds (audited).

    Example:

        amzigo incident close INC-20261201-3bd696 --note "token rotated, MFA re-enrolled"
    """
    inc = _call(home, protocol.INCIDENT_CLOSE, {"id": incident_id, "note": note})["incident"]
    if as_json:
        print_json(inc)
        return
    console.print(f"incident {inc['id']} closed; {_clock(inc)}")


@incident_group.command("notify-draft")
@click.argument("incident_id")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Write it here too.")
@client_home_option
@json_option
@handle_errors
def notify_draft_cmd(incident_id: str, out: Path | None, home: str | None, as_json: bool) -> None:
    """The notification for Amazon's security team, for a person to review and send.

    amzigo-lab never sends anything to Amazon or any regulator; record the sending with
    `amzigo incident mark-notified`.

    Example:

        amzigo incident notify-draft INC-20261201-3bd696 --out notification.txt
    """
    answer = _call(home, protocol.INCIDENT_NOTIFY_DRAFT, {"id": incident_id})
    if out is not None:
        out.write_text(answer["text"], encoding="utf-8")
    if as_json:
        print_json(answer)
        return
    click.echo(answer["text"], nl=False)


@incident_group.command("mark-notified")
@click.argument("incident_id")
@click.option("--at", default=None, help="When it was sent (ISO time, UTC); default now.")
@click.option("--note", default="", help="How and to whom (e.g. the ticket number).")
@client_home_option
@json_option
@handle_errors
def mark_notified_cmd(
    incident_id: str, at: str | None, note: str, home: str | None, as_json: bool
) -> None:
    """Record that a person sent the notification to Amazon (deadline met or missed).

    Example:

        amzigo incident mark-notified INC-20261201-3bd696
    """
    inc = _call(home, protocol.INCIDENT_NOTIFIED,
                {"id": incident_id, "at": at, "note": note})["incident"]  # fmt: skip
    if as_json:
        print_json(inc)
        return
    console.print(f"{inc['id']}: {_clock(inc)}")


@incident_group.group("evidence")
def evidence_group() -> None:
    """Evidence bundles with a chain of custody."""


@evidence_group.command("collect")
@click.argument("incident_id")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="A new directory.")
@client_home_option
@json_option
@handle_errors
def evidence_collect_cmd(incident_id: str, out: Path, home: str | None, as_json: bool) -> None:
    """Collect a signed evidence bundle (audit, checkpoints, catalog and identity snapshots
    without PII or keys, alert ledger, config and policy versions) into --out.

    Example:

        amzigo incident evidence collect INC-20261201-3bd696 --out ./evidence-INC-20261201-3bd696
    """
    answer = _call(home, protocol.INCIDENT_EVIDENCE, {"id": incident_id})
    ev.write_bundle(out, answer["files"])
    if as_json:
        print_json({"bundle": str(out), "manifest_sha256": answer["manifest_sha256"],
                    "items": answer["items"]})  # fmt: skip
        return
    console.print(f"bundle {out}: {answer['items']} items, manifest {answer['manifest_sha256']}")
    console.print(f"verify anywhere: amzigo incident evidence verify {out}")


@evidence_group.command("handover")
@click.argument("bundle", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--to", "to", required=True, help="Who receives it.")
@click.option("--reason", required=True, help="Why.")
@client_home_option
@json_option
@handle_errors
def evidence_handover_cmd(
    bundle: Path, to: str, reason: str, home: str | None, as_json: bool
) -> None:
    """Append a signed hand-over to the bundle's custody log (audited by the gateway).

    Example:

        amzigo incident evidence handover ./evidence --to "outside counsel" --reason review
    """
    manifest = json.loads((bundle / ev.MANIFEST).read_text(encoding="utf-8"))
    prev, _last = ev.last_custody(bundle)
    answer = _call(home, protocol.INCIDENT_CUSTODY,
                   {"id": manifest["incident"], "manifest_sha256": ev.manifest_sha256(bundle),
                    "prev": prev, "to": to, "reason": reason})  # fmt: skip
    ev.append_custody(bundle, answer["entry"])
    if as_json:
        print_json(answer["entry"])
        return
    console.print(f"custody: handed over to {to} at {answer['entry']['at']}", markup=False)


@evidence_group.command("verify")
@click.argument("bundle", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--key", type=click.Path(path_type=Path, exists=True, dir_okay=False), default=None,
              help="The home's published certificate-signing.pub.pem, to pin the key.")  # fmt: skip
@json_option
@handle_errors
def evidence_verify_cmd(bundle: Path, key: Path | None, as_json: bool) -> None:
    """Check a bundle end to end, offline (no home needed): signature, every item's SHA-256,
    nothing added or removed, the custody chain. Exit 1 if anything fails.

    Example:

        amzigo incident evidence verify ./evidence-INC-20261201-3bd696 --key signer.pem
    """
    report = ev.verify_bundle(bundle, key.read_text(encoding="utf-8") if key else None)
    if as_json:
        print_json(report)
    else:
        pinned = "pinned" if report.get("key_pinned") else "NOT pinned: pass --key"
        console.print(f"{bundle}: incident {report.get('incident')}, {report.get('items')} items,"
                      f" key {report.get('key_id')} ({pinned})", markup=False)  # fmt: skip
        for c in report.get("custody", []):
            console.print(f"  custody {c['at']} {c['event']} by {c['by']} to {c['to']}: "
                          f"{c['reason']}", markup=False)  # fmt: skip
        for p in report["problems"]:
            console.print(f"  PROBLEM: {p}", markup=False)
        console.print("OK" if report["ok"] else "FAILED")
    if not report["ok"]:
        raise SystemExit(1)


COMMANDS = [incident_group]
