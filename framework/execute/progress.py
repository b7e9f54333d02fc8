"""Progress of a run in tasks (Dask, Spark): the events done by every task, summed on the client, shown as a
bar in the terminal and written to the progress file the notebook reads (the threaded run's JSON, with the
tasks done). A running task's count comes from its worker (Dask); a finished task's from its result."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import TextIO

from framework.execute.pipeline import report_progress

BAR_WIDTH = 30


class TaskProgress:
    """Events done by each task, keyed by (sample, part). A task tried again reports from zero: its latest
    count replaces the one before, so no event is counted twice; a finished task's count is final."""

    render_every = 0.25  # seconds between two updates while tasks run: as the threaded loop's progress file

    def __init__(self, path: Path | None, bar: bool, total: int, tasks_total: int, out: TextIO | None = None) -> None:
        self.path, self.bar, self.out = path, bar, out or sys.stdout  # sys.stdout now: it may be replaced
        self.total, self.tasks_total = total, tasks_total
        self.start = time.perf_counter()
        self.events: dict[tuple[str, int], int] = {}
        self.finished_tasks: set[tuple[str, int]] = set()
        self.lock = threading.Lock()  # Dask reports arrive on the client's event-loop thread
        self.rendered_at = float("-inf")  # the first report is shown at once

    @property
    def shown(self) -> bool:
        """Whether anyone sees it: if not, running tasks need not send their events."""
        return self.bar or self.path is not None

    def running(self, sample: str, part: int, events: int) -> None:
        """A running task's count so far (a late report of a task already finished is ignored)."""
        with self.lock:
            if (sample, part) in self.finished_tasks:
                return
            self.events[sample, part] = events
            if time.perf_counter() - self.rendered_at >= self.render_every:
                self._render()

    def finished(self, sample: str, part: int, events: int) -> None:
        with self.lock:
            self.finished_tasks.add((sample, part))
            self.events[sample, part] = events
            self._render()

    def close(self) -> None:
        """End the bar's line."""
        if self.bar:
            self.out.write("\n")
            self.out.flush()

    def _render(self) -> None:
        self.rendered_at = time.perf_counter()
        seconds = self.rendered_at - self.start
        events = sum(self.events.values())
        tasks = len(self.finished_tasks)
        report_progress(
            self.path,
            "event loop",
            events=events,
            total=self.total,
            tasks=tasks,
            tasks_total=self.tasks_total,
            seconds=seconds,
        )
        if not self.bar:
            return
        rate = events / seconds if seconds > 0 else 0.0
        left = (self.total - events) / rate if rate > 0 and self.total > events else 0.0
        filled = BAR_WIDTH * min(events, self.total) // self.total if self.total else BAR_WIDTH
        self.out.write(
            f"\r[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {events:,} / {self.total:,} events, "
            f"{rate:,.0f} events/s, {left:.0f} s left, {tasks}/{self.tasks_total} tasks "
        )
        self.out.flush()
