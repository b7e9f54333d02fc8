"""Stacked plots: simulation stacked by process, data with Poisson errors, ratio panel, uncertainty bands.

Each plot is first reduced to `PlotData` (plain numbers, written beside the image as JSON),
then drawn; what the JSON says is exactly what the figure shows: the events in each bin, divided
by the bin's width where `per_width` says so (variable bins), and each signal line times its `scale`.

Figures are `figure.StyledFigure`s, in the experiment's style without changing matplotlib's global
settings, and not registered with pyplot (a notebook shows a returned figure once; nothing to close).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import hist
import numpy as np
from scipy import stats

from framework.config.schema.presentation import PlotStyleSpec
from framework.present.project import blinded, project
from framework.present.results import DATA, RunOutputs
from framework.present.views import Presentation, View

ONE_SIGMA = stats.norm.cdf(1) - stats.norm.cdf(-1)
UNIT = re.compile(r"\[([^\[\]]+)\]\s*$")  # "$H_T$ [GeV]" -> GeV


def events_label(xlabel: str, edges: Sequence[float], categorical: bool) -> tuple[str, bool]:
    """The y label of a plot and whether its heights are events divided by bin width.

    Uniform bins show events per bin, the width in the label ("Events / 40 GeV", the unit taken from
    the brackets that end the x label); variable bins show events per unit ("Events / GeV", or "Events /
    bin width" without a unit); categories show "Events".

    >>> events_label("$H_T$ [GeV]", [0, 40, 80], False)
    ('Events / 40 GeV', False)
    >>> events_label("$p_T$ [GeV]", [20, 25, 30, 40], False)
    ('Events / GeV', True)
    """
    if categorical or len(edges) < 2:
        return "Events", False
    widths = np.diff(np.asarray(edges, dtype=float))
    found = UNIT.search(xlabel)
    unit = found.group(1).strip() if found else ""
    if np.allclose(widths, widths[0], rtol=1e-9, atol=0):
        return f"Events / {widths[0]:.3g} {unit}".rstrip(), False
    return (f"Events / {unit}" if unit else "Events / bin width"), True


class Band(NamedTuple):
    """An uncertainty band about the total, drawn filled grey or hatched."""

    gid: str
    label: str
    up: list[float]
    down: list[float]
    hatched: bool


@dataclass
class SignalLine:
    """A signal process drawn as a line over the stack: `values` (events per bin) times `scale`."""

    process: str
    label: str  # the legend's, with the factor: "ttH $\\times$ 10"
    color: str
    scale: float
    values: list[float]


@dataclass
class PlotData:
    """What one plot draws, bin by bin: events per bin (divided by the widths when `per_width`)."""

    name: str
    histogram: str
    axis: str
    title: str
    edges: list[float]
    tick_labels: list[str] | None  # category axes: one label per bin
    processes: list[str]  # bottom to top
    labels: list[str]
    colors: list[str]
    stack: list[list[float]]  # per process, nominal
    total: list[float]
    stat_up: list[float]  # total + statistical uncertainty
    stat_down: list[float]
    syst_up: list[float]  # total + systematic shifts in quadrature
    syst_down: list[float]
    data: list[float] | None  # None without data; NaN in blinded bins
    data_low: list[float] | None  # Poisson (Garwood) interval edges
    data_high: list[float] | None
    blinded: list[bool]
    lumi_inv_pb: float | None
    log: bool
    xlabel: str
    ylabel: str
    per_width: bool = False  # heights are the values divided by the bin widths (variable bins)
    lines: list[SignalLine] = field(default_factory=list)  # signal drawn as lines, not in `stack`/`total`

    @property
    def widths(self) -> np.ndarray:
        """What each bin's values are divided by when drawn: the bin widths, or ones."""
        edges = np.asarray(self.edges, dtype=float)
        return np.diff(edges) if self.per_width else np.ones(len(edges) - 1)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, allow_nan=True)

    def bands(self) -> list[Band]:
        """The systematic band under the statistical one."""
        return [
            Band("syst", "Syst. unc.", self.syst_up, self.syst_down, hatched=False),
            Band("stat", "Stat. unc.", self.stat_up, self.stat_down, hatched=True),
        ]


def poisson_interval(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Garwood central 68% interval of a Poisson mean for observed counts."""
    low = np.where(counts > 0, stats.chi2.ppf((1 - ONE_SIGMA) / 2, 2 * counts) / 2, 0.0)
    high = stats.chi2.ppf((1 + ONE_SIGMA) / 2, 2 * (counts + 1)) / 2
    return low, high


def _bins(axis: Any) -> tuple[list[float], list[str] | None]:
    if isinstance(axis, hist.axis.StrCategory | hist.axis.IntCategory | hist.axis.Boolean):
        return [float(i) for i in range(len(axis) + 1)], [str(v) for v in axis]
    if isinstance(axis, hist.axis.Integer):
        return [float(e) for e in axis.edges], [str(v) for v in axis]
    return [float(e) for e in axis.edges], None


def plot_data(outputs: RunOutputs, presentation: Presentation, view: View) -> PlotData:
    processes = [p for p in presentation.processes if p in outputs.processes()]
    signal = view.signal
    signals = [p for p in signal.processes if p in processes] if signal else []
    # the stack: backgrounds in their order, then the signal on top (unless it is drawn as lines only)
    stacked = [p for p in processes if p not in signals] + (signals if signal and signal.stack else [])
    histograms = {p: outputs.histogram(p, view.histogram) for p in processes}
    projections = {p: project(h, view.keep, view.cuts).rebinned(view.rebin) for p, h in histograms.items()}
    simulation = project(outputs.simulation(view.histogram, stacked), view.keep, view.cuts).rebinned(view.rebin)
    total = simulation.nominal
    stat = np.sqrt(simulation.nominal_variance)
    up, down = simulation.band(outputs.systematics)
    edges, ticks = _bins(simulation.axes[0])
    data = low = high = None
    hidden: np.ndarray = np.zeros(len(total), dtype=bool)
    if outputs.has_data():
        h = outputs.histogram(DATA, view.histogram)
        counts = project(h, view.keep, view.cuts).rebinned(view.rebin).nominal
        hidden = blinded(h, view.keep, view.cuts, presentation.blind)
        if view.rebin:
            hidden = np.asarray(hidden.reshape(-1, view.rebin).any(axis=1))
        lo, hi = poisson_interval(counts)
        data, low, high = (np.where(hidden, np.nan, a).tolist() for a in (counts, lo, hi))
    axis = simulation.axes[0]
    xlabel = view.xlabel or axis.label or axis.name
    ylabel, per_width = events_label(xlabel, edges, ticks is not None)
    lines = (
        [
            SignalLine(
                p,
                signal.legend(presentation.labels[p]),
                presentation.colors[p],
                signal.scale,
                projections[p].nominal.tolist(),
            )
            for p in signals
        ]
        if signal and signal.line
        else []
    )
    return PlotData(
        name=view.name,
        histogram=view.histogram,
        axis=view.keep[0],
        title=view.title,
        edges=edges,
        tick_labels=ticks,
        processes=stacked,
        labels=[presentation.labels[p] for p in stacked],
        colors=[presentation.colors[p] for p in stacked],
        stack=[projections[p].nominal.tolist() for p in stacked],
        total=total.tolist(),
        stat_up=(total + stat).tolist(),
        stat_down=(total - stat).tolist(),
        syst_up=(total + up).tolist(),
        syst_down=(total - down).tolist(),
        data=data,
        data_low=low,
        data_high=high,
        blinded=hidden.tolist(),
        lumi_inv_pb=presentation.lumi_inv_pb,
        log=view.log,
        xlabel=xlabel,
        ylabel=view.ylabel or ylabel,
        per_width=per_width,
        lines=lines,
    )


def _bands(ax: Any, bands: list[Band], edges: np.ndarray, scale: np.ndarray, prefix: str) -> None:
    """The bands divided by `scale`; labelled in the main panel (no `prefix`) only."""
    for band in bands:
        look: dict[str, Any] = (
            {"fill": False, "hatch": "////", "color": "black", "linewidth": 0}
            if band.hatched
            else {"fill": True, "color": "tab:gray", "alpha": 0.35}
        )
        if not prefix:
            look["label"] = band.label
        up, down = np.asarray(band.up) / scale, np.asarray(band.down) / scale
        ax.stairs(up, edges, baseline=down, gid=prefix + band.gid, **look)


def _main_panel(ax: Any, d: PlotData, bands: list[Band], edges: np.ndarray, centres: np.ndarray) -> None:
    """The stack, its total with the uncertainty bands, the signal lines, the data (all divided by the bin
    widths when `d.per_width`), the y range and the legend."""
    widths = d.widths
    total = np.asarray(d.total) / widths
    baseline = np.zeros_like(total)
    for stacked, label, color in zip(d.stack, d.labels, d.colors):
        top = baseline + np.asarray(stacked) / widths
        ax.stairs(top, edges, baseline=baseline, fill=True, label=label, color=color, gid=f"stack:{label}")
        baseline = top
    ax.stairs(total, edges, color="black", linewidth=0.8, gid="total")
    _bands(ax, bands, edges, widths, "")
    heights = [np.asarray(band.up) / widths for band in bands]
    for line in d.lines:
        values = np.asarray(line.values) * line.scale / widths
        ax.stairs(values, edges, color=line.color, linewidth=2.5, label=line.label, gid=f"signal:{line.process}")
        heights.append(values)
    if d.data is not None:
        values = np.asarray(d.data, dtype=float) / widths
        low, high = np.asarray(d.data_low, dtype=float) / widths, np.asarray(d.data_high, dtype=float) / widths
        ax.errorbar(
            centres,
            values,
            yerr=[values - low, high - values],
            fmt="o",
            color="black",
            markersize=4,
            label="Data",
            gid="data",
        )
        heights.append(high)
    highest = float(np.nanmax([*(h for values in heights for h in values), 1e-3]))
    if d.log:  # room above the highest point for the legend and labels
        ax.set_yscale("log")
        positive = total[total > 0]
        low_end = max(positive.min() * 0.5, 1e-3) if positive.size else 0.1
        ax.set_ylim(low_end, highest * (highest / low_end) ** 0.6)
    else:
        ax.set_ylim(0, highest * 1.6)
    ax.set_ylabel(d.ylabel)
    ax.legend(ncol=2, fontsize="small", loc="upper right", title=d.title or None, title_fontsize="small")


def _ratio_panel(
    rax: Any, d: PlotData, bands: list[Band], edges: np.ndarray, centres: np.ndarray, total: np.ndarray
) -> None:
    """Data and the uncertainty bands divided by the total simulation (events, not per width: the same ratio)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(total > 0, total, np.nan)
        _bands(rax, bands, edges, scale, "ratio:")
        r = np.asarray(d.data, dtype=float) / scale
        rerr = [r - np.asarray(d.data_low, dtype=float) / scale, np.asarray(d.data_high, dtype=float) / scale - r]
    rax.errorbar(centres, r, yerr=rerr, fmt="o", color="black", markersize=4, gid="ratio:data")
    rax.axhline(1.0, color="black", linewidth=0.8)
    rax.set_ylim(0.5, 1.5)
    rax.set_ylabel("Data / MC")


def draw(d: PlotData, style: PlotStyleSpec, bands: list[Band] | None = None) -> Any:
    """The figure of one plot (matplotlib, mplhep style of the experiment, a `StyledFigure`); shown inline in
    Jupyter. `bands` about the total: the plot's statistical and systematic ones unless given (fits: their own)."""
    import matplotlib.style

    from framework.present.figure import experiment_label, new_figure

    fig = new_figure(style)
    with matplotlib.style.context(fig.style):
        ratio = style.ratio and d.data is not None and any(t > 0 for t in d.total)
        if ratio:
            ax, rax = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1], "hspace": 0.06})
        else:
            ax, rax = fig.subplots(), None
        edges = np.asarray(d.edges)
        centres = (edges[1:] + edges[:-1]) / 2
        bands = d.bands() if bands is None else bands
        _main_panel(ax, d, bands, edges, centres)
        experiment_label(ax, style, d.lumi_inv_pb, d.data is not None)
        bottom = rax if rax is not None else ax
        if rax is not None:
            _ratio_panel(rax, d, bands, edges, centres, np.asarray(d.total))
        bottom.set_xlabel(d.xlabel)
        bottom.set_xlim(edges[0], edges[-1])
        if d.tick_labels is not None:
            bottom.set_xticks(centres, d.tick_labels)
    return fig


def make_plots(outputs: RunOutputs, presentation: Presentation, style: PlotStyleSpec, folder: Path) -> list[PlotData]:
    """Every plot of the presentation: `<name>.<format>` images (PNG always, for the report) and
    `<name>.json` with the numbers drawn."""
    # mplhep's ATLAS font has no radical glyph: matplotlib logs one line per label otherwise
    logging.getLogger("matplotlib.mathtext").setLevel(logging.ERROR)

    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for view in presentation.views:
        d = plot_data(outputs, presentation, view)
        fig = draw(d, style)
        for fmt in dict.fromkeys(["png", *style.formats]):
            fig.savefig(folder / f"{d.name}.{fmt}", dpi=100 if fmt == "png" else None, bbox_inches="tight")
        (folder / f"{d.name}.json").write_text(d.to_json())
        made.append(d)
    return made
