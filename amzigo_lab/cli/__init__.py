"""The `amzigo` command: a thin layer over the package. Every command has --help with an example."""

from __future__ import annotations

import click

from amzigo_lab.cli.compliance import COMMANDS as COMPLIANCE_COMMANDS
from amzigo_lab.cli.demo import demo_cmd
from amzigo_lab.cli.dsr import dsr_group
from amzigo_lab.cli.gateway import gateway_group
from amzigo_lab.cli.governance import COMMANDS as GOVERNANCE_COMMANDS
from amzigo_lab.cli.ingest import COMMANDS as INGEST_COMMANDS
from amzigo_lab.cli.lake import doctor_cmd, init_cmd, keys_group, lake_group
from amzigo_lab.cli.report import report_cmd
from amzigo_lab.cli.schedule import schedule_cmd
from amzigo_lab.cli.serve import dashboard_cmd, lab_cmd


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="amzigo-lab")
def main() -> None:
    """amzigo-lab: governed analytics over Amazon seller data.

    Start with `amzigo demo --no-serve`, then `amzigo lake ls`.
    """


for command in (init_cmd, lake_group, doctor_cmd, keys_group, demo_cmd, *GOVERNANCE_COMMANDS):
    main.add_command(command)
for command in (*COMPLIANCE_COMMANDS, dsr_group):
    main.add_command(command)
main.add_command(gateway_group)
main.add_command(dashboard_cmd)
main.add_command(lab_cmd)
main.add_command(report_cmd)
main.add_command(schedule_cmd)
for command in INGEST_COMMANDS:
    main.add_command(command)

__all__ = ["main"]
