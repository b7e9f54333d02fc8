"""The signal and background shapes of tag-and-probe mass fits, as bin fractions over the fit
range (numpy): what the likelihood (likelihood.py) is made of and what the fit plots draw.

- template_gauss: the simulated mass distribution of the same bin, convolved with a Gaussian
  (bin-integrated exactly: each template bin contributes Phi differences; the template covers
  the whole histogram window, wider than the fit range, so the edges are not depleted);
- voigtian (Z width fixed to 2.4952 GeV), double_voigtian, dscb (double-sided Crystal Ball);
- backgrounds: exponential, cms (erfc((alpha - m) beta) exp(-gamma (m - 91.1876))), chebyshev (2nd order).
Densities are integrated over each bin by Simpson's rule.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special

Z_MASS, Z_WIDTH = 91.1876, 2.4952


@dataclass(frozen=True)
class Shape:
    parameters: tuple[str, ...]
    start: tuple[float, ...]
    limits: tuple[tuple[float, float], ...]
    fractions: Callable[..., np.ndarray]  # (params, edges, template) -> bin fractions summing to 1


def _normalised(values: np.ndarray) -> np.ndarray:
    values = np.maximum(values, 1e-300)
    return values / values.sum()


def centres(edges: np.ndarray) -> np.ndarray:
    return 0.5 * (edges[1:] + edges[:-1])


def _integrated(density: Callable[[np.ndarray], np.ndarray], edges: np.ndarray) -> np.ndarray:
    """Bin integrals by Simpson's rule: at high statistics the bin-centre value is biased near the peak."""
    ends = density(edges)
    return (ends[:-1] + 4 * density(centres(edges)) + ends[1:]) * np.diff(edges) / 6


def _template_gauss(p: np.ndarray, edges: np.ndarray, template: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    counts, t_edges = template
    t_centres = centres(t_edges)
    cdf = special.ndtr((edges[None, :] - t_centres[:, None] - p[0]) / p[1])
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
        ("m0", "sigma1", "sigma2", "f"),
        (Z_MASS, 1.0, 3.0, 0.7),
        ((86.0, 96.0), (0.1, 4.0), (0.5, 10.0), (0.0, 1.0)),
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
