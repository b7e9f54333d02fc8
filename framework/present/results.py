"""Read a run's output files back: histograms per sample or per process, for plots, tables and notebooks.

    from framework.present.results import load_histograms
    hists = load_histograms("OUT", by="process")
    hists["ttbar"]["ht"][{"systematic": "jesUp", "nbtag": sum}].project("HT").plot()

Everything here works on `hist.Hist` objects and needs no ROOT.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import hist
import numpy as np
from boost_histogram.view import WeightedSumView

from framework.errors import InputError
from framework.output.format import CutflowRow, Provenance, read_records
from framework.output.write import SUFFIX, read_histograms

DATA = "data"  # the process name under which every collision-data sample is summed


@dataclass(frozen=True)
class SampleOutput:
    name: str
    path: Path
    provenance: Provenance
    cutflow: list[CutflowRow]
    histograms: dict[str, hist.Hist]

    @property
    def is_data(self) -> bool:
        return self.provenance.is_data

    @property
    def process(self) -> str:
        return DATA if self.is_data else self.provenance.process


@dataclass(frozen=True)
class RunOutputs:
    """The output files of one run (or of a merge), all made by the same configuration."""

    folder: Path
    samples: dict[str, SampleOutput]
    # process sums, made once: every plot, table and export of a histogram reads the same sum
    _sums: dict[tuple[str, str], hist.Hist] = field(default_factory=dict, repr=False, compare=False)

    @property
    def config_hash(self) -> str:
        return next(iter(self.samples.values())).provenance.config_hash

    @property
    def systematics(self) -> list[str]:
        return list(next(iter(self.samples.values())).provenance.systematics)

    def processes(self) -> list[str]:
        """Simulated processes in the order of their first sample."""
        return list(dict.fromkeys(s.process for s in self.samples.values() if not s.is_data))

    def has_data(self) -> bool:
        return any(s.is_data for s in self.samples.values())

    def histogram(self, process: str, name: str) -> hist.Hist:
        """One histogram summed over the samples of a process (`data`: all data samples); do not modify it."""
        key = (process, name)
        if key not in self._sums:
            self._sums[key] = sum_histograms(
                [s.histograms[name] for s in self.samples.values() if s.process == process]
            )
        return self._sums[key]

    def simulation(self, name: str, processes: Sequence[str]) -> hist.Hist:
        """The sum of these simulated processes; zero everywhere when there are none (data only)."""
        if processes:
            return sum_histograms([self.histogram(p, name) for p in processes])
        like = next(iter(self.samples.values())).histograms[name]
        axes = [a for a in like.axes if a.name != "systematic"]
        return hist.Hist(
            *axes, hist.axis.StrCategory(["nominal"], name="systematic", flow=False), storage=hist.storage.Weight()
        )

    def by_process(self) -> dict[str, dict[str, hist.Hist]]:
        names = list(next(iter(self.samples.values())).histograms)
        groups = [*self.processes(), *([DATA] if self.has_data() else [])]
        return {p: {n: self.histogram(p, n) for n in names} for p in groups}


def load_outputs(folder: str | Path) -> RunOutputs:
    """Every `<sample>.hist.zip` in a run's output folder. Refuses batch parts and mixed configurations."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"run output folder {str(folder)!r} does not exist", hint="give the -o folder of a run")
    paths = sorted(folder.glob(f"*{SUFFIX}"))
    parts = [p for p in paths if ".part-" in p.name]
    if parts:
        raise InputError(
            f"{parts[0]} is a batch part, not a complete sample",
            hint=f"merge the parts first: run-analysis merge CONFIG -i {folder} -o MERGED",
        )
    if not paths:
        raise InputError(f"no output files (*{SUFFIX}) in {folder}", hint="run the analysis with -o on this folder")
    samples: dict[str, SampleOutput] = {}
    first: SampleOutput | None = None
    for path in paths:
        try:
            provenance, cutflow = read_records(path)
            output = SampleOutput(provenance.sample, path, provenance, cutflow, read_histograms(path))
        except (OSError, KeyError, ValueError) as err:
            raise InputError(f"{path} is not an output file of this framework: {err}") from None
        if first is None:
            first = output
        elif provenance.config_hash != first.provenance.config_hash:
            raise InputError(
                f"{path} was made by another configuration than {first.path.name} "
                f"({provenance.config} sha256 {provenance.config_hash[:12]} vs "
                f"{first.provenance.config} sha256 {first.provenance.config_hash[:12]})",
                hint="keep the outputs of one run per folder; rerun the samples whose configuration changed",
            )
        if not provenance.normalised:
            raise InputError(f"{path} is not normalised", hint="merge batch parts with 'run-analysis merge'")
        samples[output.name] = output
    return RunOutputs(folder, samples)


def load_histograms(folder: str | Path, by: Literal["sample", "process"] = "sample") -> dict[str, dict[str, hist.Hist]]:
    """All histograms of a run: {sample: {histogram: Hist}}, or summed per process (`data` for data)."""
    outputs = load_outputs(folder)
    if by == "process":
        return outputs.by_process()
    return {name: dict(s.histograms) for name, s in outputs.samples.items()}


def sum_histograms(histograms: Sequence[hist.Hist]) -> hist.Hist:
    """Sum over samples. A sample without some systematic entry (data, or a systematic that does
    not apply to it) contributes its nominal to that entry."""
    entries = list(dict.fromkeys(e for h in histograms for e in h.axes["systematic"]))
    first = histograms[0]
    axes = [a for a in first.axes if a.name != "systematic"]
    total = hist.Hist(
        *axes, hist.axis.StrCategory(entries, name="systematic", flow=False), storage=hist.storage.Weight()
    )
    out = cast(WeightedSumView, total.view(flow=True))  # Weight storage
    for h in histograms:
        view = cast(WeightedSumView, h.view(flow=True))
        index = {e: i for i, e in enumerate(h.axes["systematic"])}
        take = [index.get(e, index["nominal"]) for e in entries]
        out.value += view.value[..., take]
        out.variance += view.variance[..., take]
    return total


def flow_index(axis: Any, value: Any) -> int:
    """Position of a bin value in `view(flow=True)` along this axis; out-of-range integers go to the flow bins."""
    offset = 1 if axis.traits.underflow else 0
    if isinstance(axis, hist.axis.Integer):
        return int(
            np.clip(int(value) - int(axis.edges[0]) + offset, 0, len(axis) + offset + int(axis.traits.overflow) - 1)
        )
    return int(axis.index(value)) + offset


def range_indices(axis: Any, low: float, high: float) -> list[int]:
    """Flow positions of the bins of a continuous axis that overlap [low, high]."""
    edges = axis.edges
    offset = 1 if axis.traits.underflow else 0
    found = [i + offset for i in range(len(axis)) if edges[i] < high and edges[i + 1] > low]
    if axis.traits.underflow and low < edges[0]:
        found.insert(0, 0)
    if axis.traits.overflow and high > edges[-1]:
        found.append(len(axis) + offset)
    return found


def all_indices(axis: Any) -> list[int]:
    return list(range(len(axis) + int(axis.traits.underflow) + int(axis.traits.overflow)))


def visible_indices(axis: Any) -> list[int]:
    offset = 1 if axis.traits.underflow else 0
    return list(range(offset, offset + len(axis)))


def reduce_view(
    array: np.ndarray, axes: Sequence[Any], keep: Sequence[str], chosen: dict[str, list[int]]
) -> np.ndarray:
    """Sum a flow-including array over the bins chosen on each axis not kept; kept axes keep their
    visible bins, in the order of `keep`. Trailing array dimensions (the systematic axis) pass through."""
    names = [a.name for a in axes]
    for position in reversed(range(len(axes))):
        axis = axes[position]
        if axis.name in keep:
            array = np.take(array, visible_indices(axis), axis=position)
        else:
            array = np.take(array, chosen.get(axis.name, all_indices(axis)), axis=position).sum(axis=position)
    kept = [n for n in names if n in keep]
    return np.moveaxis(array, [kept.index(k) for k in keep], list(range(len(keep)))) if len(keep) > 1 else array


def variation_templates(
    values: np.ndarray, entries: Sequence[str], systematics: Iterable[str]
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per systematic, its up and down templates (`values` has the systematic entries on its last axis).

    A systematic with `Up`/`Down` entries gives those two; a one-sided one (an `Up` entry alone, listed
    in the provenance's `one_sided`) gives its `Up` and the mirror image 2 nominal - up (not below 0),
    the one place where one-sided variations are symmetrised for what needs both sides (plot bands,
    tables, combine shapes, the statistical model); one with indexed members (`scale_0`, `scale_1`,
    ...) gives their bin-by-bin envelope (maximum, minimum).
    """
    names = sorted(systematics, key=len, reverse=True)
    paired: dict[str, dict[str, int]] = {}
    indexed: dict[str, list[int]] = {}
    for i, entry in enumerate(entries):
        for name in names:
            if entry in (f"{name}Up", f"{name}Down"):
                paired.setdefault(name, {})[entry[len(name) :]] = i
                break
            if entry.startswith(f"{name}_") and entry[len(name) + 1 :].isdigit():
                indexed.setdefault(name, []).append(i)
                break
    templates = {}
    for name in systematics:
        if name in paired and len(paired[name]) == 2:
            templates[name] = (values[..., paired[name]["Up"]], values[..., paired[name]["Down"]])
        elif name in paired and "Up" in paired[name]:
            up = values[..., paired[name]["Up"]]
            templates[name] = (up, np.maximum(2 * values[..., list(entries).index("nominal")] - up, 0.0))
        elif name in indexed:
            members = values[..., indexed[name]]
            templates[name] = (members.max(axis=-1), members.min(axis=-1))
    return templates


def systematic_shifts(
    values: np.ndarray, entries: Sequence[str], systematics: Iterable[str]
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per systematic, the upward and downward shifts (both >= 0) of the nominal, bin by bin:
    the largest rise and the largest fall among its up and down templates."""
    nominal = values[..., list(entries).index("nominal")]
    shifts = {}
    for name, (up, down) in variation_templates(values, entries, systematics).items():
        shifts[name] = (
            np.maximum.reduce([up - nominal, down - nominal, np.zeros_like(nominal)]),
            np.maximum.reduce([nominal - up, nominal - down, np.zeros_like(nominal)]),
        )
    return shifts


def total_shift(shifts: dict[str, tuple[np.ndarray, np.ndarray]], like: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Quadrature sum of the per-systematic shifts."""
    up = np.sqrt(sum((u**2 for u, _ in shifts.values()), np.zeros_like(like)))
    down = np.sqrt(sum((d**2 for _, d in shifts.values()), np.zeros_like(like)))
    return up, down


def differences(first: str | Path, second: str | Path, rel: float = 0.0) -> list[str]:
    """Where two runs' outputs disagree: every histogram of every sample, bin by bin (flow bins
    included), and the cutflows. Counts and sums must be equal within `rel` (relative; 0: exact).
    Two threads add weights in a run-dependent order, so their sums agree to ~1e-15, not exactly."""
    a, b = load_outputs(first), load_outputs(second)
    found = [f"sample {n} only in {first}" for n in a.samples if n not in b.samples]
    found += [f"sample {n} only in {second}" for n in b.samples if n not in a.samples]
    for name in (n for n in a.samples if n in b.samples):
        sa, sb = a.samples[name], b.samples[name]
        if set(sa.histograms) != set(sb.histograms):
            found.append(f"{name}: histograms differ: {sorted(sa.histograms)} vs {sorted(sb.histograms)}")
            continue
        for h, ha in sa.histograms.items():
            va = cast(WeightedSumView, ha.view(flow=True))
            vb = cast(WeightedSumView, sb.histograms[h].view(flow=True))
            for field_name in ("value", "variance"):
                x, y = np.asarray(va[field_name]), np.asarray(vb[field_name])
                if x.shape != y.shape or not np.allclose(x, y, rtol=rel, atol=0.0):
                    found.append(f"{name}/{h}: {field_name}s differ")
        rows = [(r.cut, r.events) for r in sa.cutflow], [(r.cut, r.events) for r in sb.cutflow]
        weighted = np.array([r.weighted for r in sa.cutflow]), np.array([r.weighted for r in sb.cutflow])
        if rows[0] != rows[1] or not np.allclose(*weighted, rtol=rel, atol=0.0):
            found.append(f"{name}: cutflows differ")
    return found
