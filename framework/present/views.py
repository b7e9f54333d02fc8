"""Plan of what `run-analysis plot` and `export` make: plots, blinded regions and exports, as plain data.

Everything is resolved against the configuration alone (histogram axes, category bins,
process names), so a misspelt axis or category fails with its YAML line before any
output file is read, and the same checks run before an event loop.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, TypeGuard

import numpy as np

from framework.config.load import LoadedConfig, lumi_of, split_names
from framework.config.schema.base import YIELDS
from framework.config.schema.core import AxisSpec
from framework.config.schema.presentation import PlotSpec, ProcessSpec, SignalSpec, SliceValue
from framework.errors import ConfigError, Location, did_you_mean
from framework.plan.axes import AxisPlan, histogram_axes
from framework.present.results import DATA

log = logging.getLogger(__name__)

# The place of a key below a block of the configuration (`locate("slices", "nbtag")`); None for
# what did not come from YAML (the arguments of a notebook's `Analysis.plot`).
Locate = Callable[..., Location | None]

# CMS's colour-blind-friendly palette (Petroff), for processes without a colour
PALETTE = ("#5790fc", "#f89c20", "#e42536", "#964a8b", "#9c9ca1", "#7a21dd", "#3f90da", "#ffa90e", "#bd1f01", "#94a4a2")


@dataclass(frozen=True)
class AxisCut:
    """The bins of one axis that are summed: chosen values, a [low, high] range, the bin of
    undeclared categories (`other`), or all bins."""

    axis: str
    values: tuple[Any, ...] | None = None
    range: tuple[float, float] | None = None
    other: bool = False

    def describe(self) -> str:
        if self.range is not None:
            return f"{self.axis} in [{self.range[0]:g}, {self.range[1]:g}]"
        if self.other:
            return f"{self.axis} = other"
        if self.values is None:
            return ""
        return f"{self.axis} = " + " + ".join(_value_text(v) for v in self.values)


@dataclass(frozen=True)
class SignalDraw:
    """How a plot draws its signal processes: stacked on top (unscaled), as lines scaled by `scale`, or both."""

    processes: tuple[str, ...]
    stack: bool
    line: bool
    scale: float

    def legend(self, label: str) -> str:
        """The line's legend entry: the process label with the factor, e.g. 'ttH $\\times$ 10'."""
        return label if self.scale == 1 else f"{label} $\\times$ {self.scale:g}"


@dataclass(frozen=True)
class View:
    """One projection of a histogram: the kept axes, and the bins summed on the others."""

    name: str
    histogram: str
    keep: tuple[str, ...]
    cuts: tuple[AxisCut, ...]
    origin: Location | None
    log: bool = False
    rebin: int | None = None
    xlabel: str | None = None
    ylabel: str | None = None
    signal: SignalDraw | None = None

    @property
    def title(self) -> str:
        return ", ".join(t for t in (c.describe() for c in self.cuts) if t)


@dataclass(frozen=True)
class CombineView:
    name: str
    histogram: str
    axis: str
    channels: list[tuple[str, tuple[AxisCut, ...]]]  # directory name, its cuts
    rebin: int | None


@dataclass(frozen=True)
class CorrectionView:
    name: str
    histogram: str
    axes: tuple[str, ...]
    cuts: tuple[AxisCut, ...]
    numerator: tuple[str, ...]
    denominator: tuple[str, ...]
    description: str
    origin: Location


@dataclass(frozen=True)
class SignificanceView:
    name: str
    histogram: str
    axis: str
    cuts: tuple[AxisCut, ...]
    signal: tuple[str, ...]
    bins: tuple[int, int]  # first and one-past-last bin of the axis inside the window
    origin: Location


@dataclass
class Presentation:
    """Everything `plot` and `export` make, checked against the configuration."""

    processes: list[str]  # simulated processes, stacking order (first at the bottom)
    labels: dict[str, str]
    colors: dict[str, str]
    lumi_inv_pb: float | None  # of the data's eras, or of the simulation's without data
    views: list[View]
    blind: list[tuple[AxisCut, ...]]
    combine: list[CombineView] = field(default_factory=list)
    corrections: list[CorrectionView] = field(default_factory=list)
    significance: list[SignificanceView] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, default=str)


def _value_text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _axes(config: LoadedConfig, hname: str, where: Location | None) -> dict[str, AxisPlan]:
    spec = config.spec
    if hname != YIELDS and hname not in spec.histograms:
        raise ConfigError(
            f"histogram {hname!r} is not declared",
            where,
            did_you_mean(hname, [*spec.histograms, YIELDS]) or f"declared: {', '.join(spec.histograms)}",
        )
    return {a.name: a for a in histogram_axes(spec, hname)}


def _axis(axes: dict[str, AxisPlan], name: str, hname: str, where: Location | None) -> AxisPlan:
    if name not in axes:
        raise ConfigError(
            f"histogram {hname!r} has no axis {name!r}",
            where,
            did_you_mean(name, axes) or f"its axes: {', '.join(axes) or 'none'}",
        )
    return axes[name]


def _is_range(value: SliceValue) -> TypeGuard[list[int | float]]:
    """[low, high], two numbers."""
    return isinstance(value, list) and len(value) == 2 and all(isinstance(v, int | float) for v in value)


def _cuts(axis: AxisPlan, value: SliceValue, where: Location | None) -> list[AxisCut]:
    """The cut(s) a slice asks for; 'each' gives one per bin."""
    if value == "sum":
        return [AxisCut(axis.name)]
    if value == "each":
        if axis.continuous:
            edges = axis.bin_edges()
            return [AxisCut(axis.name, range=(lo, hi)) for lo, hi in itertools.pairwise(edges)]
        return [AxisCut(axis.name, values=(v,)) for v in axis.bin_values()]
    if axis.continuous:
        if not _is_range(value):
            raise ConfigError(
                f"axis {axis.name!r} is continuous; found {value!r}", where, "give [low, high], 'sum' or 'each'"
            )
        if not value[0] < value[1]:
            raise ConfigError(f"range {value!r} must have low < high", where)
        return [AxisCut(axis.name, range=(float(value[0]), float(value[1])))]
    values = value if isinstance(value, list) else [value]
    return [AxisCut(axis.name, values=tuple(axis.check_value(v, where) for v in values))]


def _slices(
    config: LoadedConfig,
    axes: dict[str, AxisPlan],
    hname: str,
    slices: dict[str, SliceValue],
    keep: list[str],
    path: tuple,
    locate: Locate | None = None,
) -> list[tuple[AxisCut, ...]]:
    """Every combination of the cuts asked for on the axes not kept (unnamed axes are summed).
    Places are `config.locate(*path, ...)`, or `locate(...)` when given."""
    where_of: Locate = locate or (lambda *keys: config.locate(*path, *keys))
    choices = []
    for name, axis in axes.items():
        if name in keep:
            continue
        if name in slices:
            choices.append(_cuts(axis, slices[name], where_of("slices", name)))
        else:
            choices.append([AxisCut(name)])
    for name in slices:
        where = where_of("slices", name)
        _axis(axes, name, hname, where)
        if name in keep:
            raise ConfigError(f"axis {name!r} is drawn; it cannot also be sliced", where, "remove it from 'slices'")
    return [tuple(c) for c in itertools.product(*choices)]


def _name(base: str, cuts: tuple[AxisCut, ...], expanded: set[str]) -> str:
    parts = [base]
    for c in cuts:
        if c.axis in expanded:
            text = _value_text(c.values[0]) if c.values else f"{c.range[0]:g}-{c.range[1]:g}"  # type: ignore[index]
            parts.append(f"{c.axis}-{text}")
    return "__".join(parts)


def _signal(config: LoadedConfig, spec: SignalSpec | None, locate: Locate, known: list[str]) -> SignalDraw | None:
    """The signal processes of a `signal:` block (default: the model's), each one with samples."""
    if spec is None:
        return None
    if spec.processes is not None:
        names = [(p, locate("processes", i)) for i, p in enumerate(spec.processes)]
    elif config.spec.model is not None and config.spec.model.signal:
        names = [(p, config.locate("model", "signal", i)) for i, p in enumerate(config.spec.model.signal)]
    else:
        raise ConfigError(
            "'signal' names no processes and there is no 'model.signal' to take them from",
            locate(),
            "name them, e.g. signal: {processes: [ttH], stack: false, scale: 10}",
        )
    _check_processes(names, known)
    return SignalDraw(tuple(dict.fromkeys(p for p, _ in names)), spec.stack, spec.draws_line, spec.scale)


def plot_views(config: LoadedConfig, name: str, plot: PlotSpec, locate: Locate) -> list[View]:
    """The views of one `plots:` entry (several with `each`); `locate` gives the places of its keys."""
    axes = _axes(config, plot.histogram, locate("histogram"))
    if not axes:
        raise ConfigError(f"histogram {plot.histogram!r} has no axis to draw", locate("histogram"))
    drawn = plot.axis or next(iter(axes))
    axis = _axis(axes, drawn, plot.histogram, locate("axis"))
    if plot.rebin and axis.bins % plot.rebin:
        raise ConfigError(
            f"rebin {plot.rebin} does not divide the {axis.bins} bins of {drawn!r}",
            locate("rebin"),
            "choose a divisor of the number of bins",
        )
    if plot.signal is not None:
        signal = _signal(config, plot.signal, lambda *k: locate("signal", *k), output_processes(config))
    else:
        signal = _signal(
            config, config.spec.style.signal, lambda *k: config.locate("style", "signal", *k), output_processes(config)
        )
    expanded = {n for n, v in plot.slices.items() if v == "each"}
    return [
        View(
            _name(name, cuts, expanded),
            plot.histogram,
            (drawn,),
            cuts,
            locate(),
            plot.log,
            plot.rebin,
            plot.xlabel,
            plot.ylabel,
            signal,
        )
        for cuts in _slices(config, axes, plot.histogram, plot.slices, [drawn], (), locate)
    ]


def _plot_views(config: LoadedConfig) -> list[View]:
    spec = config.spec
    views: list[View] = []
    if not spec.plots:
        signal = _signal(
            config, spec.style.signal, lambda *k: config.locate("style", "signal", *k), output_processes(config)
        )
        for hname in spec.histograms:
            plan_axes = histogram_axes(spec, hname)
            for axis in plan_axes:
                views.append(
                    View(
                        f"{hname}__{axis.name}" if len(plan_axes) > 1 else hname,
                        hname,
                        (axis.name,),
                        tuple(AxisCut(a.name) for a in plan_axes if a is not axis),
                        config.locate("histograms", hname),
                        signal=signal,
                    )
                )
        return views
    for pname, plot in spec.plots.items():
        views.extend(plot_views(config, pname, plot, lambda *keys, p=pname: config.locate("plots", p, *keys)))
    return views


def _blind(config: LoadedConfig) -> list[tuple[AxisCut, ...]]:
    """Blinded regions. An axis name must belong to some histogram (its values are checked there)."""
    spec = config.spec
    every = {a.name: a for h in [*spec.histograms, YIELDS] for a in histogram_axes(spec, h)}
    regions = []
    for i, region in enumerate(spec.blind):
        cuts = []
        for name, value in region.items():
            where = config.locate("blind", i, name)
            if name not in every:
                raise ConfigError(
                    f"no histogram has an axis {name!r}",
                    where,
                    did_you_mean(name, every) or f"axes: {', '.join(every)}",
                )
            if value in ("sum", "each"):
                raise ConfigError(f"a blinded region needs values, not {value!r}", where)
            cuts.extend(_cuts(every[name], value, where))
        regions.append(tuple(cuts))
    return regions


def output_processes(config: LoadedConfig) -> list[str]:
    """Simulated processes of the output samples, in declaration order."""
    found: list[str] = []
    for name, sample in config.spec.samples.items():
        if sample.is_data:
            continue
        found.extend(split_names(name, sample.split) or [sample.process or name])
    return list(dict.fromkeys(found))


def _check_processes(names: list[tuple[str, Location | None]], known: list[str]) -> None:
    for name, where in names:
        if name not in known:
            raise ConfigError(
                f"process {name!r} has no samples", where, did_you_mean(name, known) or f"processes: {', '.join(known)}"
            )


def _exports(config: LoadedConfig, processes: list[str]) -> tuple[list[CombineView], list[CorrectionView]]:
    spec = config.spec
    combine = []
    for name, export in spec.exports.combine.items():
        path = ("exports", "combine", name)
        axes = _axes(config, export.histogram, config.locate(*path, "histogram"))
        drawn = export.axis or next(iter(axes))
        axis = _axis(axes, drawn, export.histogram, config.locate(*path, "axis"))
        if export.rebin and axis.bins % export.rebin:
            raise ConfigError(
                f"rebin {export.rebin} does not divide the {axis.bins} bins of {drawn!r}", config.locate(*path, "rebin")
            )
        for i, channel in enumerate(export.channels):
            where = config.locate(*path, "channels", i)
            if _axis(axes, channel, export.histogram, where).continuous:
                raise ConfigError(f"channel axis {channel!r} is continuous", where, "channels must be category axes")
        slices: dict[str, SliceValue] = {**export.slices, **{c: "each" for c in export.channels}}
        combos = _slices(config, axes, export.histogram, slices, [drawn], path)
        channels = [
            (
                "_".join(_value_text(c.values[0]) for c in cuts if c.axis in export.channels and c.values)
                or "inclusive",
                cuts,
            )
            for cuts in combos
        ]
        combine.append(CombineView(name, export.histogram, drawn, channels, export.rebin))
    corrections = []
    for name, correction in spec.exports.corrections.items():
        path = ("exports", "corrections", name)
        axes = _axes(config, correction.histogram, config.locate(*path, "histogram"))
        for i, a in enumerate(correction.axes):
            _axis(axes, a, correction.histogram, config.locate(*path, "axes", i))
        for key in ("numerator", "denominator"):
            names = getattr(correction, key)
            _check_processes([(p, config.locate(*path, key, i)) for i, p in enumerate(names) if p != DATA], processes)
        combos = _slices(config, axes, correction.histogram, correction.slices, list(correction.axes), path)
        if len(combos) != 1:
            raise ConfigError("'each' is not allowed in a correction's slices", config.locate(*path, "slices"))
        corrections.append(
            CorrectionView(
                name,
                correction.histogram,
                tuple(correction.axes),
                combos[0],
                tuple(correction.numerator),
                tuple(correction.denominator or processes),
                correction.description
                or f"{' + '.join(correction.numerator)} / {' + '.join(correction.denominator or processes)} "
                f"in {correction.histogram}",
                config.locate(*path),
            )
        )
    return combine, corrections


def _color(style: ProcessSpec | None, position: int) -> str:
    return style.color if style is not None and style.color else PALETTE[position % len(PALETTE)]


def plot_lumi(config: LoadedConfig) -> float | None:
    """The luminosity (/pb) that plots show: of the data's eras, or of the simulation's without data."""
    samples = config.spec.samples.values()
    chosen = [s for s in samples if s.is_data] or list(samples)
    per_era = {s.era: lumi_of(config.spec, s.era) for s in chosen}
    values = [v for v in per_era.values() if v is not None]
    return float(sum(values)) if values else None


def _window(edges: np.ndarray, window: tuple[float, float] | None, where: Location) -> tuple[int, int]:
    """The bins that lie wholly inside the window."""
    if window is None:
        return 0, len(edges) - 1
    inside = np.flatnonzero((edges[:-1] >= window[0] - 1e-9) & (edges[1:] <= window[1] + 1e-9))
    if not inside.size:
        raise ConfigError(
            f"no bin lies inside the range [{window[0]:g}, {window[1]:g}]",
            where,
            f"edges: {', '.join(f'{e:g}' for e in edges)}",
        )
    return int(inside[0]), int(inside[-1]) + 1


def _significances(config: LoadedConfig, processes: list[str]) -> list[SignificanceView]:
    found = []
    for name, spec in config.spec.significance.items():
        path = ("significance", name)
        axes = _axes(config, spec.histogram, config.locate(*path, "histogram"))
        drawn = spec.axis or next(iter(axes))
        axis = _axis(axes, drawn, spec.histogram, config.locate(*path, "axis"))
        if not axis.continuous:
            raise ConfigError(
                f"the significance's axis {drawn!r} is a category axis; it is fitted in bins of a continuous one",
                config.locate(*path, "axis" if spec.axis else "histogram"),
                "name a continuous axis with 'axis:' and slice the categories with 'slices:'",
            )
        if spec.range is not None and not spec.range[0] < spec.range[1]:
            raise ConfigError("'range' needs low < high", config.locate(*path, "range"))
        _check_processes([(p, config.locate(*path, "signal", i)) for i, p in enumerate(spec.signal)], processes)
        combos = _slices(config, axes, spec.histogram, spec.slices, [drawn], path)
        if len(combos) != 1:
            raise ConfigError("'each' is not allowed in a significance's slices", config.locate(*path, "slices"))
        edges = np.asarray(axis.bin_edges(), dtype=float)
        bins = _window(edges, spec.range, config.locate(*path, "range"))
        found.append(
            SignificanceView(name, spec.histogram, drawn, combos[0], tuple(spec.signal), bins, config.locate(*path))
        )
    return found


MATH = re.compile(r"\$[^$]*\$")


def _labels(config: LoadedConfig) -> Iterator[tuple[str, Location]]:
    """Every label of the configuration that a plot draws, with its place."""
    spec = config.spec
    for hname, h in spec.histograms.items():
        for i, axis in enumerate(h.axes):
            if isinstance(axis, AxisSpec) and axis.label:
                yield axis.label, config.locate("histograms", hname, "axes", i, "label")
    for name, category in spec.categories.items():
        if category.label:
            yield category.label, config.locate("categories", name, "label")
    for name, process in spec.processes.items():
        if process.label:
            yield process.label, config.locate("processes", name, "label")
    for name, plot in spec.plots.items():
        for key in ("xlabel", "ylabel"):
            if getattr(plot, key):
                yield getattr(plot, key), config.locate("plots", name, key)
    if spec.tnp is not None:
        for name, binning in spec.tnp.binning.items():
            if binning.label:
                yield binning.label, config.locate("tnp", "binning", name, "label")


def check_label(text: str, where: Location | None, parse_math: bool = True) -> None:
    """A label is drawn as written; math goes between `$...$` (matplotlib mathtext, e.g. '$p_T$ [GeV]',
    '$m_{\\mu\\mu}$ [GeV]'). An unpaired `$` or (with `parse_math`) math that mathtext cannot read is an
    error; a `_` or `^` outside math, which shows as written, is a warning."""
    plain = text.replace("\\$", "")
    if plain.count("$") % 2:
        raise ConfigError(
            f"label {text!r} has an unpaired '$'",
            where,
            "math goes between two '$', e.g. '$p_T$ [GeV]'; write '\\$' for a dollar sign",
        )
    if re.search(r"[_^]", MATH.sub("", plain)):
        log.warning(
            "%slabel %r has '_' or '^' outside $...$ and shows them as written; for a sub- or superscript "
            "write math, e.g. '$p_T$ [GeV]'",
            f"{where}: " if where else "",
            text,
        )
    if parse_math and "$" in plain:
        from matplotlib.mathtext import MathTextParser

        try:
            MathTextParser("path").parse(text)
        except ValueError as err:
            reason = re.sub(r"^\w*Exception: |\s*\(at char \d+\).*$", "", str(err).strip().splitlines()[-1])
            raise ConfigError(
                f"label {text!r} is not valid math: {reason}",
                where,
                "matplotlib mathtext: https://matplotlib.org/stable/users/explain/text/mathtext.html",
            ) from None


def make_presentation(config: LoadedConfig, parse_math: bool | None = None) -> Presentation:
    """What `plot` and `export` make, checked against the configuration. The labels' math is read by
    matplotlib when `parse_math` (default: when plots follow the run, `report: true`); `plot` always does."""
    spec = config.spec
    for text, where in _labels(config):
        check_label(text, where, spec.report if parse_math is None else parse_math)
    known = output_processes(config)
    _check_processes([(p, config.locate("processes", p)) for p in spec.processes], known)
    order = [*spec.processes, *[p for p in known if p not in spec.processes]]
    combine, corrections = _exports(config, order)
    return Presentation(
        processes=order,
        labels={p: ((spec.processes[p].label or p) if p in spec.processes else p) for p in order},
        colors={p: _color(spec.processes.get(p), i) for i, p in enumerate(order)},
        lumi_inv_pb=plot_lumi(config),
        views=_plot_views(config),
        blind=_blind(config),
        combine=combine,
        corrections=corrections,
        significance=_significances(config, order),
    )
