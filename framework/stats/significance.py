"""Discovery significance of a signal in a window of one histogram (`significance:`), through the same
statistical model as `run-analysis fit`: the window is a one-channel model (stats/model.py) with the
analysis's systematics entering as `model:` says (shape by default), its global normalisation
uncertainties and MC statistics, fitted with pyhf (q0, asymptotic). The statistics-only numbers
(no nuisance parameter: the background taken as known) are kept next to them for comparison.

Observed: the run's data in the window (none where it is blinded); expected: the Asimov data set
of mu = 1.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from framework.present.results import RunOutputs
from framework.present.views import Presentation
from framework.stats.declare import ModelPlan
from framework.stats.fit import best_fit_mu, significance
from framework.stats.model import build_model
from framework.stats.workspace import workspace


@dataclass(frozen=True)
class Significance:
    name: str
    signal: float
    background: float
    observed: float | None  # None without data or where it is blinded
    expected_z: float
    observed_z: float | None
    expected_z_stat_only: float
    observed_z_stat_only: float | None
    mu_hat: float | None
    systematics: tuple[str, ...]  # nuisance parameters of the model (besides MC statistics)
    missing: tuple[str, ...]  # systematics the model declares but the outputs lack (run without them)


def _significance(outputs: RunOutputs, presentation: Presentation, plan: ModelPlan) -> Significance:
    missing = tuple(n for n, t in plan.treatments.items() if t != "drop" and n not in outputs.systematics)
    plan = replace(plan, treatments={n: ("drop" if n in missing else t) for n, t in plan.treatments.items()})
    model = build_model(outputs, presentation, plan)
    (channel,) = model.channels
    spec, stat_only = workspace(model), workspace(model.without_systematics())
    z_obs, z_exp = significance(spec)
    z_obs_stat, z_exp_stat = significance(stat_only)
    observed = not channel.asimov
    names = sorted(
        {n.name for s in channel.samples for n in s.norms} | {h.name for s in channel.samples for h in s.shapes}
    )
    return Significance(
        name=channel.name,
        signal=sum(s.rate for s in channel.samples if s.signal),
        background=sum(s.rate for s in channel.samples if not s.signal),
        observed=float(channel.data.sum()) if observed else None,
        expected_z=z_exp,
        observed_z=z_obs if observed else None,
        expected_z_stat_only=z_exp_stat,
        observed_z_stat_only=z_obs_stat if observed else None,
        mu_hat=best_fit_mu(spec) if observed else None,
        systematics=tuple(names),
        missing=missing,
    )


def significances(outputs: RunOutputs, presentation: Presentation, plans: list[ModelPlan]) -> list[Significance]:
    """One per `significance:` entry, from its one-channel model (stats/declare.py significance_plans)."""
    return [_significance(outputs, presentation, plan) for plan in plans]
