"""Plots of a tag-and-probe measurement: one fit (pass and fail side by side), and the summary
of an efficiency (data, simulation and their ratio against the last binning variable)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from framework.extensions.tnp.fitting import Efficiency
from framework.extensions.tnp.measure import Measurement, Task, bin_label


def plot_fit(task: Task, result: Efficiency, title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=False)
    edges = task.data.edges
    centres = 0.5 * (edges[1:] + edges[:-1])
    for ax, label, observed in zip(axes, ("pass", "fail"), (task.data.passed, task.data.failed)):
        ax.errorbar(centres, observed, yerr=np.sqrt(observed), fmt="o", color="black", markersize=3, label="data")
        if result.curves:
            signal = np.asarray(result.curves[f"signal_{label}"])
            background = np.asarray(result.curves[f"background_{label}"])
            ax.stairs(signal + background, edges, color="tab:blue", label="fit")
            ax.stairs(signal, edges, color="tab:green", linestyle="--", label="signal")
            ax.stairs(background, edges, color="tab:red", linestyle=":", label="background")
        ax.set_title(f"{label}ing probes", fontsize="medium")
        ax.set_xlabel("tag-probe mass [GeV]")
        ax.legend(fontsize="small")
    status = "" if result.converged else "  NOT CONVERGED"
    fig.suptitle(
        f"{title}\n e = {result.value:.4f} -{result.error_low:.4f} +{result.error_high:.4f},"
        f" chi2/ndf = {result.chi2_ndf:.2f}{status}",
        fontsize="medium",
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def plot_summary(m: Measurement, eff: str, path: Path) -> None:
    """Efficiency in data and simulation and the scale factor against the last binning variable,
    one line per bin of the others."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(m.tnp.binning)
    edges = np.asarray(m.tnp.binning[names[-1]].edges)
    centres = 0.5 * (edges[1:] + edges[:-1])
    s = m.scale_factor(eff)
    fig, (ax, rax) = plt.subplots(2, 1, sharex=True, figsize=(7, 7), gridspec_kw={"height_ratios": [2, 1]})
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
                label=f"{kind} {label}",
                markersize=4,
            )
        total = np.sqrt(s["stat"][outer] ** 2 + s["syst"][outer] ** 2)
        rax.errorbar(centres, s["sf"][outer], yerr=total, fmt="o", color=color, markersize=4)
    ax.set_ylabel("efficiency")
    ax.set_title(eff)
    ax.legend(fontsize="x-small", ncol=2)
    rax.set_ylabel("data / simulation")
    rax.set_xlabel(m.tnp.binning[names[-1]].label or names[-1])
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
