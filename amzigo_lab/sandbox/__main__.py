"""``python -m amzigo_lab.sandbox``: run the sandbox server in the foreground."""

from __future__ import annotations

import argparse
from datetime import date

from .server import serve


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and serve until interrupted."""
    parser = argparse.ArgumentParser(description="Fake SP-API + LWA server over HTTPS")
    parser.add_argument("--state-dir", default=".sandbox", help="where the CA/certs are kept")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8443)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--today", type=date.fromisoformat, default=None)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--time-scale", type=float, default=1.0, help="0 disables throttling")
    parser.add_argument("--pii-role", action="store_true")
    args = parser.parse_args(argv)
    serve(
        args.state_dir,
        host=args.host,
        port=args.port,
        seed=args.seed,
        today=args.today,
        scale=args.scale,
        time_scale=args.time_scale or None,
        pii_role=args.pii_role,
    )


if __name__ == "__main__":
    main()
