"""Plots of a tag-and-probe measurement: one fit (pass and fail side by side), and the summary
of an efficiency (data, simulation and their ratio against the last binning variable).

They look like the analysis' other plots: the experiment's mplhep style (in a context, see
`framework.present.figure`) and its label with the luminosity of the data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from framework.config.schema.presentation import PlotStyleSpec
from framework.extensions.tnp.fitting import Efficiency
from framework.extensions.tnp.measure import Measurement, Task, bin_label


def fit_figure(task: Task, result: Efficiency, title: str, style: PlotStyleSpec, lumi_inv_pb: float | None) -> Any:
    """The fit of one probe bin: the passing and the failing probes with the fitted signal and background."""
    import matplotlib.style

    from framework.present.figure import experiment_label, new_figure

    fig = new_figure(style, figsize=(20, 10))
    with matplotlib.style.context(fig.style):
        axes = fig.subplots(1, 2)
        fig.subplots_adjust(top=0.85, wspace=0.3)  # before the labels, which are placed in axes coordinates
        edges = task.data.edges
        centres = 0.5 * (edges[1:] + edges[:-1])
        for ax, label, observed in zip(axes, ("pass", "fail"), (task.data.passed, task.data.failed)):
            ax.errorbar(
                centres,
                observed,
                yerr=np.sqrt(observed),
                fmt="o",
                color="black",
                markersize=4,
                label="Data",
                gid="data",
            )
            if result.curves:
                signal = np.asarray(result.curves[f"signal_{label}"])
                background = np.asarray(result.curves[f"background_{label}"])
                ax.stairs(signal + background, edges, color="tab:blue", linewidth=2, label="Fit", gid="fit")
                ax.stairs(signal, edges, color="tab:green", linestyle="--", linewidth=2, label="Signal", gid="signal")
                ax.stairs(background, edges, color="tab:red", linestyle=":", linewidth=2, label="Background")
            ax.set_xlabel("tag-probe mass [GeV]")
            ax.set_ylabel(f"Events / {edges[1] - edges[0]:.3g} GeV")
            ax.set_ylim(0, max(float(np.max(observed + np.sqrt(observed), initial=0.0)), 1.0) * 1.5)
            ax.legend(title=f"{label}ing probes", fontsize="small", title_fontsize="small", loc="upper right")
            experiment_label(ax, style, lumi_inv_pb, data=True)
        status = "" if result.converged else "  NOT CONVERGED"
        fig.suptitle(
            f"{title}: $\\varepsilon$ = {result.value:.4f} $-${result.error_low:.4f} +{result.error_high:.4f}, "
            f"$\\chi^2$/ndf = {result.chi2_ndf:.2f}{status}",
            fontsize="small",
        )
    return fig


def summary_figure(m: Measurement, eff: str, style: PlotStyleSpec, lumi_inv_pb: float | None) -> Any:
    """Efficiency in data and simulation and the scale factor against the last binning variable,
    one colour per bin of the others."""
    import matplotlib.style

    from framework.present.figure import experiment_label, new_figure

    names = list(m.tnp.binning)
    edges = np.asarray(m.tnp.binning[names[-1]].edges)
    centres = 0.5 * (edges[1:] + edges[:-1])
    s = m.scale_factor(eff)
    fig = new_figure(style)
    with matplotlib.style.context(fig.style):
        ax, rax = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [2, 1], "hspace": 0.06})
        for j, outer in enumerate(np.ndindex(*m.shape[:-1])):
            color = f"C{j}"
            label = bin_label(m.tnp, outer + (0,)).rsplit(",", 1)[0] if len(names) > 1 else ""
            for kind, marker in (("data", "o"), ("mc", "s")):
                values = m.values(kind, eff, "nominal")[outer]
                low, high = (e[outer] for e in m.errors(kind, eff, "nominal"))
                ax.errorbar(
                    centres,
                    values,
                    yerr=[low, high],
                    fmt=marker,
                    color=color,
                    mfc="none" if kind == "mc" else color,
                    label=f"{'Data' if kind == 'data' else 'Simulation'} {label}".strip(),
                    markersize=6,
                    gid=f"{kind}:{j}",
                )
            total = np.sqrt(s["stat"][outer] ** 2 + s["syst"][outer] ** 2)
            rax.errorbar(centres, s["sf"][outer], yerr=total, fmt="o", color=color, markersize=6, gid=f"sf:{j}")
        ax.set_ylabel("Efficiency")
        lowest = min(float(np.nanmin([m.values(k, eff, "nominal") for k in ("data", "mc")], initial=1.0)), 1.0)
        ax.set_ylim(lowest - 0.1, 1.0 + 0.9 * (1.1 - lowest))  # room for the legend
        ax.legend(title=eff, fontsize="xx-small", title_fontsize="x-small", ncol=2, loc="upper right")
        experiment_label(ax, style, lumi_inv_pb, data=True)
        rax.axhline(1.0, color="black", linewidth=0.8)
        rax.set_ylabel("Data / sim.")
        rax.set_xlabel(m.tnp.binning[names[-1]].label or names[-1])
        rax.set_xlim(edges[0], edges[-1])
    return fig


def plot_fit(task: Task, result: Efficiency, title: str, path: Path, style: PlotStyleSpec, lumi: float | None) -> None:
    fig = fit_figure(task, result, title, style, lumi)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=50)


def plot_summary(m: Measurement, eff: str, path: Path, style: PlotStyleSpec, lumi: float | None) -> None:
    fig = summary_figure(m, eff, style, lumi)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=72, bbox_inches="tight")
