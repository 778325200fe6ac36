"""Progress of long work (training, evaluation, migrations), always on stderr.

stdout carries only results (with ``--json``: only JSON), so a script can parse it while the
progress still shows. On a terminal the progress is a live rich bar; without one (a log file,
a pipe, CI) a bar would print nothing until the end, so each task prints one plain line per
~10% step instead (or every ``PLAIN_INTERVAL_S`` seconds while its total is unknown).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TextIO

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from cli.common import err_console

# progress(fraction 0..1, message): the callbacks of training, evaluation and encoder runs
FractionFn = Callable[[float, str], None]
# progress(task, done, total or None): the callbacks of migrations (graph.migrate.loader)
TaskFn = Callable[[str, int, int | None], None]

PLAIN_STEP = 0.1
PLAIN_INTERVAL_S = 10.0
MESSAGE_WIDTH = 70


def live() -> bool:
    """Whether stderr is a terminal that can redraw a bar."""
    return err_console.is_terminal


@dataclass
class PlainLines:
    """Plain progress lines: one per task at its start, at each ``step`` of its fraction, at
    its end, and every ``interval_s`` while its total is unknown."""

    out: TextIO | None = None  # None: sys.stderr at the time of writing (test runners swap it)
    step: float = PLAIN_STEP
    interval_s: float = PLAIN_INTERVAL_S
    clock: Callable[[], float] = time.monotonic
    _next: dict[str, float] = field(default_factory=dict)
    _last_at: dict[str, float] = field(default_factory=dict)

    def fraction(self, task: str, fraction: float, message: str = "") -> None:
        fraction = min(max(fraction, 0.0), 1.0)
        due = self._next.get(task, 0.0)
        if fraction < due:
            return
        # the next line is due at the next whole step above this fraction; none after 100%
        self._next[task] = (int(fraction / self.step + 1e-9) + 1) * self.step \
            if fraction < 1.0 else 2.0
        self._write(f"{task}: {fraction:4.0%}" + (f"  {message}" if message else ""))

    def count(self, task: str, done: int, total: int | None) -> None:
        if total:
            self.fraction(task, done / total, f"{done:,}/{total:,}")
            return
        now = self.clock()
        last = self._last_at.get(task)
        if last is None or now - last >= self.interval_s:
            self._last_at[task] = now
            self._write(f"{task}: {done:,}")

    def _write(self, line: str) -> None:
        out = self.out or sys.stderr
        out.write(line + "\n")
        out.flush()


@contextmanager
def fraction_progress(title: str) -> Iterator[FractionFn]:
    """A ``progress(fraction, message)`` callback for one long task, shown on stderr."""
    if not live():
        plain = PlainLines()

        def line(fraction: float, message: str = "") -> None:
            plain.fraction(title, fraction, message)

        yield line
        return
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                  TextColumn("{task.percentage:>3.0f}%"), TextColumn("{task.fields[msg]}"),
                  TimeElapsedColumn(), console=err_console) as bar:
        task = bar.add_task(title, total=1.0, msg="")

        def update(fraction: float, message: str = "") -> None:
            bar.update(task, completed=fraction, msg=message[:MESSAGE_WIDTH])

        yield update


@contextmanager
def task_progress() -> Iterator[TaskFn]:
    """A ``progress(task, done, total)`` callback drawing one bar (or line series) per task."""
    if not live():
        yield PlainLines().count
        return
    columns = (TextColumn("{task.description:<32}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=err_console, transient=False) as bars:
        tasks: dict[str, TaskID] = {}

        def update(task: str, done: int, total: int | None) -> None:
            if task not in tasks:
                tasks[task] = bars.add_task(task, total=total)
            bars.update(tasks[task], completed=done, total=total)

        yield update
