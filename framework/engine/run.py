"""Run stage: one event loop for all booked graphs, then histograms out of the buffers.

The fill action returns flat buffers (sample x axes x weight variation); here they
become one `hist.Hist` per sample and histogram, with the `systematic` axis, and are
normalised to luminosity x cross-section / sum of generator weights.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import hist
import numpy as np
from boost_histogram.view import WeightedSumView

from framework.engine.build import BookedDataset, BookedGraph, shape_keys
from framework.engine.session import SessionError
from framework.errors import ExecutionError, InputError, RemoteInputError
from framework.inputs.locations import kind_of
from framework.output.format import CutflowRow
from framework.output.normalise import normalisation, normalise
from framework.plan.model import CUTFLOW_ENTRIES, DatasetPlan, HistogramPlan, Plan, SamplePlan
from framework.plan.steps import LumiMask, LumiMaskTable


@dataclass
class SampleResult:
    """Everything one sample produced: histograms, cutflow rows, normalisation."""

    sample: SamplePlan
    histograms: dict[str, hist.Hist]
    cutflow: list[CutflowRow]
    events: int
    sum_gen_weights: float | None
    norm: float
    lumi_mask: LumiMaskTable | None = None  # collision data: the certified luminosity its events were masked with


@dataclass
class RunResult:
    samples: list[SampleResult]


def run_event_loop(booked: BookedGraph, plan: Plan) -> tuple[float, float]:
    """Run every graph in one go (JIT compiled before, in the build), and check that every file
    was read to its end. Returns the wall time of the call and the time RDataFrame reports for
    the loop itself (the rest is its start)."""
    start = time.perf_counter()
    try:
        loop = booked.session.run(booked.handles())
    except SessionError as err:  # a C++ exception inside the loop: ROOT's on a file it cannot read, or user code's
        raise _lost_file(booked, plan, str(err)) or _loop_error(booked, plan, str(err)) from None
    wall = time.perf_counter() - start
    _check_entries_read(plan, booked)
    return wall, min(loop, wall) if loop > 0 else wall


def _files_read(booked: BookedGraph) -> list[tuple[DatasetPlan, str, int]]:
    """Each file the loop counted (`build.counts_files`), with its dataset and the entries the loop
    read from it (after a failed loop, up to where it stopped)."""
    return [
        (d.plan, f, read)
        for position, d in enumerate(booked.datasets)
        if d.files_counted
        for f, read in zip(d.plan.files, booked.session.file_entries(position, len(d.plan.files)), strict=True)
    ]


def _lost_file(booked: BookedGraph, plan: Plan, text: str) -> RemoteInputError | None:
    """The loop's exception `text` as a remote file lost while read (its server gone), when ROOT
    reported errors during the loop (user code's exceptions come without): the first remote file
    those messages or the exception name, else the first one the loop had not read to its end. The
    reason given is ROOT's first message (the XRootD client's: "[FATAL] Socket error ...")."""
    messages = booked.session.loop_errors()
    if not messages:
        return None
    remote = [(d, f, read) for d, f, read in _files_read(booked) if kind_of(f).remote]
    named = [(d, f) for d, f, _ in remote if f in text or any(f in m for m in messages)]
    unfinished = [(d, f) for d, f, read in remote if read < plan.file_sample(d, f).entries_of(f)]
    if not named + unfinished:
        return None
    d, f = (named + unfinished)[0]
    sample = plan.file_sample(d, f)
    return RemoteInputError(
        f"sample {sample.parent or sample.name!r}: lost {f} while reading it: {messages[0]}",
        hint="is its server up? nothing was written",
    )


def _check_entries_read(plan: Plan, booked: BookedGraph) -> None:
    """Every counted file was read to its end, as the inputs stage counted it: a file read short (a
    server gone without ROOT raising) or changed since is an error, not histograms missing events."""
    for d, f, read in _files_read(booked):
        sample = plan.file_sample(d, f)
        entries = sample.entries_of(f)
        if read != entries:
            remote = kind_of(f).remote
            raise (RemoteInputError if remote else InputError)(
                f"sample {sample.parent or sample.name!r}: read {read} of the {entries} entries {f} had "
                "when the run began",
                hint=f"{'did its server go away, or ' if remote else ''}was the file replaced? nothing was written",
            )


INDEX_ERROR = re.compile(
    r"fw::item site (\d+): index (-?\d+) is out of range for an array of (\d+) entries, "
    r"dataset (\d+) entry (\d+)"
)


def _entry_place(plan: Plan, d: DatasetPlan, entry: int) -> str:
    """'sample X, file F, entry N' of the dataset's entry number `entry` (files in order)."""
    for f in d.files:
        sample = plan.file_sample(d, f)
        count = sample.entries_of(f)
        if entry < count:
            return f"sample {sample.parent or sample.name!r}, file {f}, entry {entry}"
        entry -= count
    return f"entry {entry} past the files"


def _loop_error(booked: BookedGraph, plan: Plan, text: str) -> ExecutionError:
    """The loop's C++ exception as the user's mistake: an array index out of range names the
    subscript as written, its YAML place, the sample, the file and the entry."""
    found = INDEX_ERROR.search(text)
    site = booked.sites.get(int(found.group(1))) if found else None
    if found is None or site is None:
        lines = text.strip().splitlines()
        return ExecutionError(f"the event loop failed: {lines[-1] if lines else text!r}")
    index, size, dataset, entry = found.group(2), found.group(3), int(found.group(4)), int(found.group(5))
    where = next(_entry_place(plan, d.plan, entry) for d in booked.datasets if d.plan.index == dataset)
    return ExecutionError(
        f"index {index} is out of range in {site.written!r}: the array has {size} entries ({where})",
        site.origin,
        "guard the index with a cut or a condition, e.g. (nJet > 2 ? Jet_pt[2] : -1.)",
    )


def _take_buffer(booked: BookedGraph, fill: int, index: int, nsamples: int, extents: list[int]) -> np.ndarray:
    """(sample, *axes, entry, [sumw, sumw2]) array of histogram `index` of a fill; frees its C++ storage.

    Entries are the weight entries, then (for a varied histogram) the shape variations.
    """
    entries = booked.session.fill_entries(fill, index)
    return booked.session.take(fill, index).reshape(nsamples, *extents, entries, 2)


def _histogram(h: HistogramPlan, entries: list[str]) -> hist.Hist:
    axes = [a.to_hist() for a in h.axes]
    systematic = hist.axis.StrCategory(entries, name="systematic", label="systematic", flow=False)
    return hist.Hist(*axes, systematic, storage=hist.storage.Weight(), name=h.name)


def _combine(method: str, nominal: np.ndarray, members: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bin-by-bin up and down from member variations (last axis) around the nominal."""
    if method == "envelope":
        return members.max(axis=-1), members.min(axis=-1)
    deviations = members - nominal[..., None]
    if method == "rms":
        sigma = np.sqrt(np.mean(deviations**2, axis=-1))
    else:  # hessian
        sigma = np.sqrt(np.sum(deviations**2, axis=-1))
    return nominal + sigma, nominal - sigma


def _histograms_of(booked: BookedGraph, d: BookedDataset, h: HistogramPlan, last_row: np.ndarray) -> list[hist.Hist]:
    """One histogram per sample of the dataset, with every entry of the systematic axis."""
    plan = d.plan
    nsamples = len(plan.samples)
    extents = [a.extent for a in h.axes]
    fill = next(f for f in plan.fills if h.name in f.histograms)
    handle = d.fills[plan.fills.index(fill)]
    if handle is None:  # the last cutflow row (weighted sums), not filled twice (build._is_last_cutflow_row)
        cells = last_row[:, CUTFLOW_ENTRIES.index("weighted") :][:, :1]
    else:
        cells = _take_buffer(booked, handle, fill.histograms.index(h.name), nsamples, extents)
    nweights = len(plan.weight_entries)
    # A fill that does not depend on a varied column has no entry for it in the map
    # (and its storage entry stays empty): its variation equals the nominal.
    # (only collision data has no handle, and it has no variations)
    filled = (
        {k for k in shape_keys(plan) if booked.session.has_variation(handle, k)}
        if d.varied and handle is not None
        else set()
    )
    position = {name: i for i, name in enumerate(plan.systematic_entries)}
    out = []
    for pos in range(nsamples):
        result = _histogram(h, plan.systematic_entries)
        view = cast(WeightedSumView, result.view(flow=True))  # Weight storage
        view.value[..., :nweights] = cells[pos, ..., :nweights, 0]
        view.variance[..., :nweights] = cells[pos, ..., :nweights, 1]
        for c in plan.combined:
            members = view.value[..., [position[m] for m in c.members]]
            up, down = _combine(c.method, view.value[..., 0], members)
            for name, values in ((f"{c.name}Up", up), (f"{c.name}Down", down)):
                view.value[..., position[name]] = values
                view.variance[..., position[name]] = view.variance[..., 0]
        for k, key in enumerate(shape_keys(plan)):
            source = nweights + k if key in filled else 0
            name, direction = key.split(":")
            target = position[f"{name}{direction.capitalize()}"]
            view.value[..., target] = cells[pos, ..., source, 0]
            view.variance[..., target] = cells[pos, ..., source, 1]
        out.append(result)
    return out


def _events_read(plan: Plan, d: BookedDataset) -> np.ndarray:
    """The cutflow's first row of collision data without a fill: events read, each of weight 1."""
    counts = [plan.sample(name).events_to_read for name in d.plan.samples]
    return np.repeat(np.asarray(counts, dtype=np.float64)[:, None, None], len(CUTFLOW_ENTRIES), axis=1).repeat(
        2, axis=2
    )


def _sum_of_weights(plan: Plan, sample: SamplePlan, family_sum: float) -> tuple[float, float | None]:
    """The sample's normalisation and the sum of generator weights it divides by (None for data)."""
    if sample.is_data:
        return 1.0, None
    if plan.part is not None:
        return 1.0, family_sum  # a batch part: `merge` normalises the sum of the parts
    declared = sample.sum_weights is not None and sample.entry_limit is None
    sum_gen = sample.sum_weights if declared else family_sum
    assert sample.lumi is not None and sample.xsec is not None
    return normalisation(sample.name, sample.lumi, sample.xsec, sum_gen), sum_gen


def _cutflow(names: Sequence[str], rows: list[np.ndarray], pos: int) -> list[CutflowRow]:
    """The sample's cutflow rows, not normalised: events, weighted sum and its variance per cut."""
    return [
        CutflowRow(
            cut=name,
            events=round(row[pos][0, 0]),
            weighted=float(row[pos][2, 0]),
            weighted_variance=float(row[pos][2, 1]),
        )
        for name, row in zip(names, rows)
    ]


def _lumi_mask(d: DatasetPlan, pos: int) -> LumiMaskTable | None:
    """The certified luminosity the dataset's sample at `pos` was masked with, if any."""
    for step in d.steps:
        if isinstance(step, LumiMask) and step.by_sample[pos] >= 0:
            return step.masks[step.by_sample[pos]]
    return None


def collect_results(plan: Plan, booked: BookedGraph) -> RunResult:
    """Turn the filled buffers into normalised histograms and cutflows, per sample."""
    samples: list[SampleResult] = []
    for d in booked.datasets:
        nsamples = len(d.plan.samples)
        rows = [_take_buffer(booked, c, 0, nsamples, []) if c is not None else _events_read(plan, d) for c in d.cutflow]
        per_sample = {h.name: _histograms_of(booked, d, h, rows[-1]) for h in d.plan.histograms}
        generator = CUTFLOW_ENTRIES.index("generator")
        family_sum: dict[str, float] = {}  # sub-processes of a split sample share its sum of weights
        for pos, name in enumerate(d.plan.samples):
            key = plan.sample(name).parent or name
            family_sum[key] = family_sum.get(key, 0.0) + float(rows[0][pos][generator, 0])
        for pos, name in enumerate(d.plan.samples):
            sample = plan.sample(name)
            norm, sum_gen = _sum_of_weights(plan, sample, family_sum[sample.parent or name])
            histograms = {h.name: per_sample[h.name][pos] for h in d.plan.histograms}
            cutflow = normalise(histograms.values(), _cutflow(d.plan.cutflow, rows, pos), norm)
            events = round(rows[0][pos][0, 0])
            mask = _lumi_mask(d.plan, pos)
            samples.append(SampleResult(sample, histograms, cutflow, events, sum_gen, norm, mask))
    samples.sort(key=lambda s: [p.name for p in plan.samples].index(s.sample.name))
    return RunResult(samples)
