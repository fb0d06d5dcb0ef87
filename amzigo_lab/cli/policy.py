"""`amzigo policy log|diff|change|verify`: the data-policy change log (a gateway client).

Data policy 7: material changes are dated and summarised in a change log, and users are
notified. The versioned content is the access policy (`<home>/policy.toml`, or the shipped
default) plus the retention rules; every version is signed into `<home>/policy-log.jsonl` by
the gateway. Any logged-in user may read the log; `change` needs the compliance or
security_officer role. `amzigo login` prints the version in force and the changes since your
last login. See docs/operations.md ("Changing the data policy").
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from amzigo_lab.cli.auth import act
from amzigo_lab.cli.common import (
    client_home_option,
    console,
    handle_errors,
    json_option,
    print_json,
)
from amzigo_lab.client import protocol
from amzigo_lab.client.workbench import home_path
from amzigo_lab.errors import AmzigoError


def _call(home: str | None, action: str, payload: dict[str, Any]) -> dict[str, Any]:
    return act(home_path(home), action, payload)


def notice_lines(policy: dict[str, Any] | None) -> list[str]:
    """The login notice: "Policy version N (effective ...); K changes since your last login:
    ..." (one line per change after the first)."""
    if not policy:
        return []
    unread = policy.get("unread") or []
    head = f"Policy version {policy['version']} (effective {policy['effective']})"
    since = "since the initial policy" if policy.get("first") else "since your last login"
    if not unread:
        return [f"{head}." if policy.get("first") else f"{head}; no changes {since}."]
    changes = "change" if len(unread) == 1 else "changes"
    lines = [f"{head}; {len(unread)} {changes} {since}:"]
    lines += [f"  v{u['version']} (effective {u['effective']}): {u['summary']}" for u in unread]
    lines.append("  Read them with `amzigo policy log` and `amzigo policy diff A B`.")
    return lines


@click.group("policy")
def policy_group() -> None:
    """The data policy's change log (data policy 7): versions, diffs, changes, verification.

    \b
    amzigo policy log                                  versions, dates, summaries, who
    amzigo policy diff 1 2                             what changed between two versions
    amzigo policy change --summary "..." --effective 2026-12-01 policy.toml
                                                       (compliance / security_officer)
    amzigo policy verify                               signatures, chain, policy in force

    Needs a login ($AMZIGO_SESSION); every command is audited.
    """


@policy_group.command("log")
@client_home_option
@json_option
@handle_errors
def log_cmd(home: str | None, as_json: bool) -> None:
    """List the policy versions: number, effective date, summary, who recorded it.

    Example:

        amzigo policy log
    """
    rows = _call(home, protocol.POLICY_LOG, {})["versions"]
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print("no policy version recorded yet")
        return
    table = Table("version", "effective", "recorded", "by", "summary")
    for r in rows:
        flag = " (initial)" if r.get("initial") else ""
        table.add_row(str(r["version"]), r["effective"], r["recorded_at"], r["by"],
                      escape(r["summary"]) + flag)  # fmt: skip
    console.print(table)


@policy_group.command("diff")
@click.argument("a", type=int)
@click.argument("b", type=int)
@client_home_option
@json_option
@handle_errors
def diff_cmd(a: int, b: int, home: str | None, as_json: bool) -> None:
    """Show what changed in the policy file and the retention rules from version A to B.

    Example:

        amzigo policy diff 1 2
    """
    answer = _call(home, protocol.POLICY_DIFF, {"a": a, "b": b})
    if as_json:
        print_json(answer)
        return
    for c in answer["changes"]:
        click.echo(f"v{c['version']} effective {c['effective']} by {c['by']}: {c['summary']}")
    text = answer["policy_diff"] + answer["retention_diff"]
    click.echo(text if text else f"versions {a} and {b} have the same content")


@policy_group.command("change")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--summary", required=True, help="What changed and why (shown to every user).")
@click.option(
    "--effective",
    default=None,
    help="The date it takes effect (YYYY-MM-DD; default today; not in the future).",
)
@client_home_option
@json_option
@handle_errors
def change_cmd(
    file: Path, summary: str, effective: str | None, home: str | None, as_json: bool
) -> None:
    """Put FILE in force as the home's policy.toml, as a new signed version of the change log.

    Refused, with nothing changed, without a summary, with a future date, with invalid TOML,
    or when FILE is the version in force already. Users see the summary at their next login.
    To record a hand edit of <home>/policy.toml, give that file.

    Example:

    \b
        amzigo policy change --summary "analysts lose review_requests" \\
            --effective 2026-12-01 ./policy.toml
    """
    if effective is not None:
        try:
            dt.date.fromisoformat(effective)
        except ValueError:
            raise AmzigoError(f"--effective {effective!r}: give a date as YYYY-MM-DD") from None
    body = {
        "policy_toml": file.read_text(encoding="utf-8"),
        "summary": summary,
        "effective": effective or dt.date.today().isoformat(),
    }
    version = _call(home, protocol.POLICY_CHANGE, body)["version"]
    if as_json:
        print_json(version)
        return
    console.print(
        f"policy version {version['version']} recorded and in force (effective "
        f"{version['effective']}, content {version['sha256'][:16]}): {escape(version['summary'])}"
    )


@policy_group.command("verify")
@client_home_option
@json_option
@handle_errors
def verify_cmd(home: str | None, as_json: bool) -> None:
    """Check the change log: every signature, the hash chain, the head, and that the policy in
    force is the newest version. Exit 1 on any problem.

    Example:

        amzigo policy verify
    """
    report = _call(home, protocol.POLICY_VERIFY, {})
    if as_json:
        print_json(report)
    elif report["ok"]:
        head = report["head"] or {}
        console.print(
            f"policy change log intact: {report['versions']} version(s), version "
            f"{head.get('version')} (effective {head.get('effective')}) in force"
        )
    else:
        for p in report["problems"]:
            console.print(f"[red]FAIL[/] {escape(p)}")
    if not report["ok"]:
        raise SystemExit(1)
