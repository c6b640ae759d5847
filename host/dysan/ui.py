"""Terminal output: progress bars for long steps, tables for results, one-line errors.

Everything prints to stderr except tables and summaries (stdout), so ``--json -`` style scripting and
logs stay clean. Progress bars degrade to occasional lines when stderr is not a terminal (CI logs).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

out = Console(soft_wrap=False, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, soft_wrap=True)  # soft wrap: an error stays one line, whatever its length


def info(message: str) -> None:
    err.print(message, highlight=False)


def warn(message: str) -> None:
    err.print(f"[yellow]warning:[/yellow] {message}", highlight=False)


def error(message: str) -> None:
    """``message`` printed as it is (escaped: an error naming ``serial:PORT[@BAUD]`` must not lose the brackets)."""
    err.print(f"[bold red]error:[/bold red] {escape(message)}", highlight=False, markup=True)


class Step:
    """Handle returned by :func:`progress`: ``advance(n)``, ``update(completed=, note=)``, ``total``."""

    def __init__(self, progress: Progress | None, task: Any, total: float | None, label: str) -> None:
        self._progress = progress
        self._task = task
        self.total = total
        self.label = label
        self.done = 0.0
        self._last_line = 0.0

    def advance(self, n: float = 1, note: str | None = None) -> None:
        self.update(completed=self.done + n, note=note)

    def update(self, completed: float | None = None, note: str | None = None, total: float | None = None) -> None:
        if completed is not None:
            self.done = completed
        if total is not None:
            self.total = total
        if self._progress is not None:
            kwargs: dict[str, Any] = {"completed": self.done}
            if total is not None:
                kwargs["total"] = total
            if note is not None:
                kwargs["description"] = f"{self.label} [dim]{note}[/dim]"
            self._progress.update(self._task, **kwargs)
        else:
            now = time.monotonic()
            finished = self.total is not None and self.done >= self.total
            if now - self._last_line > 10 or finished:
                self._last_line = now
                of = f"/{self.total:g}" if self.total is not None else ""
                err.print(f"  {self.label}: {self.done:g}{of}" + (f" ({note})" if note else ""), highlight=False)


@contextmanager
def progress(label: str, total: float | None = None) -> Iterator[Step]:
    """A progress bar for one long step (lines every 10 s when stderr is not a terminal)."""
    if not err.is_terminal:
        info(f"{label} ...")
        t0 = time.monotonic()
        step = Step(None, None, total, label)
        yield step
        info(f"{label}: done in {time.monotonic() - t0:.1f} s")
        return
    columns = [
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=err, transient=False) as prog:
        task = prog.add_task(label, total=total)
        yield Step(prog, task, total, label)


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], caption: str | None = None) -> None:
    """Print a result table on stdout."""
    t = Table(title=title, caption=caption, title_justify="left")
    for i, c in enumerate(columns):
        t.add_column(c, justify="left" if i == 0 else "right")
    for r in rows:
        t.add_row(*[fmt(v) for v in r])
    out.print(t)


def fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


def pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f} %"


def is_interactive() -> bool:
    return sys.stdin.isatty() and err.is_terminal
