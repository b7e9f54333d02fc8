"""Fits of a pyhf workspace (numpy backend, MINUIT): best-fit mu and its uncertainty, discovery
significance (q0, observed and expected), CLs 95% upper limits (qtilde, observed and expected),
pulls and constraints of the nuisance parameters, impacts on mu (refits with each nuisance
parameter fixed at its fitted value +- its uncertainty), pre- and post-fit yields, and per channel
and bin the yields of every sample pre- and post-fit with the uncertainty of their total (linear
propagation of the parameters' pre-fit widths or post-fit covariance). Statistics only: the same
channels without any nuisance parameter."""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import optimize

from framework.errors import ExecutionError
from framework.stats.limits import Limits
from framework.stats.minimise import SMOOTH, pyhf_session, robustly, twice_nll

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from framework.stats.model import Channel

HESSE_AGREEMENT = 0.2  # relative difference of MINUIT's Hesse error on mu and the profile likelihood's, beyond which
# the Hesse matrix (constraints, impacts, post-fit band) is reported as unreliable
RANKED = ("normsys", "histosys", "shapesys")  # nuisance parameters ranked by impact (not the per-bin staterrors)
STEP = 1e-3  # of a parameter's uncertainty: central differences of the expected yields, exact to ~1e-7 relative


def _parameters(model: Any) -> list[tuple[str, int, str]]:
    """(label, index in the parameter vector, modifier type) for every nuisance parameter."""
    found = []
    for name in model.config.par_order:
        if name == model.config.poi_name:
            continue
        kind = next(m[1] for m in model.config.modifiers if m[0] == name)
        sl = model.config.par_slice(name)
        width = sl.stop - sl.start
        for i in range(width):
            found.append((name if width == 1 else f"{name}[{i}]", sl.start + i, kind))
    return found


def _significance(pyhf: Any, data: Any, model: Any) -> tuple[float, float]:
    """Observed and expected (Asimov, mu = 1) discovery significance sqrt(q0), from the test statistic
    itself: its p-value underflows beyond about 8 sigma."""

    def compute() -> tuple[float, float]:
        calculator = pyhf.infer.calculators.AsymptoticCalculator(data, model, test_stat="q0")
        observed = calculator.teststatistic(0.0)  # sqrt(q0) - sqrt(q0 of the Asimov data)
        return float(observed + calculator.sqrtqmuA_v), float(calculator.sqrtqmuA_v)

    return robustly(pyhf, model, compute)


def _widths(model: Any) -> np.ndarray:
    """Per parameter, the width of its constraint term (its pre-fit sigma); 0 where unconstrained (mu)."""
    widths = np.zeros(len(model.config.suggested_init()))
    for name in model.config.par_order:
        param_set = model.config.param_set(name)
        if param_set.constrained:
            widths[model.config.par_slice(name)] = param_set.width()
    return widths


def _per_bin(model: Any, pars: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
    """Channel -> sample -> expected yield per bin."""
    by_sample = np.asarray(model.main_model.expected_data(pars, return_by_sample=True))
    return {
        c: {s: by_sample[i, model.config.channel_slices[c]] for i, s in enumerate(model.config.samples)}
        for c in model.config.channels
    }


def _total_sigma(model: Any, pars: np.ndarray, sigmas: np.ndarray, correlations: np.ndarray) -> np.ndarray:
    """Per bin (all channels), the standard deviation of the total expected yield at `pars`, propagated
    linearly: J C J^T with C = correlations * outer(sigmas, sigmas), the derivatives J by central differences."""
    scaled = np.zeros((len(model.main_model.expected_data(pars)), len(pars)))  # J * sigmas, bins x parameters
    for i in np.flatnonzero(sigmas):
        shift = np.zeros_like(pars)
        shift[i] = STEP * sigmas[i]
        up, down = model.main_model.expected_data(pars + shift), model.main_model.expected_data(pars - shift)
        scaled[:, i] = (np.asarray(up) - np.asarray(down)) / (2 * STEP)
    return np.sqrt(np.einsum("bi,ij,bj->b", scaled, correlations, scaled))


def _distributions(
    model: Any,
    observed: np.ndarray,
    best: np.ndarray,
    errors: np.ndarray,
    correlations: np.ndarray,
    channels: Sequence[Channel],
) -> dict[str, dict[str, Any]]:
    """Per channel and bin: the data, every sample's yield pre-fit (nominal parameters, mu = 1) and post-fit,
    and the total's uncertainty: pre-fit from the constraints' widths (uncorrelated; mu none), post-fit from
    the fit's covariance. Edges and observables from `channels` (the StatModel's), else bin numbers."""
    nominal = np.asarray(model.config.suggested_init(), dtype=float)
    prefit_sigmas = np.where(model.config.suggested_fixed(), 0.0, _widths(model))
    stages = {"prefit": (nominal, prefit_sigmas, np.eye(len(nominal))), "postfit": (best, errors, correlations)}
    yields = {stage: _per_bin(model, pars) for stage, (pars, _, _) in stages.items()}
    sigmas = {stage: _total_sigma(model, *parameters) for stage, parameters in stages.items()}
    poi = ("normfactor", model.config.poi_name)
    signal = sorted(
        {
            s["name"]
            for c in model.spec["channels"]
            for s in c["samples"]
            for m in s["modifiers"]
            if (m["type"], m["name"]) == poi
        }
    )
    binning = {c.name: c for c in channels}
    found = {}
    for c, bins in model.config.channel_slices.items():
        known = binning.get(c)
        found[c] = {
            "observable": known.observable if known else "bin",
            "label": known.label if known else "bin",
            "edges": known.edges.tolist() if known else list(range(bins.stop - bins.start + 1)),
            "signal": signal,  # stacked on top
            "data": observed[bins].tolist(),
        }
        for stage in stages:
            found[c][stage] = {s: y.tolist() for s, y in yields[stage][c].items()}
            found[c][f"{stage}_uncertainty"] = sigmas[stage][bins].tolist()
    return found


def _summed(distributions: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Per channel, the pre- and post-fit yield of every sample and the data: the sums of the distributions."""
    summed = {
        stage: {c: {s: float(np.sum(y)) for s, y in d[stage].items()} for c, d in distributions.items()}
        for stage in ("prefit", "postfit")
    }
    return {**summed, "data": {c: float(np.sum(d["data"])) for c, d in distributions.items()}}


def _impacts(pyhf: Any, data: Any, model: Any, best: np.ndarray, errors: np.ndarray) -> list[dict[str, Any]]:
    poi = model.config.poi_index
    found = []
    for label, index, kind in _parameters(model):
        if kind not in RANKED:
            continue
        shifts = []
        for sign in (1.0, -1.0):
            init = best.copy()
            init[index] = best[index] + sign * errors[index]
            fixed = list(model.config.suggested_fixed())
            fixed[index] = True
            refit = pyhf.infer.mle.fit(data, model, init_pars=init.tolist(), fixed_params=fixed)
            shifts.append(float(refit[poi] - best[poi]))
        found.append({"parameter": label, "up": shifts[0], "down": shifts[1]})
    return sorted(found, key=lambda i: -max(abs(i["up"]), abs(i["down"])))


def _pulls(model: Any, best: np.ndarray, errors: np.ndarray) -> list[dict[str, Any]]:
    """(fitted - nominal) / pre-fit sigma, and post-fit sigma / pre-fit sigma."""
    init = np.asarray(model.config.suggested_init())
    widths = _widths(model)
    found = []
    for label, index, kind in _parameters(model):
        sigma = float(widths[index]) or 1.0  # a free normalisation: its shift itself
        found.append(
            {
                "parameter": label,
                "type": kind,
                "value": float(best[index]),
                "pull": float((best[index] - init[index]) / sigma),
                "constraint": float(errors[index] / sigma),
            }
        )
    return found


def _profile_interval(pyhf: Any, data: Any, model: Any, best: np.ndarray, guess: float) -> tuple[float, float]:
    """The 68% interval of mu from the profile likelihood, where 2 (NLL(mu) - NLL(mu-hat)) = 1 (MINOS's
    errors): down and up distances from mu-hat, each bracketed from `guess` (clipped at mu's bounds)."""
    poi = model.config.poi_index
    low_bound, high_bound = model.config.suggested_bounds()[poi]
    mu_hat = float(best[poi])
    lowest = twice_nll(model, best, data)

    @functools.cache
    def excess(mu: float) -> float:
        _, twice_nll = robustly(
            pyhf, model, lambda: pyhf.infer.mle.fixed_poi_fit(mu, data, model, return_fitted_val=True)
        )
        return float(twice_nll - lowest) - 1.0

    def distance(sign: float, bound: float) -> float:
        step = max(guess, 1e-3)
        while True:
            far = mu_hat + sign * step
            if sign * (far - bound) >= 0:  # the interval may end at the bound
                far = bound
                if excess(far) <= 0:
                    return abs(bound - mu_hat)
            if excess(far) > 0:
                return abs(float(optimize.brentq(excess, min(mu_hat, far), max(mu_hat, far), rtol=1e-4)) - mu_hat)
            step *= 2

    return distance(-1.0, low_bound), distance(1.0, high_bound)


def significance(spec: dict[str, Any]) -> tuple[float, float]:
    """Observed and expected discovery significance (q0, asymptotic) of a workspace."""
    with pyhf_session() as pyhf:
        ws = pyhf.Workspace(spec)
        model = ws.model(modifier_settings=SMOOTH)
        return _significance(pyhf, ws.data(model), model)


def best_fit_mu(spec: dict[str, Any]) -> float:
    """The signal strength that maximises the likelihood of a workspace's data."""
    with pyhf_session() as pyhf:
        ws = pyhf.Workspace(spec)
        model = ws.model(modifier_settings=SMOOTH)
        return float(pyhf.infer.mle.fit(ws.data(model), model)[model.config.poi_index])


def fit(spec: dict[str, Any], stat_only: dict[str, Any], channels: Sequence[Channel] = ()) -> dict[str, Any]:
    """Every number of `fit.json` for a workspace, and its statistics-only twin (no nuisance parameter);
    `channels` (the model's) give the bin edges and observables of the distributions."""
    import pyhf

    try:
        return _fit(spec, stat_only, channels)
    except pyhf.exceptions.FailedMinimization as err:
        raise ExecutionError(
            f"the fit did not converge: {str(err).splitlines()[0]}",
            hint="look for templates with large bin-to-bin fluctuations ('rebin', or 'norm' instead of 'shape')",
        ) from None


def _fit(spec: dict[str, Any], stat_only: dict[str, Any], channels: Sequence[Channel]) -> dict[str, Any]:
    z_obs_stat, z_exp_stat = significance(stat_only)
    with pyhf_session() as pyhf:
        ws = pyhf.Workspace(spec)
        model = ws.model(modifier_settings=SMOOTH)
        data = ws.data(model)
        poi = model.config.poi_index
        result, correlations = pyhf.infer.mle.fit(data, model, return_uncertainties=True, return_correlations=True)
        best, errors = np.asarray(result[:, 0]), np.asarray(result[:, 1])
        observed = np.asarray(ws.data(model, include_auxdata=False))
        distributions = _distributions(model, observed, best, errors, np.asarray(correlations), channels)
        down, up = _profile_interval(pyhf, data, model, best, float(errors[poi]))
        hesse_reliable = abs(errors[poi] - (up + down) / 2) <= HESSE_AGREEMENT * (up + down) / 2
        if not hesse_reliable:
            log.warning(
                "MINUIT's Hesse matrix gives mu an uncertainty of %.3g where the profile likelihood gives -%.3g/+%.3g: "
                "the constraints, impacts and post-fit band, which come from it, are unreliable",
                errors[poi],
                down,
                up,
            )
        z_obs, z_exp = _significance(pyhf, data, model)
        limits = Limits(pyhf, model, data, best)
        # expected first: its Asimov fits, at the small mu of the expected limits, bound sqrt(qtilde) of
        # the Asimov data at the observed limit's mu, where a fit is hard when the signal is large
        # (the demo's fit: 40 s with the observed limit first, 9 s so)
        limit_band = limits.expected(2 * float(errors[poi]))
        limit_obs = limits.observed(max(float(best[poi]), 0.0) + 2 * float(errors[poi]))
        return {
            "mu": float(best[poi]),
            "mu_err": (up + down) / 2,  # of the profile likelihood's interval
            "mu_err_up": up,
            "mu_err_down": down,
            "mu_err_hesse": float(errors[poi]),
            "hesse_reliable": bool(hesse_reliable),
            "z_obs": z_obs,
            "z_exp": z_exp,
            "z_obs_stat_only": z_obs_stat,
            "z_exp_stat_only": z_exp_stat,
            "cls_limit_obs": float(limit_obs),
            "cls_limit_exp": limit_band[2],
            "cls_limit_exp_band": limit_band,  # -2, -1, 0, +1, +2 sigma
            "pulls": _pulls(model, best, errors),
            "impacts": _impacts(pyhf, data, model, best, errors),
            "yields": _summed(distributions),
            "distributions": distributions,
        }
