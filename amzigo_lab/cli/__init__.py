"""The `amzigo` command: a thin layer over the package. Every command has --help with an example."""

from __future__ import annotations

import inspect

import click

from amzigo_lab.cli.audit import audit_verify
from amzigo_lab.cli.audit_client import audit_group
from amzigo_lab.cli.campaign import campaign_group
from amzigo_lab.cli.compliance import COMMANDS as COMPLIANCE_COMMANDS
from amzigo_lab.cli.compliance_client import COMMANDS as COMPLIANCE_CLIENT_COMMANDS
from amzigo_lab.cli.config import config_group
from amzigo_lab.cli.costs_client import costs_group
from amzigo_lab.cli.demo import demo_cmd
from amzigo_lab.cli.dsr import dsr_group
from amzigo_lab.cli.gateway import gateway_group
from amzigo_lab.cli.governance import COMMANDS as GOVERNANCE_COMMANDS
from amzigo_lab.cli.incident import incident_group
from amzigo_lab.cli.ingest import COMMANDS as INGEST_COMMANDS
from amzigo_lab.cli.lake import doctor_cmd, init_cmd, keys_group
from amzigo_lab.cli.lake_client import lake_group
from amzigo_lab.cli.policy import policy_group
from amzigo_lab.cli.report import report_cmd
from amzigo_lab.cli.schedule import schedule_cmd
from amzigo_lab.cli.serve import dashboard_cmd, lab_cmd

#: Commands root runs itself on a hardened home (the others switch to its service user).
_ROOT_COMMANDS = frozenset({"init", "gateway"})
#: Commands that keep the capabilities to start kernels as the kernel user.
_SERVER_COMMANDS = frozenset({"lab", "dashboard"})


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="amzigo-lab")
@click.option("-q", "--quiet", is_flag=True, help="Print only errors and requested output.")
@click.option("-v", "--verbose", count=True, help="Log to stderr (-v info, -vv debug).")
@click.pass_context
def main(ctx: click.Context, quiet: bool, verbose: int) -> None:
    """amzigo-lab: governed analytics over Amazon seller data.

    Start with the demo, log in as its admin (one-time password and code in
    <home>/demo-credentials.txt), then look at the lake:

        amzigo demo --no-serve
        eval "$(amzigo login admin-demo)"
        amzigo lake ls

    Long steps show progress on a terminal; `-q` silences it.
    """
    from amzigo_lab.cli.common import set_verbosity

    set_verbosity(quiet, verbose)
    _drop_root(ctx.invoked_subcommand)


def _drop_root(command: str | None) -> None:
    """As root on a hardened home, re-run this command as the home's service user (so nothing
    in the home becomes root-owned); `init` and `gateway` are not switched (the gateway refuses
    root itself). See amzigo_lab.hardening."""
    import os
    import sys

    if os.geteuid() != 0 or command is None or command in _ROOT_COMMANDS:
        return
    from pathlib import Path

    from amzigo_lab import hardening

    home = hardening.home_from_argv(sys.argv[1:])
    marker = hardening.read_marker_quiet(home)
    if not marker:
        return
    if Path(sys.argv[0]).name != "amzigo":  # embedded (tests, other programs): never exec
        raise click.ClickException(
            f"{home} is hardened: run this as its service user {marker.service_user!r}"
        )
    caps = hardening.SERVER_CAPS if command in _SERVER_COMMANDS else ()
    argv = [sys.executable, *sys.orig_argv[1:]]
    hardening.reexec_as_service_user(home, argv, caps=caps)


for command in (init_cmd, lake_group, doctor_cmd, keys_group, demo_cmd, *GOVERNANCE_COMMANDS):
    main.add_command(command)
audit_group.add_command(audit_verify)  # an operator command in a client group
for command in (*COMPLIANCE_COMMANDS, *COMPLIANCE_CLIENT_COMMANDS, dsr_group):
    main.add_command(command)
main.add_command(gateway_group)
main.add_command(incident_group)
main.add_command(policy_group)
main.add_command(config_group)
main.add_command(costs_group)
main.add_command(dashboard_cmd)
main.add_command(lab_cmd)
main.add_command(report_cmd)
main.add_command(schedule_cmd)
main.add_command(campaign_group)
for command in INGEST_COMMANDS:
    main.add_command(command)


def _keep_examples(command: click.Command) -> None:
    """Mark every indented block of a command's help (examples, config snippets) with Click's
    no-rewrap marker, so `--help` prints it line by line as written instead of joining the lines
    into one paragraph (which makes the examples unusable)."""
    if command.help:
        paragraphs = inspect.cleandoc(command.help).split("\n\n")
        command.help = "\n\n".join(
            f"\b\n{text}" if text.startswith("    ") else text for text in paragraphs
        )
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _keep_examples(sub)


_keep_examples(main)

__all__ = ["main"]
