"""Run stage: one event loop for all booked graphs, then histograms out of the buffers.

The fill action returns flat buffers (sample x axes x weight variation); here they
become one `hist.Hist` per sample and histogram, with the `systematic` axis, and are
normalised to luminosity x cross-section / sum of generator weights.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import hist
import numpy as np

from .build import BookedDataset, BookedGraph, axis_extent
from .exceptions import ExecutionError
from .plan import CUTFLOW_ENTRIES, AxisPlan, HistogramPlan, Plan, SamplePlan
from .rootenv import root


@dataclass
class SampleResult:
    """Everything one sample produced: histograms, cutflow rows, normalisation."""

    sample: SamplePlan
    histograms: dict[str, hist.Hist]
    cutflow: list[dict[str, Any]]
    events: int
    sum_gen_weights: float | None
    norm: float


@dataclass
class RunResult:
    samples: list[SampleResult]
    loop_seconds: float
    timings: dict[str, float] = field(default_factory=dict)


def run_event_loop(booked: BookedGraph) -> float:
    """Run every graph in one go; returns the wall time of the loop (including ROOT's JIT)."""
    r = root()
    start = time.perf_counter()
    try:
        r.RDF.RunGraphs(booked.handles())
    except Exception as err:  # a C++ exception thrown by user code inside the loop
        message = str(err).strip().splitlines()
        raise ExecutionError(f"the event loop failed: {message[-1] if message else err!r}") from None
    return time.perf_counter() - start


def _buffer(result: Any, nsamples: int, extents: list[int]) -> np.ndarray:
    """(sample, *axes, weight variation, [sumw, sumw2]) view of a fill result, copied."""
    buf = result.GetValue() if hasattr(result, "GetValue") else result
    flat = np.array(np.asarray(buf.data), dtype=np.float64, copy=True)
    return flat.reshape(nsamples, *extents, int(buf.nweights), 2)


def make_axis(a: AxisPlan) -> Any:
    if a.kind == "regular":
        return hist.axis.Regular(a.bins, a.low, a.high, name=a.name, label=a.label)
    if a.kind == "variable":
        return hist.axis.Variable(a.edges, name=a.name, label=a.label)
    if a.kind == "integer":
        return hist.axis.Integer(int(a.low), int(a.high), name=a.name, label=a.label)
    if a.kind == "int_category":
        return hist.axis.IntCategory(a.values, name=a.name, label=a.label)
    if a.kind == "str_category":
        return hist.axis.StrCategory(a.labels, name=a.name, label=a.label)
    return hist.axis.Boolean(name=a.name, label=a.label)


def _histogram(h: HistogramPlan, entries: list[str]) -> hist.Hist:
    axes = [make_axis(a) for a in h.axes]
    systematic = hist.axis.StrCategory(entries, name="systematic", label="systematic", flow=False)
    return hist.Hist(*axes, systematic, storage=hist.storage.Weight(), name=h.name)


def _fill_from_buffers(d: BookedDataset, h: HistogramPlan, pos: int, nsamples: int) -> hist.Hist:
    plan = d.plan
    entries = plan.systematic_entries
    extents = [axis_extent(a) for a in h.axes]
    out = _histogram(h, entries)
    view = out.view(flow=True)
    booked = d.histograms[h.name]
    nominal = _buffer(booked["nominal"] if d.varied else booked, nsamples, extents)[pos]
    nweights = len(plan.weight_entries)
    view.value[..., :nweights] = nominal[..., 0]
    view.variance[..., :nweights] = nominal[..., 1]
    # A histogram that does not depend on a varied column has no entry for it in the map:
    # its variation equals the nominal.
    keys = {str(k) for k in booked.GetKeys()} if d.varied else set()
    for i, name in enumerate(plan.shape_variations):
        for j, direction in enumerate(("up", "down")):
            key = f"{name}:{direction}"
            varied = _buffer(booked[key], nsamples, extents)[pos][..., 0, :] if key in keys else nominal[..., 0, :]
            view.value[..., nweights + 2 * i + j] = varied[..., 0]
            view.variance[..., nweights + 2 * i + j] = varied[..., 1]
    return out


def collect_results(plan: Plan, booked: BookedGraph, loop_seconds: float) -> RunResult:
    """Turn the filled buffers into normalised histograms and cutflows, per sample."""
    samples: list[SampleResult] = []
    for d in booked.datasets:
        nsamples = len(d.plan.samples)
        rows = [_buffer(c, nsamples, []) for c in d.cutflow]
        for pos, name in enumerate(d.plan.samples):
            sample = plan.sample(name)
            first = rows[0][pos]
            gen_sum = float(first[CUTFLOW_ENTRIES.index("generator"), 0])
            if sample.is_data:
                norm, sum_gen = 1.0, None
            else:
                sum_gen = sample.sum_weights if (sample.sum_weights is not None and sample.entry_limit is None) else gen_sum
                if not sum_gen:
                    raise ExecutionError(f"sample {name!r}: the sum of generator weights is zero; cannot normalise")
                assert sample.lumi is not None and sample.xsec is not None
                norm = sample.lumi * sample.xsec / sum_gen
            histograms = {}
            for h in d.plan.histograms:
                out = _fill_from_buffers(d, h, pos, nsamples)
                if norm != 1.0:
                    view = out.view(flow=True)
                    view.value *= norm
                    view.variance *= norm * norm
                histograms[h.name] = out
            cutflow = []
            for row_name, row in zip(d.plan.cutflow, rows):
                cells = row[pos]
                raw = int(round(cells[0, 0]))
                cutflow.append(
                    {
                        "cut": row_name,
                        "events": raw,
                        "weighted": float(cells[2, 0] * norm),
                        "weighted_variance": float(cells[2, 1] * norm * norm),
                    }
                )
            samples.append(SampleResult(sample, histograms, cutflow, int(round(first[0, 0])), sum_gen, norm))
    samples.sort(key=lambda s: [p.name for p in plan.samples].index(s.sample.name))
    return RunResult(samples, loop_seconds)
