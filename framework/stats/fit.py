"""Fits of a pyhf workspace (numpy backend, MINUIT): best-fit mu and its uncertainty, discovery
significance (q0, observed and expected), CLs 95% upper limits (qtilde, observed and expected),
pulls and constraints of the nuisance parameters, impacts on mu (refits with each nuisance
parameter fixed at its fitted value +- its uncertainty), pre- and post-fit yields. Statistics
only: the same channels without any nuisance parameter."""

from __future__ import annotations

from typing import Any

import numpy as np

from framework.errors import ExecutionError
from framework.stats.limits import Limits
from framework.stats.minimise import SMOOTH, pyhf_session, robustly

RANKED = ("normsys", "histosys", "shapesys")  # nuisance parameters ranked by impact (not the per-bin staterrors)


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


def _yields(model: Any, pars: np.ndarray) -> dict[str, dict[str, float]]:
    by_sample = np.asarray(model.main_model.expected_data(pars, return_by_sample=True))
    return {
        c: {s: float(by_sample[i, model.config.channel_slices[c]].sum()) for i, s in enumerate(model.config.samples)}
        for c in model.config.channels
    }


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
    found = []
    for label, index, kind in _parameters(model):
        name = label.split("[")[0]
        sigmas = getattr(model.config.param_set(name), "sigmas", None) or [1.0]
        sl = model.config.par_slice(name)
        sigma = float(sigmas[index - sl.start]) if len(sigmas) > index - sl.start else 1.0
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


def fit(spec: dict[str, Any], stat_only: dict[str, Any]) -> dict[str, Any]:
    """Every number of `fit.json` for a workspace, and its statistics-only twin (no nuisance parameter)."""
    import pyhf

    try:
        return _fit(spec, stat_only)
    except pyhf.exceptions.FailedMinimization as err:
        raise ExecutionError(
            f"the fit did not converge: {str(err).splitlines()[0]}",
            hint="look for templates with large bin-to-bin fluctuations ('rebin', or 'norm' instead of 'shape')",
        ) from None


def _fit(spec: dict[str, Any], stat_only: dict[str, Any]) -> dict[str, Any]:
    z_obs_stat, z_exp_stat = significance(stat_only)
    with pyhf_session() as pyhf:
        ws = pyhf.Workspace(spec)
        model = ws.model(modifier_settings=SMOOTH)
        data = ws.data(model)
        poi = model.config.poi_index
        result = pyhf.infer.mle.fit(data, model, return_uncertainties=True)
        best, errors = np.asarray(result[:, 0]), np.asarray(result[:, 1])
        z_obs, z_exp = _significance(pyhf, data, model)
        limits = Limits(pyhf, model, data)
        limit_obs = limits.observed(max(float(best[poi]), 0.0) + 2 * float(errors[poi]))
        limit_band = limits.expected(2 * float(errors[poi]))
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
            "yields": {
                "prefit": _yields(model, np.asarray(model.config.suggested_init())),
                "postfit": _yields(model, best),
                "data": {
                    c: float(np.asarray(data)[model.config.channel_slices[c]].sum()) for c in model.config.channels
                },
            },
        }
