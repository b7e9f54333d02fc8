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
def _background_gradient(kind: int, p: np.ndarray, x: float, low: float, high: float, out: np.ndarray) -> None:
    """Derivatives of `_background_density` with respect to its parameters, into `out`."""
    if kind == 0:
        out[0] = -(x - low) * math.exp(-p[0] * (x - low))
        return
    if kind == 1:
        z = (p[0] - x) * p[1]
        exponent = -p[2] * (x - Z_MASS)
        e = math.exp(min(max(exponent, -700.0), 700.0))
        d_erfc = -2.0 / math.sqrt(math.pi) * math.exp(-z * z)  # d erfc(z) / dz
        out[0] = d_erfc * p[1] * e
        out[1] = d_erfc * (p[0] - x) * e
        out[2] = math.erfc(z) * e * (-(x - Z_MASS)) if -700.0 < exponent < 700.0 else 0.0
        return
    u = 2 * (x - low) / (high - low) - 1
    above = 1 + p[0] * u + p[1] * (2 * u * u - 1) > 1e-9
    out[0] = u if above else 0.0
    out[1] = 2 * u * u - 1 if above else 0.0


@_compiled
def _side(p: np.ndarray, offset: int, nb: int, kind: int, signal_yield: float, background_yield: float,
          edges: np.ndarray, observed: np.ndarray, counts: np.ndarray, offsets: np.ndarray, which: np.ndarray,
          gradient: np.ndarray, fisher: np.ndarray) -> tuple[float, float, float]:
    """Half the Poisson deviance of one side (pass or fail) for template x Gaussian + background,
    and its derivatives: returned for the two yields, written into `gradient` (length 2 + nb)
    for the side's shape parameters (shift, smear, background parameters). `fisher` gets the
    diagonal of the expected information, sum over bins of (d mu / d theta)^2 / mu, for the
    signal yield, the background yield and the shape parameters (length 4 + nb): MIGRAD's
    second derivatives, instead of numerical ones.

    `offsets` are the distinct values of (fit edge - template bin centre) and `which[i, j]` the
    one of edge i and template bin j: when the binnings are aligned there are few, so the
    Gaussian CDF is evaluated a few hundred times per call instead of edges x template bins.
    """
    n = len(edges) - 1
    shift, smear = p[offset], p[offset + 1]
    cdf = np.empty(len(offsets))
    d_shift = np.empty(len(offsets))  # d cdf / d shift = -pdf / smear
    d_smear = np.empty(len(offsets))  # d cdf / d smear = -pdf u / smear
    for k in range(len(offsets)):
        u = (offsets[k] - shift) / smear
        cdf[k] = _phi(u)
        pdf = math.exp(-0.5 * u * u) / math.sqrt(2 * math.pi)
        d_shift[k] = -pdf / smear
        d_smear[k] = -pdf * u / smear
    # the template convolved up to each edge; a bin is the difference of its two edges
    at = np.zeros((3, n + 1))
    for j in range(len(counts)):
        if counts[j] == 0:
            continue
        for i in range(n + 1):
            k = which[i, j]
            at[0, i] += counts[j] * cdf[k]
            at[1, i] += counts[j] * d_shift[k]
            at[2, i] += counts[j] * d_smear[k]
    shape_s = at[0, 1:] - at[0, :-1]
    ds_shift = at[1, 1:] - at[1, :-1]
    ds_smear = at[2, 1:] - at[2, :-1]
    bp = p[offset + 2 : offset + 2 + nb]
    low, high = edges[0], edges[-1]
    shape_b = np.zeros(n)
    db = np.zeros((n, nb))
    point = np.empty(nb)
    for i in range(n):  # Simpson's rule, as the numpy shapes
        a, b = edges[i], edges[i + 1]
        width = (b - a) / 6
        for x, weight in ((a, 1.0), (0.5 * (a + b), 4.0), (b, 1.0)):
            shape_b[i] += weight * width * _background_density(kind, bp, x, low, high)
            _background_gradient(kind, bp, x, low, high, point)
            for q in range(nb):
                db[i, q] += weight * width * point[q]
    sum_s = max(shape_s.sum(), 1e-300)
    sum_b = shape_b.sum()
    sum_ds_shift, sum_ds_smear = ds_shift.sum(), ds_smear.sum()
    sum_db = np.zeros(nb)
    for i in range(n):
        for q in range(nb):
            sum_db[q] += db[i, q]
    total = 0.0
    d_signal = 0.0
    d_background = 0.0
    gradient[:] = 0.0
    fisher[:] = 0.0
    for i in range(n):
        fs = max(shape_s[i], 1e-300) / sum_s
        fb = max(shape_b[i], 1e-300) / sum_b
        mu = max(signal_yield * fs + background_yield * fb, 1e-300)
        total += mu - observed[i]
        if observed[i] > 0:
            total += observed[i] * math.log(observed[i] / mu)
        r = 1.0 - observed[i] / mu  # d (mu - n + n log(n / mu)) / d mu
        d_signal += r * fs
        d_background += r * fb
        fisher[0] += fs * fs / mu
        fisher[1] += fb * fb / mu
        # normalised shapes: d (s_i / S) = ds_i / S - s_i dS / S^2
        d_mu = signal_yield * (ds_shift[i] - fs * sum_ds_shift) / sum_s
        gradient[0] += r * d_mu
        fisher[2] += d_mu * d_mu / mu
        d_mu = signal_yield * (ds_smear[i] - fs * sum_ds_smear) / sum_s
        gradient[1] += r * d_mu
        fisher[3] += d_mu * d_mu / mu
        for q in range(nb):
            d_mu = background_yield * (db[i, q] - fb * sum_db[q]) / sum_b
            gradient[2 + q] += r * d_mu
            fisher[4 + q] += d_mu * d_mu / mu
    return total, d_signal, d_background


@_compiled
def _NLL_and_gradient(p: np.ndarray, simultaneous: bool, nb: int, kind: int, edges: np.ndarray, passed: np.ndarray,
                      failed: np.ndarray, counts_pass: np.ndarray, counts_fail: np.ndarray, offsets: np.ndarray,
                      which: np.ndarray, gradient: np.ndarray, g2: np.ndarray) -> float:
    """The likelihood of the nominal model and, into `gradient`, its derivatives (MIGRAD then
    needs no numerical gradient), into `g2` the expected second derivatives (diagonal)."""
    if simultaneous:
        yield_pass, yield_fail = p[0] * p[1], p[0] * (1 - p[1])
    else:
        yield_pass, yield_fail = p[0], p[1]
    width = 2 + nb
    fisher_pass, fisher_fail = np.empty(2 + width), np.empty(2 + width)
    value_pass, ds_pass, db_pass = _side(p, 4, nb, kind, yield_pass, p[2], edges, passed, counts_pass, offsets, which,
                                          gradient[4 : 4 + width], fisher_pass)
    value_fail, ds_fail, db_fail = _side(p, 4 + width, nb, kind, yield_fail, p[3], edges, failed, counts_fail, offsets,
                                          which, gradient[4 + width : 4 + 2 * width], fisher_fail)
    if simultaneous:
        gradient[0] = p[1] * ds_pass + (1 - p[1]) * ds_fail
        gradient[1] = p[0] * ds_pass - p[0] * ds_fail
        g2[0] = p[1] ** 2 * fisher_pass[0] + (1 - p[1]) ** 2 * fisher_fail[0]
        g2[1] = p[0] ** 2 * (fisher_pass[0] + fisher_fail[0])
    else:
        gradient[0], gradient[1] = ds_pass, ds_fail
        g2[0], g2[1] = fisher_pass[0], fisher_fail[0]
    gradient[2], gradient[3] = db_pass, db_fail
    g2[2], g2[3] = fisher_pass[1], fisher_fail[1]
    g2[4 : 4 + width] = fisher_pass[2:]
    g2[4 + width : 4 + 2 * width] = fisher_fail[2:]
    return value_pass + value_fail


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


class Model:
    """The binned likelihood of one fit: its parameters (start values, limits), each component's
    expected counts, the likelihood in numpy, and for the nominal model (template x Gaussian)
    the same likelihood compiled, with its analytic gradient."""

    def __init__(self, data: FitInput, signal: str, background: str, simultaneous: bool = True) -> None:
        self.data, self.simultaneous = data, simultaneous
        self.signal, self.background = signal, background
        sig, bkg = SIGNALS[signal], BACKGROUNDS[background]
        self.ns, self.nb = len(sig.parameters), len(bkg.parameters)
        n_pass, n_fail = float(data.passed.sum()), float(data.failed.sum())
        self.n_pass, self.n_fail = n_pass, n_fail
        side = [f"{n}_{s}" for s in ("pass", "fail") for n in (*sig.parameters, *(f"bkg_{b}" for b in bkg.parameters))]
        total = max(n_pass + n_fail, 1.0)
        if simultaneous:
            head = ["N", "e", "B_pass", "B_fail"]
            start = [0.9 * total, n_pass / total, 0.1 * n_pass + 1, 0.3 * n_fail + 1]
            limits = [(0, 2 * (n_pass + n_fail) + 10), (0, 1), (0, n_pass + 10), (0, n_fail + 10)]
        else:
            head = ["S_pass", "S_fail", "B_pass", "B_fail"]
            start = [0.9 * n_pass + 1, 0.7 * n_fail + 1, 0.1 * n_pass + 1, 0.3 * n_fail + 1]
            limits = [(0, 2 * n_pass + 10), (0, 2 * n_fail + 10), (0, n_pass + 10), (0, n_fail + 10)]
        self.names = head + side
        self.start = start + [*sig.start, *bkg.start] * 2
        self.limits = limits + [*sig.limits, *bkg.limits] * 2

    def components(self, p: np.ndarray) -> dict[str, np.ndarray]:
        """Expected signal and background counts per bin, pass and fail."""
        sig, bkg, data = SIGNALS[self.signal], BACKGROUNDS[self.background], self.data
        templates = (data.template_passed, data.template_failed)
        out = {}
        for k, label in enumerate(("pass", "fail")):
            offset = 4 + k * (self.ns + self.nb)
            shape_s = sig.fractions(p[offset : offset + self.ns], data.edges, templates[k])
            shape_b = bkg.fractions(p[offset + self.ns : offset + self.ns + self.nb], data.edges, None)
            yield_s = p[0] * (p[1] if k == 0 else 1 - p[1]) if self.simultaneous else p[k]
            out[f"signal_{label}"] = yield_s * shape_s
            out[f"background_{label}"] = p[2 + k] * shape_b
        return out

    def nll(self, p: np.ndarray) -> float:
        """Half the Poisson deviance: the NLL minus its saturated value, near 0 at the minimum, so
        MIGRAD's tolerance is not lost in a large constant (RooFit's Offset does the same)."""
        parts = self.components(p)
        return 0.5 * sum(
            _deviance(np.maximum(parts[f"signal_{k}"] + parts[f"background_{k}"], 1e-300), observed)
            for k, observed in (("pass", self.data.passed), ("fail", self.data.failed))
        )

    def compiled(self) -> tuple[Callable[[np.ndarray], float], Callable[[np.ndarray], np.ndarray],
                                Callable[[np.ndarray], np.ndarray]] | None:
        """The compiled likelihood, its gradient and expected second derivatives (nominal model
        only), or None."""
        data = self.data
        if self.signal != "template_gauss" or numba is None or data.template_passed is None or data.template_failed is None:
            return None
        distances = np.round(data.edges[:, None] - _centres(data.template_passed[1])[None, :], 9)
        offsets, which = np.unique(distances, return_inverse=True)
        args = (self.simultaneous, self.nb, BACKGROUND_CODES[self.background], data.edges.astype(float),
                data.passed.astype(float), data.failed.astype(float), data.template_passed[0].astype(float),
                data.template_failed[0].astype(float), offsets, which.reshape(distances.shape).astype(np.int64))
        last: dict[str, Any] = {}

        def evaluate(p: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
            """Value and derivatives together, once per point (MIGRAD asks for them at the same point)."""
            key = p.tobytes()
            if last.get("key") != key:
                g, g2 = np.empty(len(p)), np.empty(len(p))
                value = _NLL_and_gradient(np.asarray(p, dtype=float), *args, g, g2)
                last.update(key=key, value=value, gradient=g, g2=g2)
            return last["value"], last["gradient"], last["g2"]

        return (lambda p: evaluate(p)[0]), (lambda p: evaluate(p)[1].copy()), (lambda p: evaluate(p)[2].copy())


def fit_efficiency(data: FitInput, signal: str, background: str, simultaneous: bool = True) -> Efficiency:
    """Maximum-likelihood fit of pass and fail; MINOS interval on the efficiency when simultaneous."""
    from iminuit import Minuit  # noqa: PLC0415

    model = Model(data, signal, background, simultaneous)
    n_pass, n_fail = model.n_pass, model.n_fail
    if n_pass + n_fail <= 0:
        return Efficiency(float("nan"), float("nan"), float("nan"), False, method="fit", message="no probes")
    names, start, limits = model.names, model.start, model.limits
    nll, gradient, g2 = model.compiled() or (model.nll, None, None)

    # other starting points for the yields when the first does not converge: little and much background
    retries = [list(start)]
    for fraction in (0.02, 0.6):
        other = list(start)
        other[2], other[3] = fraction * n_pass + 1, fraction * n_fail + 1
        if simultaneous:
            other[0] = (1 - fraction) * (n_pass + n_fail)
        retries.append(other)
    for attempt in retries:
        m = Minuit(nll, np.array(attempt, dtype=float), grad=gradient, g2=g2, name=names)
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
    parts = model.components(np.array(m.values))
    expected = {k: parts[f"signal_{k}"] + parts[f"background_{k}"] for k in ("pass", "fail")}
    chi2 = _deviance(expected["pass"], data.passed) + _deviance(expected["fail"], data.failed)
    ndf = max(2 * len(data.passed) - len(names), 1)
    curves = {k: v.tolist() for k, v in parts.items()}
    if not m.valid:
        return Efficiency(float(m.values[1]) if simultaneous else float("nan"), float("nan"), float("nan"), False,
                          chi2 / ndf, "fit", "MIGRAD did not converge", curves)
    if simultaneous:
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
            return Efficiency(e, error, error, True, chi2 / ndf, "fit", "no valid MINOS interval: HESSE error", curves)
        return Efficiency(float(m.values["e"]), *interval, True, chi2 / ndf, "fit", "", curves)
    m.hesse()
    sp, sf = float(m.values["S_pass"]), float(m.values["S_fail"])
    vp, vf = float(m.errors["S_pass"]) ** 2, float(m.errors["S_fail"]) ** 2
    e = sp / (sp + sf)
    sigma = float(np.sqrt(sf**2 * vp + sp**2 * vf) / (sp + sf) ** 2)
    return Efficiency(e, sigma, sigma, True, chi2 / ndf, "fit (separate)", "", curves)
