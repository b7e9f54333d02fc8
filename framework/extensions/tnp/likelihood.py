"""The binned likelihood of a tag-and-probe fit (`Model`): its parameters, each component's
expected counts, the likelihood in numpy, and for the nominal model (template x Gaussian with
any background) the same likelihood compiled with numba, with its analytic gradient.

A simultaneous fit has the efficiency as a parameter: the signal yield N splits into N*e
passing and N*(1-e) failing probes; each side has its own signal shape parameters and its
own background yield and shape (shapes.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from framework.extensions.tnp.shapes import BACKGROUNDS, SIGNALS, Z_MASS, centres

# The nominal model, template x Gaussian with any background, also has a compiled likelihood
# (numba): a fit calls it thousands of times. The numpy shapes (shapes.py) stay the reference and
# draw the curves; a test checks that both give the same likelihood.
BACKGROUND_CODES = {"exponential": 0, "cms": 1, "chebyshev": 2}


numba: ModuleType | None
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
def _signal_shape(
    shift: float, smear: float, n: int, counts: np.ndarray, offsets: np.ndarray, which: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The template convolved with the Gaussian in each of the `n` fit bins, and its derivatives
    with respect to the shift and the smear.

    `offsets` are the distinct values of (fit edge - template bin centre) and `which[i, j]` the
    one of edge i and template bin j: when the binnings are aligned there are few, so the
    Gaussian CDF is evaluated a few hundred times per call instead of edges x template bins.
    """
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
    return at[0, 1:] - at[0, :-1], at[1, 1:] - at[1, :-1], at[2, 1:] - at[2, :-1]


@_compiled
def _background_shape(kind: int, bp: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The background density integrated over each fit bin (Simpson's rule, as the numpy shapes),
    and its derivatives with respect to the background parameters `bp` (bins x parameters)."""
    n, nb = len(edges) - 1, len(bp)
    low, high = edges[0], edges[-1]
    shape_b = np.zeros(n)
    db = np.zeros((n, nb))
    point = np.empty(nb)
    for i in range(n):
        a, b = edges[i], edges[i + 1]
        width = (b - a) / 6
        for x, weight in ((a, 1.0), (0.5 * (a + b), 4.0), (b, 1.0)):
            shape_b[i] += weight * width * _background_density(kind, bp, x, low, high)
            _background_gradient(kind, bp, x, low, high, point)
            for q in range(nb):
                db[i, q] += weight * width * point[q]
    return shape_b, db


# over 60 lines: one fused numba loop; value, gradient and Fisher terms share each bin's mu and r
@_compiled
def _side(
    p: np.ndarray,
    offset: int,
    nb: int,
    kind: int,
    signal_yield: float,
    background_yield: float,
    edges: np.ndarray,
    observed: np.ndarray,
    counts: np.ndarray,
    offsets: np.ndarray,
    which: np.ndarray,
    gradient: np.ndarray,
    fisher: np.ndarray,
) -> tuple[float, float, float]:
    """Half the Poisson deviance of one side (pass or fail) for template x Gaussian + background,
    and its derivatives: returned for the two yields, written into `gradient` (length 2 + nb)
    for the side's shape parameters (shift, smear, background parameters). `fisher` gets the
    diagonal of the expected information, sum over bins of (d mu / d theta)^2 / mu, for the
    signal yield, the background yield and the shape parameters (length 4 + nb): MIGRAD's
    second derivatives, instead of numerical ones.
    """
    n = len(edges) - 1
    shape_s, ds_shift, ds_smear = _signal_shape(p[offset], p[offset + 1], n, counts, offsets, which)
    shape_b, db = _background_shape(kind, p[offset + 2 : offset + 2 + nb], edges)
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


# over 60 lines: one numba kernel per MIGRAD step; its length is two 13-argument _side calls
@_compiled
def _NLL_and_gradient(
    p: np.ndarray,
    simultaneous: bool,
    nb: int,
    kind: int,
    edges: np.ndarray,
    passed: np.ndarray,
    failed: np.ndarray,
    counts_pass: np.ndarray,
    counts_fail: np.ndarray,
    offsets: np.ndarray,
    which: np.ndarray,
    gradient: np.ndarray,
    g2: np.ndarray,
) -> float:
    """The likelihood of the nominal model and, into `gradient`, its derivatives (MIGRAD then
    needs no numerical gradient), into `g2` the expected second derivatives (diagonal)."""
    if simultaneous:
        yield_pass, yield_fail = p[0] * p[1], p[0] * (1 - p[1])
    else:
        yield_pass, yield_fail = p[0], p[1]
    width = 2 + nb
    fisher_pass, fisher_fail = np.empty(2 + width), np.empty(2 + width)
    value_pass, ds_pass, db_pass = _side(
        p,
        4,
        nb,
        kind,
        yield_pass,
        p[2],
        edges,
        passed,
        counts_pass,
        offsets,
        which,
        gradient[4 : 4 + width],
        fisher_pass,
    )
    value_fail, ds_fail, db_fail = _side(
        p,
        4 + width,
        nb,
        kind,
        yield_fail,
        p[3],
        edges,
        failed,
        counts_fail,
        offsets,
        which,
        gradient[4 + width : 4 + 2 * width],
        fisher_fail,
    )
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


def deviance(expected: np.ndarray, observed: np.ndarray) -> float:
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(observed > 0, observed * np.log(observed / expected), 0.0)
    return float(2 * np.sum(expected - observed + term))


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
            deviance(np.maximum(parts[f"signal_{k}"] + parts[f"background_{k}"], 1e-300), observed)
            for k, observed in (("pass", self.data.passed), ("fail", self.data.failed))
        )

    def compiled(
        self,
    ) -> (
        tuple[Callable[[np.ndarray], float], Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]]
        | None
    ):
        """The compiled likelihood, its gradient and expected second derivatives (nominal model
        only), or None."""
        data = self.data
        if (
            self.signal != "template_gauss"
            or numba is None
            or data.template_passed is None
            or data.template_failed is None
        ):
            return None
        distances = np.round(data.edges[:, None] - centres(data.template_passed[1])[None, :], 9)
        offsets, which = np.unique(distances, return_inverse=True)
        args = (
            self.simultaneous,
            self.nb,
            BACKGROUND_CODES[self.background],
            data.edges.astype(float),
            data.passed.astype(float),
            data.failed.astype(float),
            data.template_passed[0].astype(float),
            data.template_failed[0].astype(float),
            offsets,
            which.reshape(distances.shape).astype(np.int64),
        )
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
