"""CLs 95% upper limits on mu (qtilde, asymptotic formulae of Cowan, Cranmer, Gross and Vitells as
pyhf implements them): observed, and expected for the background only at -2, -1, 0, +1, +2 sigma.

CLs at mu needs two numbers: sqrt(qtilde_mu) of the data, and sqrt(qtilde_mu) of the background-only
Asimov data set (nuisance parameters profiled on the data at mu = 0, as pyhf does); the expected CLs
depend on the second alone. So the free minima are taken once, without fits (the data's at the fit
of mu, the Asimov data's at the parameters that made it), each tested mu costs one fixed-mu fit on
each data set, and the expected limits need no data fit at all: in each band the Asimov value K that
gives CLs = 5% is solved without fits, then the mu where sqrt(qtilde_mu(Asimov)) = K by interpolating
log mu against log sqrt(qtilde) over every mu fitted so far (nearly a straight line). Above a
sqrt(qtilde_mu(Asimov)) of 8 the CLs no longer depend on it (to 1e-10): the Asimov fits stop there,
which keeps them away from signals that dwarf the background (fits MINUIT cannot finish)."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from scipy import interpolate, optimize

from framework.stats.minimise import robustly, twice_nll

LEVEL = 0.05  # CLs upper limits at 95% confidence
SATURATED = 8.0  # sqrt(qtilde_mu) of the Asimov data beyond which CLs do not depend on it
BANDS = (-2, -1, 0, 1, 2)

log = logging.getLogger(__name__)


class Limits:
    """The upper limits of one model and data set."""

    def __init__(self, pyhf: Any, model: Any, data: Any, best: Any) -> None:
        """`best`: the parameters of the free fit to the data."""
        self.pyhf, self.model, self.data = pyhf, model, data
        self.highest = model.config.suggested_bounds()[model.config.poi_index][1]
        self.asimov, asimov_pars = self._fit(
            lambda: pyhf.infer.calculators.generate_asimov_data(
                0.0,
                data,
                model,
                model.config.suggested_init(),
                model.config.suggested_bounds(),
                model.config.suggested_fixed(),
                return_fitted_pars=True,
            )
        )
        # the free minima without fits: the Asimov data's is at the parameters that made it (a refit at
        # MINUIT's strategy 0 stopped 0.2 above it on the AGC model, which moved the -2 sigma limit by 9%)
        self.free_asimov = twice_nll(model, asimov_pars, self.asimov)
        self.free_data = twice_nll(model, best, data)
        self.mu_hat = float(best[model.config.poi_index])
        self.asimov_sqrt_q: dict[float, float] = {}  # mu -> sqrt(qtilde_mu) of the Asimov data (its mu-hat: 0)

    def _fit(self, compute: Any) -> Any:
        return robustly(self.pyhf, self.model, compute)

    def _fixed_mu(self, data: Any, mu: float) -> float:
        """-2 ln L of `data`, profiled at `mu`."""
        return float(
            self._fit(lambda: self.pyhf.infer.mle.fixed_poi_fit(mu, data, self.model, return_fitted_val=True))[1]
        )

    def _asimov(self, mu: float) -> float:
        """sqrt(qtilde_mu) of the Asimov data, fitted."""
        if mu not in self.asimov_sqrt_q:
            self.asimov_sqrt_q[mu] = max(self._fixed_mu(self.asimov, mu) - self.free_asimov, 0.0) ** 0.5
        return self.asimov_sqrt_q[mu]

    def _asimov_or_saturated(self, mu: float) -> float:
        """sqrt(qtilde_mu) of the Asimov data, or a lower bound of it above SATURATED. The bound takes
        q_mu / mu not to fall as mu grows (so sqrt(q) grows at least like sqrt(mu)): a Poisson count's
        does not, and a bound twice too high would still leave the CLs within 1%. Otherwise fitted at
        doubling mu from the highest mu fitted below."""
        step = max((m for m in self.asimov_sqrt_q if m <= mu), default=mu)
        while True:
            bound = self._asimov(step) * (mu / step) ** 0.5
            if step >= mu or bound >= SATURATED:
                return bound
            step = min(2 * step, mu)

    def _cls(self, test: float, sqrt_q_asimov: float) -> float:
        """pyhf's CLs of a value of its (shifted) qtilde test statistic."""
        distribution = self.pyhf.infer.calculators.AsymptoticTestStatDistribution
        signal, background = distribution(-sqrt_q_asimov), distribution(0.0)
        return float(signal.pvalue(test) / background.pvalue(test))

    def observed_cls(self, mu: float) -> float:
        q = 0.0 if self.mu_hat > mu else max(self._fixed_mu(self.data, mu) - self.free_data, 0.0)
        sqrt_q, sqrt_q_asimov = q**0.5, self._asimov_or_saturated(mu)
        if sqrt_q <= sqrt_q_asimov:
            return self._cls(sqrt_q - sqrt_q_asimov, sqrt_q_asimov)
        return self._cls((q - sqrt_q_asimov**2) / (2 * sqrt_q_asimov), sqrt_q_asimov)

    def observed(self, start: float) -> float:
        """The observed limit: bracketed from `start`, then Brent's method on CLs(mu) - 5%."""
        tested: dict[float, float] = {}

        def f(mu: float) -> float:
            if mu not in tested:
                tested[mu] = self.observed_cls(mu) - LEVEL
            return tested[mu]

        low = high = min(max(start, 1e-3), self.highest)
        while f(high) > 0 and high < self.highest:
            low, high = high, min(high * 1.5, self.highest)
        while f(low) < 0 and low > 1e-4:
            low, high = low / 1.5, low
        return float(optimize.brentq(f, low, high, rtol=1e-3))

    def _predicted(self, k: float) -> float:
        """The mu where sqrt(qtilde_mu) of the Asimov data reaches k, from the fits so far."""
        mus = sorted(self.asimov_sqrt_q)
        log_mu, log_q = np.log(mus), np.log([max(self.asimov_sqrt_q[m], 1e-12) for m in mus])
        if len(mus) == 1:
            return float(np.exp(log_mu[0] + np.log(k) - log_q[0]))
        line = interpolate.interp1d(log_q, log_mu, fill_value="extrapolate", assume_sorted=False)
        return float(np.exp(line(np.log(k))))

    def expected(self, start: float) -> list[float]:
        """The expected limits, -2 sigma first; `start` is a first guess of the median."""
        self._asimov(start)
        limits = []
        distribution = self.pyhf.infer.calculators.AsymptoticTestStatDistribution
        for band in BANDS:
            # pyhf's band n is the background's test statistic at its n sigma: n = +2 gives the lowest limit
            test = float(distribution(0.0).expected_value(-band))
            needed = float(optimize.brentq(lambda k, t=test: self._cls(t, k) - LEVEL, 1e-3, 40.0, xtol=1e-10))
            mu = self._predicted(needed)
            for _ in range(10):
                if abs(self._asimov(mu) - needed) <= 1e-3 * needed:
                    break
                mu = self._predicted(needed)
            else:
                log.warning(
                    "the expected limit at %+d sigma is approximate: sqrt(qtilde) of the Asimov data is %.4g at "
                    "mu = %.4g, where %.4g was sought",
                    band,
                    self._asimov(mu),
                    mu,
                    needed,
                )
            limits.append(mu)
        return limits
