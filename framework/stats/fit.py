"""Fits of a pyhf workspace (numpy backend, MINUIT): best-fit mu and its uncertainty, discovery
significance (q0, observed and expected), CLs 95% upper limits (qtilde, observed and expected),
pulls and constraints of the nuisance parameters, impacts on mu (refits with each nuisance
parameter fixed at its fitted value +- its uncertainty), pre- and post-fit yields, and per channel
and bin the yields of every sample pre- and post-fit with the uncertainty of their total (linear
propagation of the parameters' pre-fit widths or post-fit covariance). Statistics only: the same
channels without any nuisance parameter."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import optimize, stats

from framework.errors import ExecutionError

if TYPE_CHECKING:
    from framework.stats.model import Channel

# smooth interpolation (ROOT HistFactory's and cabinetry's choice): exponential outside |theta| < 1 and a
# polynomial inside for normsys, polynomial + linear for histosys; pyhf's defaults have a kink at 0 that
# stops MIGRAD where a nuisance parameter ends up near its nominal value
SMOOTH = {"normsys": {"interpcode": "code4"}, "histosys": {"interpcode": "code4p"}}
LEVEL = 0.05  # CLs upper limits at 95% confidence
RANKED = ("normsys", "histosys", "shapesys")  # nuisance parameters ranked by impact (not the per-bin staterrors)
STEP = 1e-3  # of a parameter's uncertainty: central differences of the expected yields, exact to ~1e-7 relative


@contextmanager
def _pyhf() -> Iterator[Any]:
    """pyhf on numpy with MINUIT (uncertainties from its Hesse matrix), quietly."""
    import pyhf

    logger = logging.getLogger("pyhf")  # pyhf logs every failed minimisation with MINUIT's whole table
    level = logger.level
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MINUIT's and pyhf's numerical chatter; results are checked by the caller
        logger.setLevel(logging.CRITICAL)
        pyhf.set_backend("numpy", pyhf.optimize.minuit_optimizer())
        try:
            yield pyhf
        finally:
            logger.setLevel(level)


def _hypotest(pyhf: Any, poi: float, data: Any, model: Any, **options: Any) -> Any:
    """A hypothesis test with MINUIT at strategy 0 (its fits need no Hesse matrix), again with scipy's
    SLSQP where MINUIT does not converge (fits on Asimov data with many per-bin parameters);
    with scipy's alone where only the parameter of interest is free."""
    if len(model.config.suggested_init()) == 1:
        pyhf.set_backend("numpy", pyhf.optimize.scipy_optimizer())
        return pyhf.infer.hypotest(poi, data, model, **options)
    try:
        pyhf.set_backend("numpy", pyhf.optimize.minuit_optimizer(strategy=0))
        return pyhf.infer.hypotest(poi, data, model, **options)
    except pyhf.exceptions.FailedMinimization:
        pyhf.set_backend("numpy", pyhf.optimize.scipy_optimizer())
        return pyhf.infer.hypotest(poi, data, model, **options)
    finally:
        pyhf.set_backend("numpy", pyhf.optimize.minuit_optimizer())


def z_from_p(p: float) -> float:
    return float(stats.norm.isf(p))


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
    p_obs, p_exp = _hypotest(pyhf, 0.0, data, model, test_stat="q0", return_expected=True)
    return z_from_p(float(p_obs)), z_from_p(float(p_exp))


def _limits(pyhf: Any, data: Any, model: Any, mu_hat: float, sigma: float) -> tuple[float, list[float]]:
    """Observed and expected (background only: median, +-1 and +-2 sigma) CLs 95% upper limits on mu
    (qtilde, asymptotic): bracketed from mu_hat + 2 sigma (observed) and 2 sigma (expected), then
    Brent's method on CLs(mu) - 0.05; every hypothesis test gives all six CLs values."""
    tested: dict[float, list[float]] = {}
    highest = model.config.suggested_bounds()[model.config.poi_index][1]

    def f(mu: float, which: int) -> float:
        if mu not in tested:
            observed, expected = _hypotest(pyhf, mu, data, model, return_expected_set=True)
            tested[mu] = [float(observed), *(float(e) for e in expected)]
        return tested[mu][which] - LEVEL

    def limit(which: int, start: float) -> float:
        low = high = min(max(start, 1e-3), highest)
        while f(high, which) > 0 and high < highest:
            low, high = high, min(high * 1.5, highest)
        while f(low, which) < 0 and low > 1e-4:
            low, high = low / 1.5, low
        return float(optimize.brentq(lambda mu: f(mu, which), low, high, rtol=1e-3))

    observed = limit(0, max(mu_hat, 0.0) + 2 * sigma)
    return observed, [limit(which, 2 * sigma) for which in range(1, 6)]


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


def significance(spec: dict[str, Any]) -> tuple[float, float]:
    """Observed and expected discovery significance (q0, asymptotic) of a workspace."""
    with _pyhf() as pyhf:
        ws = pyhf.Workspace(spec)
        model = ws.model(modifier_settings=SMOOTH)
        return _significance(pyhf, ws.data(model), model)


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
    with _pyhf() as pyhf:
        ws = pyhf.Workspace(spec)
        model = ws.model(modifier_settings=SMOOTH)
        data = ws.data(model)
        poi = model.config.poi_index
        result, correlations = pyhf.infer.mle.fit(data, model, return_uncertainties=True, return_correlations=True)
        best, errors = np.asarray(result[:, 0]), np.asarray(result[:, 1])
        observed = np.asarray(ws.data(model, include_auxdata=False))
        distributions = _distributions(model, observed, best, errors, np.asarray(correlations), channels)
        z_obs, z_exp = _significance(pyhf, data, model)
        limit_obs, limit_band = _limits(pyhf, data, model, float(best[poi]), float(errors[poi]))
        return {
            "mu": float(best[poi]),
            "mu_err": float(errors[poi]),
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
