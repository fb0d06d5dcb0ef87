"""The dashboard page: its ipywidgets (pickers, status, one HTML box per section group) and
`show`, which the notebook calls."""

from __future__ import annotations

import datetime as dt
import html
from typing import Any

from amzigo_lab.analysis import render
from amzigo_lab.serve.dashboard.loading import require_tenant
from amzigo_lab.serve.dashboard.sections import SellerDashboard
from amzigo_lab.serve.dashboard.view import View, bound_view

_CSS = """<style>
.amz-head{font-family:sans-serif;font-size:14px;color:#333;margin:2px 0 6px}
.amz-h2{font-family:sans-serif;font-size:15px;font-weight:600;margin:14px 0 4px}
.amz-row{display:flex;flex-flow:row wrap}
</style>"""


def _h2(text: str) -> str:
    return f"<div class='amz-h2'>{html.escape(text)}</div>"


#: The page's boxes (one `widgets.HTML` each, few widgets render faster): box -> (its heading,
#: the sections it shows in order). A box is set once its last section is computed.
BOXES: dict[str, tuple[str, tuple[str, ...]]] = {
    "heading": ("", ("heading",)),
    "tiles": ("Key figures", ("tiles",)),
    "charts": ("Sales and traffic", ("sales_chart", "traffic_chart")),
    "products": ("Top products", ("products",)),
    "advertising": ("Advertising", ("advertising",)),
    "inventory": ("Inventory alerts", ("inventory",)),
    "reviews": ("Review-topic changes", ("reviews",)),
    "account_health": ("Account health", ("account_health",)),
}


def box_html(box: str, parts: dict[str, str]) -> str:
    """The HTML of one box from its sections' fragments."""
    title, names = BOXES[box]
    body = "".join(parts[n] for n in names)
    if box == "heading":
        return _CSS + body
    if len(names) > 1:
        body = f"<div class='amz-row'>{body}</div>"
    return _h2(title) + body


#: Each section's box: the box is set when this, its last section, is computed.
_BOX_OF_LAST = {names[-1]: box for box, (_, names) in BOXES.items()}
_LOADING = _h2(BOXES["tiles"][0]) + (
    "<div style='font-family:sans-serif;color:#777'>Loading your figures…</div>"
)


class DashboardWidgets:
    """The dashboard's widgets. Pickers update sections by SETTING `widgets.HTML` values
    (never by writing into Output widgets, which hangs Voila while a notebook executes)."""

    def __init__(self) -> None:
        import ipywidgets as w

        self.board: SellerDashboard | None = None
        self.start = w.DatePicker(description="From", layout=w.Layout(width="220px"))
        self.end = w.DatePicker(description="To", layout=w.Layout(width="220px"))
        self.market = w.Dropdown(
            options=[("All marketplaces", "")], value="", description="Marketplace"
        )
        self.start.add_class("amz-start")
        self.end.add_class("amz-end")
        self.market.add_class("amz-market")
        self.status = w.HTML(_status("loading…"))
        self.boxes = {name: w.HTML() for name in BOXES}
        self.boxes["heading"].value = _CSS
        self.boxes["tiles"].value = _LOADING
        self.seq = 0
        self._adjusting = False
        self.root = w.VBox(
            [
                self.boxes["heading"],
                w.HBox([self.start, self.end, self.market]),
                self.status,
                *(self.boxes[name] for name in BOXES if name != "heading"),
            ]
        )

    def attach(self, board: SellerDashboard) -> None:
        """Show `board`: set the pickers to its default view, then fill every section."""
        self.board = board
        view = board.default_view()
        self.market.options = [("All marketplaces", ""), *[(c, c) for c in board.marketplaces]]
        self.start.value, self.end.value = view.start, view.end
        latest = max(dt.datetime.now(dt.UTC).date(), board.last_day or view.end)
        for picker in (self.start, self.end):
            picker.max = latest  # the browser's picker offers no later day
        for picker in (self.start, self.end, self.market):
            picker.observe(self.refresh, names="value")
        self.refresh()

    def attach_or_report(
        self,
        tenant: str,
        home: str = "",
        token: str = "",
        inventory: dict[str, Any] | None = None,
    ) -> None:
        """Load `tenant`'s data and show it. On failure the seller sees that it failed and a
        reference id (no error type, message, path or value) and no data; the operator finds
        the details under that reference in the server's log (see `report_failure`)."""
        try:
            self.attach(SellerDashboard.open(tenant, home, token, inventory))
        except Exception as exc:  # shown instead of an endless "loading"
            message = report_failure(f"load the data of {tenant}", exc)
            self.boxes["tiles"].value = render.note(
                message.replace(f" of {tenant}", " of your account")
            )
            self.status.value = _status("failed")

    def refresh(self, *_: Any) -> None:
        """Recompute every section for the pickers' values (kept within `bound_view`); each
        box is sent when ready. A failure shows a plain message with a reference id."""
        import time

        board = self.board
        if self._adjusting or board is None or self.start.value is None or self.end.value is None:
            return
        t0 = time.perf_counter()
        view, note = self._bounded_view(board)
        try:
            parts: dict[str, str] = {}
            for name, value in board.iter_sections(view):
                parts[name] = value
                box = _BOX_OF_LAST.get(name)
                if box is not None:  # each assignment is sent to the browser at once
                    self.boxes[box].value = box_html(box, parts)
        except Exception as exc:
            self.seq += 1
            self.status.value = _status(report_failure("update the figures", exc), self.seq)
            return
        self.seq += 1
        done = f"updated in {time.perf_counter() - t0:.2f} s"
        self.status.value = _status(f"{note} {done}" if note else done, self.seq)

    def _bounded_view(self, board: SellerDashboard) -> tuple[View, str]:
        """The pickers' view within bounds; pickers moved back into bounds if they were not."""
        today = dt.datetime.now(dt.UTC).date()
        latest = max(today, board.last_day or today)
        view = View(self.start.value, self.end.value, self.market.value or "")
        bounded, note = bound_view(view, latest)
        if (bounded.start, bounded.end) != (self.start.value, self.end.value):
            self._adjusting = True  # no refresh per picker change: this one goes on
            try:
                self.start.value, self.end.value = bounded.start, bounded.end
            finally:
                self._adjusting = False
        return bounded, note


def report_failure(what: str, exc: BaseException) -> str:
    """Log `exc` with a new reference id to the operator's log (the kernel's real stderr,
    which is the server's log); return the plain message a seller sees instead."""
    import secrets
    import sys
    import traceback

    ref = secrets.token_hex(6)
    detail = "".join(traceback.format_exception(exc)).rstrip()
    print(
        f"amzigo dashboard: error ref {ref}: {what}: {type(exc).__name__}: {exc}\n{detail}",
        file=sys.__stderr__,
    )
    return (
        f"The dashboard could not {what}. Reload the page; if it keeps happening, tell your "
        f"administrator the reference {ref}."
    )


def _status(text: str, seq: int = 0) -> str:
    return (
        f"<span id='amz-status' data-seq='{seq}' class='amz-note' "
        f"style='font-family:sans-serif;font-size:11px;color:#777'>{html.escape(text)}</span>"
    )


def show(
    tenant: str, home: str = "", token: str = "", inventory: dict[str, Any] | None = None
) -> Any:
    """The seller dashboard for `tenant`, as the notebook displays it.

    Fails closed at once (an error, no widgets) when no tenant was injected. In a kernel, the
    widgets are returned empty and the data is loaded right after the cell finishes, on the
    kernel's own event loop (never a thread): Voila sends the page meanwhile, and the browser
    boots its scripts while the kernel reads the lake. The browser's first request reaches the
    kernel after that work (the kernel handles one thing at a time), so it finds the values
    set. Outside a kernel (tests, scripts) everything happens before returning.
    `inventory`: stock-advice parameters the server injected from the home's config.
    """
    tenant = require_tenant(tenant)
    ui = DashboardWidgets()
    loop = _kernel_loop()
    if loop is None:
        ui.attach(SellerDashboard.open(tenant, home, token, inventory))
    else:
        loop.call_later(0.01, ui.attach_or_report, tenant, home, token, inventory)
    return ui.root


def _kernel_loop() -> Any:
    """The event loop of the IPython kernel running this code; None outside a kernel."""
    import asyncio

    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    if shell is None or getattr(shell, "kernel", None) is None:
        return None
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
