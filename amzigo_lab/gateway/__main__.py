"""`python -m amzigo_lab.gateway --home H`: what `amzigo gateway` and on-demand starts run."""

from __future__ import annotations

import argparse
import sys

from amzigo_lab.config import load_settings, resolve_home
from amzigo_lab.errors import AmzigoError
from amzigo_lab.gateway.run import configure_logging, serve
from amzigo_lab.hardening import check_gateway_user


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and serve the home."""
    parser = argparse.ArgumentParser(prog="amzigo-gateway", description=__doc__)
    parser.add_argument("--home", default=None)
    parser.add_argument("--idle-exit", type=float, default=0.0)
    parser.add_argument("--on-demand", action="store_true")
    args = parser.parse_args(argv)
    configure_logging()
    try:
        check_gateway_user(resolve_home(args.home))  # before reading the home's config
        return serve(load_settings(args.home), idle_exit=args.idle_exit, on_demand=args.on_demand)
    except AmzigoError as exc:  # e.g. a hardened home and the wrong OS user
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
