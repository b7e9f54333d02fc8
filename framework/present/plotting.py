"""Stacked plots: simulation stacked by process, data with Poisson errors, ratio panel, uncertainty bands.

Each plot is first reduced to `PlotData` (plain numbers, written beside the image as JSON),
then drawn; what the JSON says is exactly what the figure shows.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
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


class Band(NamedTuple):
    """An uncertainty band about the total, drawn filled grey or hatched."""

    gid: str
    label: str
    up: list[float]
    down: list[float]
    hatched: bool


@dataclass
class PlotData:
    """What one plot draws, bin by bin."""

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
    histograms = {p: outputs.histogram(p, view.histogram) for p in processes}
    projections = {p: project(h, view.keep, view.cuts).rebinned(view.rebin) for p, h in histograms.items()}
    simulation = project(outputs.simulation(view.histogram, processes), view.keep, view.cuts).rebinned(view.rebin)
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
    return PlotData(
        name=view.name,
        histogram=view.histogram,
        axis=view.keep[0],
        title=view.title,
        edges=edges,
        tick_labels=ticks,
        processes=processes,
        labels=[presentation.labels[p] for p in processes],
        colors=[presentation.colors[p] for p in processes],
        stack=[projections[p].nominal.tolist() for p in processes],
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
        xlabel=view.xlabel or axis.label or axis.name,
        ylabel=view.ylabel or "Events",
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


def _main_panel(
    ax: Any, d: PlotData, bands: list[Band], edges: np.ndarray, centres: np.ndarray, total: np.ndarray
) -> None:
    """The stack, its total with the uncertainty bands, the data, the y range and the legend."""
    baseline = np.zeros_like(total)
    for stacked, label, color in zip(d.stack, d.labels, d.colors):
        top = baseline + np.asarray(stacked)
        ax.stairs(top, edges, baseline=baseline, fill=True, label=label, color=color, gid=f"stack:{label}")
        baseline = top
    ax.stairs(total, edges, color="black", linewidth=0.8, gid="total")
    _bands(ax, bands, edges, np.ones_like(total), "")
    if d.data is not None:
        values = np.asarray(d.data, dtype=float)
        errors = [values - np.asarray(d.data_low, dtype=float), np.asarray(d.data_high, dtype=float) - values]
        ax.errorbar(centres, values, yerr=errors, fmt="o", color="black", markersize=4, label="Data", gid="data")
    highest = float(np.nanmax([*(u for band in bands for u in band.up), *(d.data_high or []), 1e-3]))
    if d.log:  # room above the highest point for the legend and labels
        ax.set_yscale("log")
        positive = total[total > 0]
        low = max(positive.min() * 0.5, 1e-3) if positive.size else 0.1
        ax.set_ylim(low, highest * (highest / low) ** 0.6)
    else:
        ax.set_ylim(0, highest * 1.6)
    ax.set_ylabel(d.ylabel)
    ax.legend(ncol=2, fontsize="small", loc="upper right", title=d.title or None, title_fontsize="small")


def _experiment_label(ax: Any, d: PlotData, style: PlotStyleSpec) -> None:
    """The experiment's label with luminosity and energy, or only these without an experiment."""
    import mplhep

    lumi = d.lumi_inv_pb / 1000 if d.lumi_inv_pb else None
    if style.experiment == "none":
        ax.text(
            1.0, 1.01, f"{lumi:.3g} fb$^{{-1}}$ ({style.com:g} TeV)" if lumi else "", transform=ax.transAxes, ha="right"
        )
    else:
        getattr(mplhep, style.experiment.lower()).label(
            style.text,
            ax=ax,
            data=d.data is not None,
            lumi=float(f"{lumi:.3g}") if lumi else None,
            com=f"{style.com:g}",
        )


def _ratio_panel(
    rax: Any, d: PlotData, bands: list[Band], edges: np.ndarray, centres: np.ndarray, total: np.ndarray
) -> None:
    """Data and the uncertainty bands divided by the total simulation."""
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
    """The figure of one plot (matplotlib, mplhep style of the experiment); shown inline in Jupyter.
    `bands` about the total: the plot's statistical and systematic ones unless given (fits: their own)."""
    import matplotlib.pyplot as plt
    import mplhep

    plt.style.use(mplhep.style.CMS if style.experiment in ("CMS", "none") else getattr(mplhep.style, style.experiment))
    ratio = style.ratio and d.data is not None and any(t > 0 for t in d.total)
    if ratio:
        fig, (ax, rax) = plt.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1], "hspace": 0.06})
    else:
        fig, ax = plt.subplots()
        rax = None
    edges = np.asarray(d.edges)
    centres = (edges[1:] + edges[:-1]) / 2
    total = np.asarray(d.total)
    bands = d.bands() if bands is None else bands
    _main_panel(ax, d, bands, edges, centres, total)
    _experiment_label(ax, d, style)
    bottom = rax if rax is not None else ax
    if rax is not None:
        _ratio_panel(rax, d, bands, edges, centres, total)
    bottom.set_xlabel(d.xlabel)
    bottom.set_xlim(edges[0], edges[-1])
    if d.tick_labels is not None:
        bottom.set_xticks(centres, d.tick_labels)
    return fig


def make_plots(outputs: RunOutputs, presentation: Presentation, style: PlotStyleSpec, folder: Path) -> list[PlotData]:
    """Every plot of the presentation: `<name>.<format>` images (PNG always, for the report) and
    `<name>.json` with the numbers drawn."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no window
    import matplotlib.pyplot as plt

    # mplhep's ATLAS font has no radical glyph: matplotlib logs one line per label otherwise
    logging.getLogger("matplotlib.mathtext").setLevel(logging.ERROR)

    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for view in presentation.views:
        d = plot_data(outputs, presentation, view)
        fig = draw(d, style)
        for fmt in dict.fromkeys(["png", *style.formats]):
            fig.savefig(folder / f"{d.name}.{fmt}", dpi=100 if fmt == "png" else None, bbox_inches="tight")
        plt.close(fig)
        (folder / f"{d.name}.json").write_text(d.to_json())
        made.append(d)
    return made
