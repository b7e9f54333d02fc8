"""Normalisation of simulation to luminosity x cross-section / sum of generator weights: the one
definition, used by a run (`framework.engine.run`) and by the merge of batch parts (`merge`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

import hist
from boost_histogram.view import WeightedSumView

from framework.errors import ExecutionError
from framework.output.format import CutflowRow


def normalisation(sample: str, lumi: float, xsec: float, sum_weights: float | None) -> float:
    """The factor lumi x xsec / sum of generator weights of a simulated sample."""
    if not sum_weights:
        raise ExecutionError(f"sample {sample!r}: the sum of generator weights is zero; cannot normalise")
    return lumi * xsec / sum_weights


def normalise(histograms: Iterable[hist.Hist], cutflow: Iterable[CutflowRow], norm: float) -> list[CutflowRow]:
    """Scale the histograms in place (values x norm, variances x norm²) and return the cutflow scaled
    the same way. The order of the products is part of the results: outputs stay bit-identical."""
    if norm != 1.0:
        for h in histograms:
            view = cast(WeightedSumView, h.view(flow=True))  # Weight storage
            view.value *= norm
            view.variance *= norm * norm
    return [
        row.model_copy(
            update={"weighted": row.weighted * norm, "weighted_variance": row.weighted_variance * norm * norm}
        )
        for row in cutflow
    ]
