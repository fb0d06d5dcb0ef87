"""`amzigo gateway`: run the home's gateway (the one process holding keys), check it, stop it."""

from __future__ import annotations

import sys

import click

from amzigo_lab.cli.common import (
    err_console,
    handle_errors,
    home_option,
    json_option,
    print_json,
    settings_for,
)


@click.group("gateway", invoke_without_command=True)
@home_option
@click.option(
    "--idle-exit",
    type=click.FloatRange(0, 7 * 86400),
    default=0.0,
    show_default=True,
    help="Exit after this many seconds without a request (0: never).",
)
@click.option(
    "--listen",
    default="",
    metavar="HOST:PORT",
    help="Also serve over TLS on TCP (clients set AMZIGO_GATEWAY=grpc+tls://HOST:PORT).",
)
@click.option(
    "--unwrap-listen",
    default="127.0.0.1:0",
    show_default=True,
    metavar="HOST:PORT",
    help="Where the key service for Spark/Dask jobs listens (HTTPS; port 0: any free one; "
    "'' for none). A cluster's executors must reach it; the certificate must name HOST.",
)
@click.option("--certfile", default=None, help="TLS certificate chain (default: a local CA's).")
@click.option("--keyfile", default=None, help="TLS private key (with --certfile).")
@click.pass_context
@handle_errors
def gateway_group(
    ctx: click.Context,
    home: str | None,
    idle_exit: float,
    listen: str,
    unwrap_listen: str,
    certfile: str | None,
    keyfile: str | None,
) -> None:
    """Run the gateway of a home in the foreground (Ctrl-C or SIGTERM stops it gracefully).

    The gateway is the only process that opens the master key, the catalog, the lake, the
    identity store and the audit log; notebooks, dashboards, reports and the CLI are its
    clients over a Unix socket. On a home that is not hardened, commands start one on demand.

    Example:

        amzigo gateway --home /srv/amzigo        # as the service account (systemd unit)
        amzigo gateway --listen 0.0.0.0:8815     # plus TLS for clients on other machines
        amzigo gateway --unwrap-listen 0.0.0.0:8816 --certfile c.pem --keyfile k.pem
        amzigo gateway status --json
    """
    if ctx.invoked_subcommand is not None:
        ctx.obj = home
        return
    from amzigo_lab.config import resolve_home
    from amzigo_lab.gateway.run import EXIT_LOCKED, configure_logging, serve
    from amzigo_lab.hardening import check_gateway_user

    check_gateway_user(resolve_home(home))  # a hardened home: its service user only
    configure_logging()
    settings = settings_for(home)
    tls_files = None
    files = None
    if listen or certfile or keyfile:
        from amzigo_lab.serve.tls import resolve

        files = resolve(settings.state_dir, certfile, keyfile)
        tls_files = (files.certfile, files.keyfile)
        if listen and files.cafile is not None:
            err_console.print(f"clients trust {files.cafile} (AMZIGO_GATEWAY_CA)")
    code = serve(
        settings, idle_exit=idle_exit, listen=listen, tls_files=tls_files,
        unwrap_listen=unwrap_listen, unwrap_tls=files,
    )  # fmt: skip
    if code == EXIT_LOCKED:
        err_console.print("[bold red]error:[/] another gateway already serves this home")
    sys.exit(code)


@gateway_group.command("status")
@home_option
@json_option
@click.pass_obj
@handle_errors
def status_cmd(parent_home: str | None, home: str | None, as_json: bool) -> None:
    """Whether the home's gateway answers (liveness and readiness); exit 1 if it does not.

    Example:

        amzigo gateway status
    """
    from amzigo_lab.client import protocol
    from amzigo_lab.client.transport import GatewayClient

    settings = settings_for(home or parent_home)
    address = protocol.default_address(settings.home)
    try:
        with GatewayClient(address) as client:
            health = client.health()
    except protocol.GatewayUnavailable as exc:
        if as_json:
            print_json({"status": "down", "address": address})
        else:
            err_console.print(f"[bold red]down:[/] {exc}")
        sys.exit(1)
    health["address"] = address
    if as_json:
        print_json(health)
        return
    click.echo(
        f"gateway {health['status']} at {address}: pid {health['pid']}, up "
        f"{health['uptime_s']} s, {health['sessions']} session(s), "
        f"{health['service_tokens']} service token(s)"
    )
    hot = health.get("hot_cache") or {}
    if not hot.get("budget_bytes"):
        click.echo("hot cache: off (hot_cache_mb = 0)")
    else:
        mib = 1024 * 1024
        click.echo(
            f"hot cache: {hot['bytes'] / mib:,.0f} of {hot['budget_bytes'] / mib:,.0f} MiB, "
            f"{hot['files']} file(s), {hot['hits']} hit(s), {hot['misses']} load(s)"
        )


@gateway_group.command("stop")
@home_option
@click.pass_obj
@handle_errors
def stop_cmd(parent_home: str | None, home: str | None) -> None:
    """Stop the home's gateway gracefully (running calls finish first; the service account).

    Example:

        amzigo gateway stop
    """
    from amzigo_lab.client import protocol
    from amzigo_lab.client.service import operator_token
    from amzigo_lab.client.transport import GatewayClient

    settings = settings_for(home or parent_home)
    address = protocol.default_address(settings.home)
    with GatewayClient(address, operator_token(settings.home)) as client:
        client.action(protocol.SHUTDOWN)
    click.echo(f"gateway at {address} is stopping")
