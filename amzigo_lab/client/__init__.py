"""What kernels, reports, dashboards and the CLI use to reach the gateway: a token, never a key.

`connect()` and `Workbench` (an analyst's governed session), `GatewayClient` (the Flight
transport), `ensure_gateway()` (start a home's gateway on demand when the home allows it).
This package never imports the lake package. Names load lazily (the CLI stays light).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "GatewayClient",
    "GatewayError",
    "GatewayUnavailable",
    "Workbench",
    "connect",
    "ensure_gateway",
]
_WHERE = {
    "GatewayClient": "transport",
    "ensure_gateway": "transport",
    "GatewayError": "protocol",
    "GatewayUnavailable": "protocol",
    "Workbench": "workbench",
    "connect": "workbench",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'amzigo_lab.client' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"amzigo_lab.client.{_WHERE[name]}"), name)
