"""The report page's "Fit" section: the numbers of `fit.json` (`run-analysis fit`) as tables (summary,
pulls and constraints, impact ranking, pre- and post-fit yields), written as every other table, the
pulls plot, and per channel the pre- and post-fit stacked plots with the total's uncertainty band."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from framework.present.plotting import Band, PlotData, draw, events_label
from framework.present.tables import Cell, Table
from framework.present.views import PALETTE, Presentation

if TYPE_CHECKING:
    from framework.config.schema.presentation import PlotStyleSpec

FIT_RESULT = "fit.json"  # as framework.stats.commands.FIT, without importing pyhf's side
STAGES = {"prefit": "pre-fit", "postfit": "post-fit"}


def load_fit(folder: Path) -> dict[str, Any] | None:
    """`folder/fit.json`, or None where there is none."""
    path = folder / FIT_RESULT
    return json.loads(path.read_text()) if path.is_file() else None


def summary_table(result: dict[str, Any]) -> Table:
    rows: list[list[Cell]] = [
        ["mu with its uncertainty", f"{result['mu']:.3f} -{result['mu_err_down']:.3f}/+{result['mu_err_up']:.3f}"],
        ["signal strength mu", result["mu"]],
        ["uncertainty on mu (profile likelihood, mean of down and up)", result["mu_err"]],
        ["uncertainty on mu, down", result["mu_err_down"]],
        ["uncertainty on mu, up", result["mu_err_up"]],
        ["uncertainty on mu from MINUIT's Hesse matrix", result["mu_err_hesse"]],
        ["observed significance Z", result["z_obs"]],
        ["expected significance Z", result["z_exp"]],
        ["observed significance Z, statistics only", result["z_obs_stat_only"]],
        ["expected significance Z, statistics only", result["z_exp_stat_only"]],
        ["observed CLs 95% upper limit on mu", result["cls_limit_obs"]],
        ["expected CLs 95% upper limit on mu", result["cls_limit_exp"]],
        *[
            [f"expected CLs 95% upper limit on mu, {band} sigma", value]
            for band, value in zip(
                ("-2", "-1", "+1", "+2"), [*result["cls_limit_exp_band"][:2], *result["cls_limit_exp_band"][3:]]
            )
        ],
    ]
    asimov = result.get("asimov_channels") or []
    note = "Asymptotic: significance from q0, upper limits from qtilde (median expected, background only)."
    if asimov:
        note += f" Channels fitted to Asimov data (blinded): {', '.join(asimov)}."
    if not result["hesse_reliable"]:
        note += (
            " MINUIT's Hesse matrix disagrees with the profile likelihood on mu's uncertainty by more than 20%:"
            " the constraints, impacts and post-fit band computed from it are unreliable."
        )
    return Table("fit_summary", "Fit result", ["quantity", "value"], rows, note)


def pulls_table(result: dict[str, Any]) -> Table:
    rows: list[list[Cell]] = [
        [p["parameter"], p["type"], p["value"], p["pull"], p["constraint"]] for p in result["pulls"]
    ]
    return Table(
        "fit_pulls",
        "Pulls and constraints of the nuisance parameters",
        ["parameter", "type", "fitted value", "pull", "constraint"],
        rows,
        "Pull: (fitted - nominal) / pre-fit sigma; constraint: post-fit sigma / pre-fit sigma.",
    )


def impacts_table(result: dict[str, Any]) -> Table:
    rows: list[list[Cell]] = [[i["parameter"], i["up"], i["down"]] for i in result["impacts"]]
    return Table(
        "fit_impacts",
        "Impact of the nuisance parameters on mu",
        ["parameter", "shift of mu (+1 sigma)", "shift of mu (-1 sigma)"],
        rows,
        "Refits with each parameter fixed at its fitted value +- its post-fit uncertainty; largest first.",
    )


def yields_table(result: dict[str, Any]) -> Table:
    prefit, postfit = result["yields"]["prefit"], result["yields"]["postfit"]
    data = result["yields"].get("data", {})
    rows: list[list[Cell]] = []
    for channel, samples in prefit.items():
        for sample, value in samples.items():
            rows.append([channel, sample, value, postfit[channel][sample]])
        rows.append([channel, "total", sum(samples.values()), sum(postfit[channel].values())])
        if channel in data:
            rows.append([channel, "data", data[channel], data[channel]])
    return Table(
        "fit_yields",
        "Pre-fit and post-fit yields per channel",
        ["channel", "sample", "pre-fit", "post-fit"],
        rows,
        "Expected yields at the nominal parameters (mu = 1) and at the best fit; data as fitted.",
    )


def fit_tables(result: dict[str, Any]) -> list[Table]:
    return [summary_table(result), pulls_table(result), impacts_table(result), yields_table(result)]


def missing_fit_html(folder: Path, config: Path, run_output: Path, stale: bool = False) -> str:
    """The Fit section's text when the configuration has a model but no (readable) fit result is there."""
    command = f"run-analysis fit {config} -i {run_output} -o {folder}"
    found = "An unreadable (older)" if stale else "No"
    return (
        f"<p>{found} fit result in {html.escape(str(folder))}. Make it with <code>{html.escape(command)}</code> "
        "and make this page again.</p>"
    )


def draw_pulls(result: dict[str, Any], path: Path) -> Path:
    """The pulls plot: per nuisance parameter, its pull with the constraint as error bar, and the
    bands of one and two pre-fit sigma; `path` (png). A figure of its own, not pyplot's: no backend is chosen
    or changed (a notebook keeps its inline one)."""
    from matplotlib.figure import Figure

    pulls = result["pulls"]
    y = list(range(len(pulls)))[::-1]
    fig = Figure(figsize=(6, 1.0 + 0.3 * max(len(pulls), 1)))
    ax = fig.subplots()
    ax.axvspan(-2, 2, color="#fff3b0")
    ax.axvspan(-1, 1, color="#b7e4b0")
    ax.axvline(0, color="grey", lw=0.8)
    ax.errorbar([p["pull"] for p in pulls], y, xerr=[p["constraint"] for p in pulls], fmt="ko", capsize=2)
    ax.set_yticks(y, [p["parameter"] for p in pulls])
    ax.set_xlabel("(fitted - nominal) / pre-fit sigma")
    ax.set_xlim(-3, 3)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    return path


class DistributionPlot(NamedTuple):
    channel: str
    stage: str  # prefit or postfit
    image: str  # png, relative to the report page

    @property
    def caption(self) -> str:
        return f"{self.channel}, {STAGES[self.stage]}"


def distribution_plots(result: dict[str, Any], folder: str) -> list[DistributionPlot]:
    """The pre- and post-fit plot of every channel of `fit.json`, in `folder`."""
    return [
        DistributionPlot(channel, stage, f"{folder}/fit_{channel}_{stage}.png")
        for channel in result["distributions"]
        for stage in STAGES
    ]


def distribution_plot(
    result: dict[str, Any], channel: str, stage: str, presentation: Presentation
) -> tuple[PlotData, Band]:
    """One channel at one stage: the samples stacked (backgrounds in the order of the other plots, signal on
    top), the data with sqrt(n) errors (none where the fit saw Asimov data), the total's uncertainty band."""
    d = result["distributions"][channel]
    order = {p: i for i, p in enumerate(presentation.processes)}
    samples = sorted(d[stage], key=lambda s: (s in d["signal"], order.get(s, len(order))))
    stack = [d[stage][s] for s in samples]
    total = np.sum(stack, axis=0)
    up, down = (total + d[f"{stage}_uncertainty"]).tolist(), (total - d[f"{stage}_uncertainty"]).tolist()
    data = None if channel in result.get("asimov_channels", []) else np.asarray(d["data"])
    ylabel, per_width = events_label(d["label"], d["edges"], categorical=False)
    title = f"{channel}, {STAGES[stage]}" + (f", $\\mu$ = {result['mu']:.2f}" if stage == "postfit" else "")
    plot = PlotData(
        name=f"fit_{channel}_{stage}",
        histogram=channel,
        axis=d["observable"],
        title=title,
        edges=d["edges"],
        tick_labels=None,
        processes=samples,
        labels=[presentation.labels.get(s, s) for s in samples],
        colors=[presentation.colors.get(s, PALETTE[i % len(PALETTE)]) for i, s in enumerate(samples)],
        stack=stack,
        total=total.tolist(),
        stat_up=total.tolist(),  # no band of its own: the fit's covers the simulation's statistics (staterror)
        stat_down=total.tolist(),
        syst_up=up,
        syst_down=down,
        data=None if data is None else data.tolist(),
        data_low=None if data is None else (data - np.sqrt(data)).tolist(),
        data_high=None if data is None else (data + np.sqrt(data)).tolist(),
        blinded=[False] * len(total),
        lumi_inv_pb=presentation.lumi_inv_pb,
        log=False,
        xlabel=d["label"],
        ylabel=ylabel,
        per_width=per_width,
    )
    return plot, Band("fit", f"{STAGES[stage].capitalize()} unc.", up, down, hatched=True)


def draw_distribution(
    result: dict[str, Any], which: DistributionPlot, presentation: Presentation, style: PlotStyleSpec, folder: Path
) -> Path:
    """The pre- or post-fit plot of one channel: `folder/which.image`."""
    plot, band = distribution_plot(result, which.channel, which.stage, presentation)
    path = folder / which.image
    fig = draw(plot, style, [band])
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    return path
