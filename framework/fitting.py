"""Binned maximum-likelihood fits of tag-and-probe mass distributions (iminuit), and counting.

A simultaneous fit has the efficiency as a parameter: the signal yield N splits into N*e
passing and N*(1-e) failing probes; each side has its own signal shape parameters and its
own background yield and shape. Shapes are bin fractions over the fit range:

- template_gauss: the simulated mass distribution of the same bin, convolved with a Gaussian
  (bin-integrated exactly: each template bin contributes Phi differences; the template covers
  the whole histogram window, wider than the fit range, so the edges are not depleted);
- voigtian (Z width fixed to 2.4952 GeV), double_voigtian, dscb (double-sided Crystal Ball);
- backgrounds: exponential, cms (erfc((alpha - m) beta) exp(-gamma (m - 91.1876))), chebyshev (2nd order).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import special, stats

Z_MASS, Z_WIDTH = 91.1876, 2.4952
ONE_SIGMA = float(stats.norm.cdf(1) - stats.norm.cdf(-1))


@dataclass(frozen=True)
class Shape:
    parameters: tuple[str, ...]
    start: tuple[float, ...]
    limits: tuple[tuple[float, float], ...]
    fractions: Callable[..., np.ndarray]  # (params, edges, template) -> bin fractions summing to 1


def _normalised(values: np.ndarray) -> np.ndarray:
    values = np.maximum(values, 1e-300)
    return values / values.sum()


def _centres(edges: np.ndarray) -> np.ndarray:
    return 0.5 * (edges[1:] + edges[:-1])


def _integrated(density: Callable[[np.ndarray], np.ndarray], edges: np.ndarray) -> np.ndarray:
    """Bin integrals by Simpson's rule: at high statistics the bin-centre value is biased near the peak."""
    ends = density(edges)
    return (ends[:-1] + 4 * density(_centres(edges)) + ends[1:]) * np.diff(edges) / 6


def _template_gauss(p: np.ndarray, edges: np.ndarray, template: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    counts, t_edges = template
    centres = _centres(t_edges)
    cdf = special.ndtr((edges[None, :] - centres[:, None] - p[0]) / p[1])
    return _normalised(counts @ (cdf[:, 1:] - cdf[:, :-1]))


def _voigt(x: np.ndarray, m0: float, sigma: float) -> np.ndarray:
    return special.voigt_profile(x - m0, sigma, Z_WIDTH / 2)


def _voigtian(p: np.ndarray, edges: np.ndarray, _: Any) -> np.ndarray:
    return _normalised(_integrated(lambda x: _voigt(x, p[0], p[1]), edges))


def _double_voigtian(p: np.ndarray, edges: np.ndarray, _: Any) -> np.ndarray:
    return _normalised(_integrated(lambda x: p[3] * _voigt(x, p[0], p[1]) + (1 - p[3]) * _voigt(x, p[0], p[2]), edges))


def _dscb(p: np.ndarray, edges: np.ndarray, _: Any) -> np.ndarray:
    m0, sigma, a_low, n_low, a_high, n_high = p

    def density(x: np.ndarray) -> np.ndarray:
        t = (x - m0) / sigma
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            low = np.exp(-0.5 * a_low**2) * (a_low / n_low * (n_low / a_low - a_low - t)) ** (-n_low)
            high = np.exp(-0.5 * a_high**2) * (a_high / n_high * (n_high / a_high - a_high + t)) ** (-n_high)
        return np.nan_to_num(np.where(t < -a_low, low, np.where(t > a_high, high, np.exp(-0.5 * t * t))))

    return _normalised(_integrated(density, edges))


def _exponential(p: np.ndarray, edges: np.ndarray, _: Any) -> np.ndarray:
    return _normalised(_integrated(lambda x: np.exp(-p[0] * (x - edges[0])), edges))


def _cms(p: np.ndarray, edges: np.ndarray, _: Any) -> np.ndarray:
    return _normalised(
        _integrated(lambda x: special.erfc((p[0] - x) * p[1]) * np.exp(np.clip(-p[2] * (x - Z_MASS), -700, 700)), edges)
    )


def _chebyshev(p: np.ndarray, edges: np.ndarray, _: Any) -> np.ndarray:
    def density(x: np.ndarray) -> np.ndarray:
        u = 2 * (x - edges[0]) / (edges[-1] - edges[0]) - 1
        return np.maximum(1 + p[0] * u + p[1] * (2 * u * u - 1), 1e-9)

    return _normalised(_integrated(density, edges))


SIGNALS = {
    "template_gauss": Shape(("shift", "smear"), (0.0, 1.0), ((-3.0, 3.0), (0.05, 6.0)), _template_gauss),
    "voigtian": Shape(("m0", "sigma"), (Z_MASS, 1.5), ((86.0, 96.0), (0.1, 6.0)), _voigtian),
    "double_voigtian": Shape(
        ("m0", "sigma1", "sigma2", "f"), (Z_MASS, 1.0, 3.0, 0.7), ((86.0, 96.0), (0.1, 4.0), (0.5, 10.0), (0.0, 1.0)),
        _double_voigtian,
    ),
    "dscb": Shape(
        ("m0", "sigma", "alpha_low", "n_low", "alpha_high", "n_high"),
        (Z_MASS, 2.0, 1.5, 3.0, 1.5, 3.0),
        ((86.0, 96.0), (0.3, 8.0), (0.3, 5.0), (1.01, 50.0), (0.3, 5.0), (1.01, 50.0)),
        _dscb,
    ),
}
BACKGROUNDS = {
    "exponential": Shape(("slope",), (0.03,), ((-0.5, 0.5),), _exponential),
    # alpha below the peak and a gentle turn-on: otherwise erfc x exp can mimic the Z peak
    "cms": Shape(("alpha", "beta", "gamma"), (60.0, 0.05, 0.02), ((40.0, 80.0), (0.01, 0.2), (-0.2, 0.2)), _cms),
    "chebyshev": Shape(("c1", "c2"), (0.0, 0.0), ((-1.0, 1.0), (-1.0, 1.0)), _chebyshev),
}


# The nominal model, template x Gaussian with any background, also has a compiled likelihood
# (numba): a fit calls it thousands of times. The numpy shapes above stay the reference and
# draw the curves; a test checks that both give the same likelihood.
BACKGROUND_CODES = {"exponential": 0, "cms": 1, "chebyshev": 2}


try:
    import numba
except ImportError:  # numba is a dependency; without it the numpy likelihood is used
    numba = None


def _compiled(function: Callable[..., Any]) -> Any:
    return numba.njit(cache=True)(function) if numba is not None else None


@_compiled
def _phi(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


@_compiled
def _background_density(kind: int, p: np.ndarray, x: float, low: float, high: float) -> float:
    if kind == 0:
        return math.exp(-p[0] * (x - low))
    if kind == 1:
        return math.erfc((p[0] - x) * p[1]) * math.exp(min(max(-p[2] * (x - Z_MASS), -700.0), 700.0))
    u = 2 * (x - low) / (high - low) - 1
    return max(1 + p[0] * u + p[1] * (2 * u * u - 1), 1e-9)


@_compiled
def _side(p: np.ndarray, offset: int, nb: int, kind: int, signal_yield: float, background_yield: float,
          edges: np.ndarray, observed: np.ndarray, counts: np.ndarray, offsets: np.ndarray, which: np.ndarray) -> float:
    """Half the Poisson deviance of one side (pass or fail) for template x Gaussian + background.

    `offsets` are the distinct values of (fit edge - template bin centre) and `which[i, j]` the
    one of edge i and template bin j: when the binnings are aligned there are few, so the
    Gaussian CDF is evaluated a few hundred times per call instead of edges x template bins.
    """
    n = len(edges) - 1
    shift, smear = p[offset], p[offset + 1]
    cdf = np.empty(len(offsets))
    for k in range(len(offsets)):
        cdf[k] = _phi((offsets[k] - shift) / smear)
    shape_s = np.zeros(n)
    for j in range(len(counts)):
        if counts[j] == 0:
            continue
        for i in range(n):
            shape_s[i] += counts[j] * (cdf[which[i + 1, j]] - cdf[which[i, j]])
    shape_b = np.zeros(n)
    bp = p[offset + 2 : offset + 2 + nb]
    low, high = edges[0], edges[-1]
    at_edge = np.empty(n + 1)
    for i in range(n + 1):
        at_edge[i] = _background_density(kind, bp, edges[i], low, high)
    for i in range(n):  # Simpson's rule, as the numpy shapes
        a, b = edges[i], edges[i + 1]
        shape_b[i] = (at_edge[i] + 4 * _background_density(kind, bp, 0.5 * (a + b), low, high) + at_edge[i + 1]) * (b - a) / 6
    sum_s = max(shape_s.sum(), 1e-300)
    sum_b = shape_b.sum()
    total = 0.0
    for i in range(n):
        mu = signal_yield * max(shape_s[i], 1e-300) / sum_s + background_yield * max(shape_b[i], 1e-300) / sum_b
        mu = max(mu, 1e-300)
        total += mu - observed[i]
        if observed[i] > 0:
            total += observed[i] * math.log(observed[i] / mu)
    return total


@_compiled
def _NLL(p: np.ndarray, simultaneous: bool, nb: int, kind: int, edges: np.ndarray, passed: np.ndarray,
         failed: np.ndarray, counts_pass: np.ndarray, counts_fail: np.ndarray, offsets: np.ndarray,
         which: np.ndarray) -> float:
    if simultaneous:
        yield_pass, yield_fail = p[0] * p[1], p[0] * (1 - p[1])
    else:
        yield_pass, yield_fail = p[0], p[1]
    return _side(p, 4, nb, kind, yield_pass, p[2], edges, passed, counts_pass, offsets, which) + _side(
        p, 6 + nb, nb, kind, yield_fail, p[3], edges, failed, counts_fail, offsets, which
    )




@dataclass(frozen=True)
class FitInput:
    """Pass and fail counts in the fit range; templates over the whole window (template_gauss)."""

    edges: np.ndarray
    passed: np.ndarray
    failed: np.ndarray
    template_passed: tuple[np.ndarray, np.ndarray] | None = None  # (counts, edges)
    template_failed: tuple[np.ndarray, np.ndarray] | None = None


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


def _deviance(expected: np.ndarray, observed: np.ndarray) -> float:
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(observed > 0, observed * np.log(observed / expected), 0.0)
    return float(2 * np.sum(expected - observed + term))


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
    from iminuit import Minuit  # noqa: PLC0415

    sig, bkg = SIGNALS[signal], BACKGROUNDS[background]
    n_pass, n_fail = float(data.passed.sum()), float(data.failed.sum())
    if n_pass + n_fail <= 0:
        return Efficiency(float("nan"), float("nan"), float("nan"), False, method="fit", message="no probes")
    side = [f"{n}_{s}" for s in ("pass", "fail") for n in (*sig.parameters, *(f"bkg_{b}" for b in bkg.parameters))]
    if simultaneous:
        head = ["N", "e", "B_pass", "B_fail"]
        start = [0.9 * (n_pass + n_fail), n_pass / (n_pass + n_fail), 0.1 * n_pass + 1, 0.3 * n_fail + 1]
        limits = [(0, 2 * (n_pass + n_fail) + 10), (0, 1), (0, n_pass + 10), (0, n_fail + 10)]
    else:
        head = ["S_pass", "S_fail", "B_pass", "B_fail"]
        start = [0.9 * n_pass + 1, 0.7 * n_fail + 1, 0.1 * n_pass + 1, 0.3 * n_fail + 1]
        limits = [(0, 2 * n_pass + 10), (0, 2 * n_fail + 10), (0, n_pass + 10), (0, n_fail + 10)]
    names = head + side
    start += [*sig.start, *bkg.start] * 2
    limits += [*sig.limits, *bkg.limits] * 2
    ns, nb = len(sig.parameters), len(bkg.parameters)
    templates = (data.template_passed, data.template_failed)

    def components(p: np.ndarray) -> dict[str, np.ndarray]:
        out = {}
        for k, (label, observed) in enumerate((("pass", data.passed), ("fail", data.failed))):
            offset = 4 + k * (ns + nb)
            shape_s = sig.fractions(p[offset : offset + ns], data.edges, templates[k])
            shape_b = bkg.fractions(p[offset + ns : offset + ns + nb], data.edges, None)
            if simultaneous:
                yield_s = p[0] * (p[1] if k == 0 else 1 - p[1])
            else:
                yield_s = p[k]
            out[f"signal_{label}"] = yield_s * shape_s
            out[f"background_{label}"] = p[2 + k] * shape_b
        return out

    def nll(p: np.ndarray) -> float:
        # half the Poisson deviance: the NLL minus its saturated value, near 0 at the minimum,
        # so MIGRAD's tolerance is not lost in a large constant (RooFit's Offset does the same)
        parts = components(p)
        return 0.5 * sum(
            _deviance(np.maximum(parts[f"signal_{k}"] + parts[f"background_{k}"], 1e-300), observed)
            for k, observed in (("pass", data.passed), ("fail", data.failed))
        )

    if signal == "template_gauss" and _NLL is not None and templates[0] is not None and templates[1] is not None:
        distances = np.round(data.edges[:, None] - _centres(templates[0][1])[None, :], 9)
        offsets, which = np.unique(distances, return_inverse=True)
        args = (simultaneous, nb, BACKGROUND_CODES[background], data.edges.astype(float), data.passed.astype(float),
                data.failed.astype(float), templates[0][0].astype(float), templates[1][0].astype(float), offsets,
                which.reshape(distances.shape).astype(np.int64))

        def nll(p: np.ndarray) -> float:  # noqa: F811  (the compiled twin of the numpy likelihood)
            return _NLL(p, *args)

    # other starting points for the yields when the first does not converge: little and much background
    retries = [list(start)]
    for fraction in (0.02, 0.6):
        other = list(start)
        other[2], other[3] = fraction * n_pass + 1, fraction * n_fail + 1
        if simultaneous:
            other[0] = (1 - fraction) * (n_pass + n_fail)
        retries.append(other)
    for attempt in retries:
        m = Minuit(nll, np.array(attempt, dtype=float), name=names)
        m.errordef = Minuit.LIKELIHOOD
        m.limits = limits
        m.strategy = 1
        m.migrad()
        if not m.valid:  # a second start from where the first stopped
            m.migrad()
        if not m.valid:  # large samples: an EDM goal of 1e-3 is still far below the statistical precision
            m.tol = 1.0
            m.simplex().migrad()
        if m.valid:
            break
    parts = components(np.array(m.values))
    expected = {k: parts[f"signal_{k}"] + parts[f"background_{k}"] for k in ("pass", "fail")}
    chi2 = _deviance(expected["pass"], data.passed) + _deviance(expected["fail"], data.failed)
    ndf = max(2 * len(data.passed) - len(names), 1)
    curves = {k: v.tolist() for k, v in parts.items()}
    if not m.valid:
        return Efficiency(float(m.values[1]) if simultaneous else float("nan"), float("nan"), float("nan"), False,
                          chi2 / ndf, "fit", "MIGRAD did not converge", curves)
    if simultaneous:
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
            return Efficiency(e, error, error, True, chi2 / ndf, "fit", "no valid MINOS interval: HESSE error", curves)
        return Efficiency(float(m.values["e"]), *interval, True, chi2 / ndf, "fit", "", curves)
    m.hesse()
    sp, sf = float(m.values["S_pass"]), float(m.values["S_fail"])
    vp, vf = float(m.errors["S_pass"]) ** 2, float(m.errors["S_fail"]) ** 2
    e = sp / (sp + sf)
    sigma = float(np.sqrt(sf**2 * vp + sp**2 * vf) / (sp + sf) ** 2)
    return Efficiency(e, sigma, sigma, True, chi2 / ndf, "fit (separate)", "", curves)
