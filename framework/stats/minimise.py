"""pyhf as every fit here uses it: the numpy backend with MINUIT, the smooth interpolation codes,
quiet, and a fallback optimiser where MINUIT does not converge."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

# smooth interpolation (ROOT HistFactory's and cabinetry's choice): exponential outside |theta| < 1 and a
# polynomial inside for normsys, polynomial + linear for histosys; pyhf's defaults have a kink at 0 that
# stops MIGRAD where a nuisance parameter ends up near its nominal value
SMOOTH = {"normsys": {"interpcode": "code4"}, "histosys": {"interpcode": "code4p"}}
T = TypeVar("T")


@contextmanager
def pyhf_session() -> Iterator[Any]:
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


def robustly(pyhf: Any, model: Any, compute: Callable[[], T]) -> T:
    """`compute` with MINUIT at strategy 0 (these fits need no Hesse matrix), again at strategy 1
    where that ends above its EDM goal (most fixed-mu fits on the AGC model), and with scipy's SLSQP
    where MINUIT does not converge; with scipy's alone where only the parameter of interest is free.
    Strategy 1 before SLSQP: its minima are more precise (-2 ln L up to 4e-4 lower on the AGC model,
    where SLSQP's put enough noise in sqrt(qtilde) to mislead the expected limits' interpolation).
    Not strategy 1 first: it would halve the AGC fit's time (19 parameters) but more than double the
    Higgs model's (64: its Hesse matrices)."""
    if len(model.config.suggested_init()) == 1:
        pyhf.set_backend("numpy", pyhf.optimize.scipy_optimizer())
        return compute()
    try:
        for strategy in (0, 1):
            pyhf.set_backend("numpy", pyhf.optimize.minuit_optimizer(strategy=strategy))
            try:
                return compute()
            except pyhf.exceptions.FailedMinimization:
                continue
        pyhf.set_backend("numpy", pyhf.optimize.scipy_optimizer())
        return compute()
    finally:
        pyhf.set_backend("numpy", pyhf.optimize.minuit_optimizer())


def twice_nll(model: Any, pars: Any, data: Any) -> float:
    """-2 ln L of `data` at the parameters `pars`."""
    return float(-2 * model.logpdf(pars, data)[0])
