"""Efficiencies of tag-and-probe bins: binned maximum-likelihood fits of the pass and fail mass
distributions (iminuit, the likelihood of likelihood.py), and counting.

A fit that does not converge is restarted (again from its end point, with a looser EDM goal
and SIMPLEX, then from other starting points); a simultaneous fit's interval on the
efficiency is MINOS's, or the HESSE error (said so) where MINOS cannot give one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from framework.extensions.tnp.likelihood import FitInput, Model, deviance

ONE_SIGMA = float(stats.norm.cdf(1) - stats.norm.cdf(-1))


@dataclass
class Efficiency:
    value: float
    error_low: float
    error_high: float
    converged: bool = True
    chi2_ndf: float = 0.0
    method: str = "count"
    message: str = ""
    curves: dict[str, list[float]] = field(default_factory=dict)  # expected counts per bin, for plots

    @property
    def error(self) -> float:
        return 0.5 * (self.error_low + self.error_high)


def clopper_pearson(passed: float, total: float) -> Efficiency:
    """Central 68.3% Clopper-Pearson interval of an unweighted count."""
    if total <= 0:
        return Efficiency(float("nan"), float("nan"), float("nan"), False, message="no probes")
    k, n = passed, total
    low = stats.beta.ppf((1 - ONE_SIGMA) / 2, k, n - k + 1) if k > 0 else 0.0
    high = stats.beta.ppf((1 + ONE_SIGMA) / 2, k + 1, n - k) if k < n else 1.0
    e = k / n
    return Efficiency(e, e - low, high - e)


def weighted_count(passed: float, passed_w2: float, failed: float, failed_w2: float) -> Efficiency:
    """Efficiency of weighted probes; normal approximation with the sums of squared weights."""
    total = passed + failed
    if total <= 0:
        return Efficiency(float("nan"), float("nan"), float("nan"), False, message="no probes")
    e = passed / total
    sigma = float(np.sqrt((1 - e) ** 2 * passed_w2 + e**2 * failed_w2) / total)
    return Efficiency(e, sigma, sigma)


def _minos(m: Any) -> tuple[float, float] | None:
    """MINOS interval of the efficiency, or None when MINOS cannot give a valid one."""
    try:
        m.minos("e")
    except RuntimeError:
        return None
    me = m.merrors["e"]
    e = float(m.values["e"])
    # an interval that reaches e = 0 or 1 ends there: that side is valid, not a failure
    low = -float(me.lower) if me.lower_valid else (e if me.at_lower_limit else None)
    high = float(me.upper) if me.upper_valid else (1 - e if me.at_upper_limit else None)
    return None if low is None or high is None or me.lower_new_min or me.upper_new_min else (low, high)


def fit_efficiency(data: FitInput, signal: str, background: str, simultaneous: bool = True) -> Efficiency:
    """Maximum-likelihood fit of pass and fail; MINOS interval on the efficiency when simultaneous."""
    model = Model(data, signal, background, simultaneous)
    if model.n_pass + model.n_fail <= 0:
        return Efficiency(float("nan"), float("nan"), float("nan"), False, method="fit", message="no probes")
    m = _minimise(model)
    parts = model.components(np.array(m.values))
    expected = {k: parts[f"signal_{k}"] + parts[f"background_{k}"] for k in ("pass", "fail")}
    chi2 = deviance(expected["pass"], data.passed) + deviance(expected["fail"], data.failed)
    chi2_ndf = chi2 / max(2 * len(data.passed) - len(model.names), 1)
    curves = {k: v.tolist() for k, v in parts.items()}
    if not m.valid:
        return Efficiency(
            float(m.values[1]) if simultaneous else float("nan"),
            float("nan"),
            float("nan"),
            False,
            chi2_ndf,
            "fit",
            "MIGRAD did not converge",
            curves,
        )
    if simultaneous:
        return _simultaneous_result(m, chi2_ndf, curves)
    return _separate_result(m, chi2_ndf, curves)


def _starts(model: Model) -> list[list[float]]:
    """The model's start values, then others for the yields, tried when a fit does not converge:
    little and much background."""
    starts = [list(model.start)]
    for fraction in (0.02, 0.6):
        other = list(model.start)
        other[2], other[3] = fraction * model.n_pass + 1, fraction * model.n_fail + 1
        if model.simultaneous:
            other[0] = (1 - fraction) * (model.n_pass + model.n_fail)
        starts.append(other)
    return starts


def _minimise(model: Model) -> Any:
    """MIGRAD from each start in turn until it converges; the last Minuit."""
    from iminuit import Minuit

    nll, gradient, g2 = model.compiled() or (model.nll, None, None)
    for start in _starts(model):
        m = Minuit(nll, np.array(start, dtype=float), grad=gradient, g2=g2, name=model.names)
        m.errordef = Minuit.LIKELIHOOD
        m.limits = model.limits
        m.strategy = 1
        m.migrad()
        if not m.valid:  # a second start from where the first stopped
            m.migrad()
        if not m.valid:  # large samples: an EDM goal of 1e-3 is still far below the statistical precision
            m.tol = 1.0
            m.simplex().migrad()
        if m.valid:
            break
    return m


def _simultaneous_result(m: Any, chi2_ndf: float, curves: dict[str, list[float]]) -> Efficiency:
    """The fitted efficiency with its MINOS interval (the HESSE error where there is none)."""
    if not m.fmin.has_accurate_covar:  # MIGRAD's own final HESSE is often there already
        m.hesse()
    converged_at = (float(m.values["e"]), float(m.errors["e"]))
    interval = _minos(m)
    for _ in range(2):  # MINOS found a lower minimum along a flat direction: start again from there
        if interval is not None:
            break
        m.migrad()
        if not m.valid:
            break
        m.hesse()
        interval = _minos(m)
    if interval is None:  # the converged minimum, with the parabolic error (listed in fits_to_check)
        e, error = converged_at
        return Efficiency(e, error, error, True, chi2_ndf, "fit", "no valid MINOS interval: HESSE error", curves)
    return Efficiency(float(m.values["e"]), *interval, True, chi2_ndf, "fit", "", curves)


def _separate_result(m: Any, chi2_ndf: float, curves: dict[str, list[float]]) -> Efficiency:
    """S_pass / (S_pass + S_fail) from separate signal yields, the HESSE errors propagated."""
    m.hesse()
    sp, sf = float(m.values["S_pass"]), float(m.values["S_fail"])
    vp, vf = float(m.errors["S_pass"]) ** 2, float(m.errors["S_fail"]) ** 2
    e = sp / (sp + sf)
    sigma = float(np.sqrt(sf**2 * vp + sp**2 * vf) / (sp + sf) ** 2)
    return Efficiency(e, sigma, sigma, True, chi2_ndf, "fit (separate)", "", curves)
