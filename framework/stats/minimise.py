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
    """`compute` with MINUIT at strategy 0 (its fits need no Hesse matrix), again with scipy's SLSQP
    where MINUIT does not converge (fits on Asimov data with many per-bin parameters); with scipy's
    alone where only the parameter of interest is free."""
    if len(model.config.suggested_init()) == 1:
        pyhf.set_backend("numpy", pyhf.optimize.scipy_optimizer())
        return compute()
    try:
        pyhf.set_backend("numpy", pyhf.optimize.minuit_optimizer(strategy=0))
        return compute()
    except pyhf.exceptions.FailedMinimization:
        pyhf.set_backend("numpy", pyhf.optimize.scipy_optimizer())
        return compute()
    finally:
        pyhf.set_backend("numpy", pyhf.optimize.minuit_optimizer())


def twice_nll(model: Any, pars: Any, data: Any) -> float:
    """-2 ln L of `data` at the parameters `pars`."""
    return float(-2 * model.logpdf(pars, data)[0])
