"""Progress on long steps (rich): live on a terminal, silent otherwise and under --quiet.

`DemoProgress` shows the ingestion board (rows, pages, rate-limit waits, reports pending per
tenant and stream) and a bar over the reports; `busy()` is a spinner for one long call.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from amzigo_lab.cli.ingest import ProgressBoard


def live_enabled(console: Console) -> bool:
    """Whether to draw live progress: a terminal, and not --quiet."""
    return console.is_terminal and not console.quiet


class DemoProgress:
    """The demo's live view: the ingestion board, then a bar over the reports."""

    def __init__(self, console: Console) -> None:
        self.board = ProgressBoard()
        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        )
        self._reports = self.bar.add_task("reports", total=None, visible=False)
        self._ingesting = False
        self.live = Live(
            self._view(),
            console=console,
            transient=True,
            refresh_per_second=4,
            auto_refresh=live_enabled(console),
        )
        self._on = live_enabled(console)

    def _view(self) -> Group:
        parts: list[Any] = [self.board.render()] if self._ingesting else []
        return Group(*parts, self.bar)

    def ingest(self, event: Any) -> None:
        """An ingestion `ProgressEvent`."""
        self._ingesting = True
        self.board(event)
        if self._on:
            self.live.update(self._view())

    def report(self, done: int, total: int, path: Path) -> None:
        """A report was written."""
        self._ingesting = False
        self.bar.update(self._reports, completed=done, total=total, visible=True)
        if self._on:
            self.live.update(self._view())

    @contextlib.contextmanager
    def shown(self) -> Iterator[DemoProgress]:
        """Draw while the block runs (nothing off a terminal)."""
        if not self._on:
            yield self
            return
        with self.live:
            yield self


@contextlib.contextmanager
def busy(console: Console, message: str) -> Iterator[None]:
    """A spinner with elapsed time for one long call (nothing off a terminal)."""
    if not live_enabled(console):
        yield
        return
    with console.status(message):
        yield
