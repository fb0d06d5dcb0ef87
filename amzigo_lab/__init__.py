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
    from amzigo_lab.governance.policy import Decision
    from amzigo_lab.governance.session import Workbench, connect

__all__ = ["AccessDenied", "AmzigoError", "Decision", "Workbench", "connect"]


def __getattr__(name: str) -> Any:
    """Import the governance layer lazily (keeps `import amzigo_lab` light for the CLI)."""
    if name in ("connect", "Workbench"):
        from amzigo_lab.governance import session

        return getattr(session, name)
    if name == "Decision":
        from amzigo_lab.governance.policy import Decision

        return Decision
    raise AttributeError(f"module 'amzigo_lab' has no attribute {name!r}")
