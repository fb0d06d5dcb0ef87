"""`amzigo dashboard` (Voila, for sellers) and `amzigo lab` (JupyterLab, for analysts)."""

from __future__ import annotations

from pathlib import Path

import click

from amzigo_lab.cli.common import (
    PORT,
    console,
    handle_errors,
    home_option,
    settings_for,
)
from amzigo_lab.serve.warmup import DEFAULT_WARM_KERNELS


def _check_proxies(
    _ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]
) -> tuple[str, ...]:
    from amzigo_lab.serve.web import proxy_networks

    try:
        proxy_networks(values)
    except ValueError as exc:
        raise click.BadParameter(str(exc).removeprefix("--trusted-proxy ")) from None
    return values


def _server_options(default_port: int):  # type: ignore[no-untyped-def]
    def decorate(func):  # type: ignore[no-untyped-def]
        for option in reversed(
            [
                click.option("--port", default=default_port, show_default=True, type=PORT),
                click.option("--host", default="127.0.0.1", show_default=True),
                click.option(
                    "--certfile",
                    type=click.Path(dir_okay=False),
                    help="TLS certificate chain (default: a local CA's cert for localhost).",
                ),
                click.option("--keyfile", type=click.Path(dir_okay=False), help="TLS key."),
                click.option(
                    "--no-tls",
                    is_flag=True,
                    help="Plain HTTP; only allowed on a loopback address.",
                ),
                click.option(
                    "--address-max-failures",
                    default=30,
                    show_default=True,
                    type=click.IntRange(0, 1_000_000),
                    help="Failed logins from one client address (within --address-window) "
                    "before that address gets 429 for a while; 0: no per-address limit.",
                ),
                click.option(
                    "--address-window",
                    default=900.0,
                    show_default=True,
                    type=click.FloatRange(1.0, 30 * 86400),
                    help="Seconds the per-address failed-login count looks back.",
                ),
                click.option(
                    "--trusted-proxy",
                    "trusted_proxies",
                    multiple=True,
                    callback=_check_proxies,
                    metavar="ADDRESS[/BITS]",
                    help="A reverse proxy in front of this server (repeatable): its "
                    "X-Forwarded-For names the client for login throttling and audit. "
                    "Without it the connection's address is used and the header ignored.",
                ),
            ]
        ):
            func = option(func)
        return func

    return decorate


@click.command("dashboard")
@_server_options(8866)
@click.option(
    "--warm-kernels",
    default=DEFAULT_WARM_KERNELS,
    show_default=True,
    type=click.IntRange(0, 16),
    help="Kernels kept warm (imports done, no data) for the next logins; 0 starts each cold.",
)
@home_option
@handle_errors
def dashboard_cmd(
    port: int,
    host: str,
    certfile: str | None,
    keyfile: str | None,
    no_tls: bool,
    address_max_failures: int,
    address_window: float,
    trusted_proxies: tuple[str, ...],
    warm_kernels: int,
    home: str | None,
) -> None:
    """Serve the seller dashboards (Voila) behind the project's login, over TLS.

    Sellers log in with password + authenticator code and see only their own tenant. Without
    --certfile/--keyfile a local CA signs a certificate for localhost (trust
    <home>/state/serve-tls/ca.pem); TLS 1.2 is the minimum.

    Example:

        amzigo dashboard --port 8866    # then open https://localhost:8866/voila/render/seller.ipynb
    """
    from amzigo_lab.serve.app import SELLER_DASHBOARD, ServeOptions, run_dashboard
    from amzigo_lab.serve.tls import TLS_DIR

    settings = settings_for(home)
    opts = ServeOptions(
        host,
        port,
        certfile,
        keyfile,
        no_tls,
        warm_kernels=warm_kernels,
        address_max_failures=address_max_failures,
        address_window=address_window,
        trusted_proxies=trusted_proxies,
    )
    scheme = "http" if no_tls else "https"
    shown = "localhost" if host == "127.0.0.1" else host
    console.print(f"dashboard  {scheme}://{shown}:{port}/voila/render/{SELLER_DASHBOARD}")
    if not no_tls and not certfile:
        console.print(f"trust      {settings.state_dir / TLS_DIR / 'ca.pem'} (local CA)")
    run_dashboard(settings, opts)


@click.command("lab")
@_server_options(8888)
@click.option(
    "--root",
    type=click.Path(file_okay=False),
    default=None,
    help="Notebook folder (outside the home; default: ~/.local/share/amzigo/notebooks); "
    "explore.ipynb is copied in.",
)
@home_option
@handle_errors
def lab_cmd(
    port: int,
    host: str,
    certfile: str | None,
    keyfile: str | None,
    no_tls: bool,
    address_max_failures: int,
    address_window: float,
    trusted_proxies: tuple[str, ...],
    root: str | None,
    home: str | None,
) -> None:
    """Serve JupyterLab for analysts (admin, analyst, pii_processor, compliance) over TLS.

    Same login as the dashboards; sellers are refused. Opens explore.ipynb, which shows
    amzigo_lab.connect() and a first governed query.

    Example:

        amzigo lab --root ~/analysis --port 8888
    """
    from amzigo_lab.serve.app import ServeOptions, run_lab

    settings = settings_for(home)
    opts = ServeOptions(
        host,
        port,
        certfile,
        keyfile,
        no_tls,
        address_max_failures=address_max_failures,
        address_window=address_window,
        trusted_proxies=trusted_proxies,
    )
    scheme = "http" if no_tls else "https"
    console.print(f"lab  {scheme}://localhost:{port}/lab/tree/explore.ipynb")
    from amzigo_lab.config import DEFAULT_LAB_ROOT

    run_lab(settings, opts, Path(root) if root else DEFAULT_LAB_ROOT)


COMMANDS = (dashboard_cmd, lab_cmd)
