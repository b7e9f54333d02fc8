"""The result of a fit (`run-analysis fit`, `Analysis.fit`) as an object: the numbers of `fit.json` as
typed attributes, and in Jupyter a display with the summary, the pulls plot, the impacts and the yields.

    result = analysis.fit("OUT")              # or FitResult.load("OUT/fit")
    result                                     # tables and the pulls plot
    result.mu, result.mu_err, result.z_obs     # floats
    [p.parameter for p in result.pulls if abs(p.pull) > 1]
"""

from __future__ import annotations

import base64
import html
import json
import tempfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from framework.errors import InputError
from framework.present.fit_report import FIT_RESULT, draw_pulls, fit_tables
from framework.present.tables import Table


@dataclass(frozen=True)
class Pull:
    """A nuisance parameter after the fit: (fitted - nominal) / pre-fit sigma, post-fit / pre-fit sigma."""

    parameter: str
    type: str  # its pyhf modifier: normsys, histosys, shapesys, staterror, ...
    value: float
    pull: float
    constraint: float


@dataclass(frozen=True)
class Impact:
    """The shift of mu when a nuisance parameter is fixed at its fitted value +1 (up) or -1 (down) sigma."""

    parameter: str
    up: float
    down: float


@dataclass(frozen=True)
class FitResult:
    """The numbers of `folder/fit.json`; pulls in the fit's parameter order, impacts largest first."""

    folder: Path
    mu: float
    mu_err: float  # mean of the profile likelihood's down and up uncertainties
    mu_err_down: float
    mu_err_up: float
    mu_err_hesse: float  # from MINUIT's Hesse matrix
    hesse_reliable: bool  # it agrees with the profile likelihood on mu (the constraints and impacts use it)
    z_obs: float
    z_exp: float
    z_obs_stat_only: float
    z_exp_stat_only: float
    cls_limit_obs: float
    cls_limit_exp: float
    cls_limit_exp_band: list[float]  # expected limits at -2, -1, 0, +1, +2 sigma
    pulls: list[Pull]
    impacts: list[Impact]
    yields: dict[str, dict[str, Any]]  # prefit and postfit {channel: {sample: yield}}, data {channel: yield}
    asimov_channels: list[str]  # channels fitted to Asimov data instead of the observed
    # per channel: edges, data, per-bin yields of every sample and the total's uncertainty, pre- and post-fit
    distributions: dict[str, dict[str, Any]]
    one_sided_mirrored: list[str]  # one-sided systematics whose Down template is the mirror 2 nominal - Up

    @classmethod
    def from_dict(cls, data: dict[str, Any], folder: str | Path) -> FitResult:
        """From the contents of `fit.json` (keys it does not know are left out)."""
        plain = {f.name for f in fields(cls)} - {"folder", "pulls", "impacts"}
        return cls(
            folder=Path(folder),
            pulls=[Pull(**p) for p in data["pulls"]],
            impacts=[Impact(**i) for i in data["impacts"]],
            **{name: data[name] for name in plain},
        )

    @classmethod
    def load(cls, folder: str | Path) -> FitResult:
        """The result `run-analysis fit` (or `Analysis.fit`) wrote into `folder`."""
        path = Path(folder) / FIT_RESULT
        if not path.is_file():
            raise InputError(f"no fit result {path}", hint="make it with 'run-analysis fit' or Analysis.fit")
        try:
            return cls.from_dict(json.loads(path.read_text()), folder)
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise InputError(
                f"unreadable fit result {path}: {type(err).__name__} {err}",
                hint="an older or damaged file: make it again with 'run-analysis fit' or Analysis.fit",
            ) from None

    def to_dict(self) -> dict[str, Any]:
        """As in `fit.json`."""
        data = asdict(self)
        del data["folder"]
        return data

    def __repr__(self) -> str:
        return (
            f"mu = {self.mu:.3f} -{self.mu_err_down:.3f}/+{self.mu_err_up:.3f}, "
            f"Z = {self.z_obs:.2f} (exp {self.z_exp:.2f}), "
            f"CLs 95% limit on mu {self.cls_limit_obs:.3f} (exp {self.cls_limit_exp:.3f})"
        )

    def _pulls_png(self) -> bytes:
        # draw_pulls leaves matplotlib's backend alone: the kernel's own (inline) keeps showing later plots
        with tempfile.TemporaryDirectory(prefix="rdf-analysis-pulls-") as folder:
            return draw_pulls(self.to_dict(), Path(folder) / "pulls.png").read_bytes()

    def _repr_html_(self) -> str:
        summary, pulls, *others = fit_tables(self.to_dict())  # others: impacts, yields
        image = base64.b64encode(self._pulls_png()).decode("ascii")
        plot = f"<img src='data:image/png;base64,{image}' alt='pulls of the nuisance parameters'>"
        return (
            f"<div><b>Fit</b> <code>{html.escape(str(self.folder / FIT_RESULT))}</code>"
            + _titled(summary)
            + _titled(pulls, plot)
            + "".join(_titled(t) for t in others)
            + "</div>"
        )


def _titled(table: Table, figure: str = "") -> str:
    """The table under its title, with a figure (HTML) between them."""
    return f"<h4>{html.escape(table.title)}</h4>{figure}{table.html()}"
