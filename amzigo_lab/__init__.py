"""amzigo-lab: a governed analytics workbench for Amazon sellers.

The public API for notebooks::

    import amzigo_lab
    wb = amzigo_lab.connect(purpose="sales_analysis")   # password + code, or $AMZIGO_SESSION
    wb.datasets(); wb.table("orders"); wb.sql("SELECT ..."); wb.polars("orders")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from amzigo_lab.errors import AccessDenied, AmzigoError

if TYPE_CHECKING:
    from amzigo_lab.client.workbench import Workbench, connect

__all__ = ["AccessDenied", "AmzigoError", "Workbench", "connect"]


def __getattr__(name: str) -> Any:
    """Import the client lazily (keeps `import amzigo_lab` light for the CLI).

    `connect()` talks to the home's gateway; this process never opens the lake or a key.
    """
    if name in ("connect", "Workbench"):
        from amzigo_lab.client import workbench

        return getattr(workbench, name)
    raise AttributeError(f"module 'amzigo_lab' has no attribute {name!r}")
