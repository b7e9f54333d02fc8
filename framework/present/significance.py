"""Local significance of a signal from a binned Poisson likelihood (statistical uncertainties only).

In the bins of the window, with signal s_i, background b_i (all other simulated processes,
nominal) and observed n_i:

    ln L(mu) = sum_i [ n_i ln(mu s_i + b_i) - (mu s_i + b_i) ]
    q0 = 2 [ ln L(mu_hat) - ln L(0) ]  for mu_hat > 0 (else 0),   Z = sqrt(q0)

Observed: n_i = data, mu_hat from a bounded 1D maximisation (mu >= 0). Expected: the Asimov
data set n_i = s_i + b_i (mu = 1), Z = sqrt(2 sum [(s+b) ln(1 + s/b) - s]). The background
is taken as known: no systematic uncertainty or nuisance parameter enters.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize

from framework.present.project import blinded, project
from framework.present.results import DATA, RunOutputs, sum_histograms
from framework.present.views import Presentation, SignificanceView


@dataclass(frozen=True)
class Significance:
    name: str
    signal: float
    background: float
    observed: float | None  # None without data or where it is blinded
    expected_z: float
    observed_z: float | None
    mu_hat: float | None


def _log_likelihood(mu: float, s: np.ndarray, b: np.ndarray, n: np.ndarray) -> float:
    expected = np.maximum(mu * s + b, 1e-300)
    return float(np.sum(n * np.log(expected) - expected))


def local_significance(s: np.ndarray, b: np.ndarray, n: np.ndarray | None) -> tuple[float, float | None, float | None]:
    """(expected Z, observed Z, fitted signal strength) for bins with s, b and observed n."""
    keep = b > 0
    s, b = s[keep], b[keep]
    expected = float(np.sqrt(max(2 * np.sum((s + b) * np.log1p(s / b) - s), 0.0)))
    if n is None:
        return expected, None, None
    n = n[keep]
    fit = optimize.minimize_scalar(
        lambda mu: -_log_likelihood(mu, s, b, n), bounds=(0.0, 100.0), method="bounded", options={"xatol": 1e-8}
    )
    mu_hat = float(fit.x)
    q0 = 2 * (_log_likelihood(mu_hat, s, b, n) - _log_likelihood(0.0, s, b, n)) if mu_hat > 0 else 0.0
    return expected, float(np.sqrt(max(q0, 0.0))), mu_hat


def _window(view: SignificanceView, edges: np.ndarray) -> np.ndarray:
    if view.range is None:
        return np.ones(len(edges) - 1, dtype=bool)
    return (edges[:-1] >= view.range[0] - 1e-9) & (edges[1:] <= view.range[1] + 1e-9)


def significances(outputs: RunOutputs, presentation: Presentation) -> list[Significance]:
    found = []
    simulated = [p for p in presentation.processes if p in outputs.processes()]
    for view in presentation.significance:
        signal = project(
            sum_histograms([outputs.histogram(p, view.histogram) for p in view.signal]), [view.axis], view.cuts
        )
        background_processes = [p for p in simulated if p not in view.signal]
        background = project(
            sum_histograms([outputs.histogram(p, view.histogram) for p in background_processes]), [view.axis], view.cuts
        )
        inside = _window(view, np.asarray(signal.axes[0].edges))
        s, b = signal.nominal[inside], background.nominal[inside]
        n = None
        if outputs.has_data():
            data = outputs.histogram(DATA, view.histogram)
            if not blinded(data, [view.axis], view.cuts, presentation.blind)[inside].any():
                n = project(data, [view.axis], view.cuts).nominal[inside]
        expected, observed, mu_hat = local_significance(s, b, n)
        found.append(
            Significance(
                view.name,
                float(s.sum()),
                float(b.sum()),
                None if n is None else float(n.sum()),
                expected,
                observed,
                mu_hat,
            )
        )
    return found
