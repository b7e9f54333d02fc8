"""Where a run's time goes: set-up broken into its parts, the loop, the writing.

The parts of set-up: `imports` (Python start and modules), `root` (ROOT's own start),
`inputs` (files found and inspected, or read from the cache), `plan` (configuration loaded
and checked, plan made), `compile` (the interpreter compiling expressions and the
session; zero when everything comes compiled from the cache) and `booking` (graph nodes and
fill actions created). The progress line prints them; `--profile FILE` writes them as JSON.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SETUP_PARTS = ("imports", "root", "inputs", "plan", "compile", "booking")


def process_age() -> float:
    """Seconds since this process started (Linux /proc), 0 where that cannot be told."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return max(0.0, uptime - ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return 0.0


class Timer:
    """Seconds per named part; `part` is re-entrant across calls (times add up)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._active: list[str] = []

    @contextmanager
    def part(self, name: str) -> Iterator[None]:
        """Time a block as `name`; a part nested in another is taken out of the outer one."""
        start = time.perf_counter()
        self._active.append(name)
        try:
            yield
        finally:
            self._active.pop()
            elapsed = time.perf_counter() - start
            self.add(name, elapsed)
            if self._active:
                self.add(self._active[-1], -elapsed)

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    @property
    def setup(self) -> float:
        return sum(self.seconds.get(p, 0.0) for p in SETUP_PARTS)

    def setup_line(self) -> str:
        parts = ", ".join(f"{p} {self.seconds[p]:.2f}" for p in SETUP_PARTS if p in self.seconds)
        return f"set-up {self.setup:.2f} s ({parts})"

    def as_dict(self) -> dict[str, float]:
        out = {p: round(self.seconds.get(p, 0.0), 4) for p in SETUP_PARTS}
        out["setup"] = round(self.setup, 4)
        out.update({k: round(v, 4) for k, v in self.seconds.items() if k not in SETUP_PARTS})
        return out

    def write(self, path: Path, **extra: object) -> None:
        path.write_text(json.dumps({**self.as_dict(), **extra}, indent=2) + "\n")
