"""Figures in an experiment's style, the same for every plot of the framework (stacked plots, fits,
tag and probe): mplhep's style applied in a context (`matplotlib.style.context`) while a figure is made
and again whenever it is drawn (saved, or shown later by a notebook), never with `plt.style.use`, so
matplotlib's global settings are the same after plotting as before; and mplhep's experiment label.

Figures are made without pyplot: nothing is registered, nothing needs closing, and a notebook shows
a figure it is given once.
"""

from __future__ import annotations

from typing import Any

import matplotlib.style
from matplotlib.figure import Figure

from framework.config.schema.presentation import PlotStyleSpec


def experiment_style(experiment: str) -> dict[str, Any]:
    """mplhep's style (rcParams) of an experiment; CMS's without one."""
    import mplhep

    return dict(mplhep.style.CMS if experiment in ("CMS", "none") else getattr(mplhep.style, experiment))


class StyledFigure(Figure):
    """A matplotlib figure made and drawn inside a style context (`matplotlib.style.context`): its look
    does not depend on, nor change, the global rcParams, wherever and whenever it is drawn."""

    def __init__(self, style: dict[str, Any], **kwargs: Any) -> None:
        with matplotlib.style.context(style):
            super().__init__(**kwargs)
        self.style = style

    def draw(self, renderer: Any) -> None:
        with matplotlib.style.context(self.style):
            super().draw(renderer)

    def get_tightbbox(self, renderer: Any = None, *args: Any, **kwargs: Any) -> Any:
        with matplotlib.style.context(self.style):
            return super().get_tightbbox(renderer, *args, **kwargs)


def new_figure(style: PlotStyleSpec, **kwargs: Any) -> StyledFigure:
    """An empty figure in the experiment's style (`kwargs` as for `matplotlib.figure.Figure`); make its axes
    and artists inside `matplotlib.style.context(fig.style)` so that they take the style too."""
    return StyledFigure(experiment_style(style.experiment), **kwargs)


def experiment_label(ax: Any, style: PlotStyleSpec, lumi_inv_pb: float | None, data: bool) -> None:
    """The experiment's label with luminosity and energy (mplhep), or only these without an experiment."""
    import mplhep

    lumi = lumi_inv_pb / 1000 if lumi_inv_pb else None
    if style.experiment == "none":
        ax.text(
            1.0, 1.01, f"{lumi:.3g} fb$^{{-1}}$ ({style.com:g} TeV)" if lumi else "", transform=ax.transAxes, ha="right"
        )
    else:
        # scilocator_adjust would measure the y axis' "x10^n" through pyplot's current axes (another figure's, or
        # a new one): the label stays where it is and that text goes to the left of the axis instead
        getattr(mplhep, style.experiment.lower()).label(
            style.text,
            ax=ax,
            data=data,
            lumi=float(f"{lumi:.3g}") if lumi else None,
            com=f"{style.com:g}",
            scilocator_adjust=False,
        )
    ax.yaxis.get_offset_text().set_horizontalalignment("right")
