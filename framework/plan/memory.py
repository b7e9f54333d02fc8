"""Plan stage, memory: what the histograms of a plan hold in the event loop, checked before it starts."""

from __future__ import annotations

import math

from framework.errors import ConfigError
from framework.plan.model import HistogramPlan, Plan

STORAGE_SHARED_BYTES = 4 << 20  # as fw::Storage::kSharedBytes: above, one storage for all threads


def histogram_bytes(plan: Plan, threads: int) -> list[tuple[HistogramPlan, int]]:
    """What the event loop holds for each histogram: cells (flow bins included) x entries (weight
    variations and shape variations) x samples x 16 bytes, times the threads for the small
    storages that each thread keeps apart."""
    out = []
    for d in plan.datasets:
        entries = len(d.weight_entries) + 2 * len(d.shape_variations)
        for h in d.histograms:
            cells = math.prod(a.extent for a in h.axes)
            size = 16 * cells * entries * len(d.samples)
            out.append((h, size * threads if size <= STORAGE_SHARED_BYTES and threads > 1 else size))
    return out


def check_histogram_memory(plan: Plan, threads: int, limit: int) -> None:
    """Refuse, before any event is read, histograms that would not fit in `limit` bytes."""
    sizes = histogram_bytes(plan, threads)
    total = sum(size for _, size in sizes)
    if total <= limit:
        return
    h, size = max(sizes, key=lambda item: item[1])
    raise ConfigError(
        f"the histograms need {total / 2**30:.2f} GiB in the event loop, more than the limit of "
        f"{limit / 2**30:.2f} GiB; the largest, {h.name!r}, needs {size / 2**30:.2f} GiB",
        h.origin,
        "use fewer bins, or raise the limit with --histogram-memory (writing needs about as much again)",
    )
