"""Projections of the output histograms onto a `View`: per process, with systematic entries and blinding."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import hist
import numpy as np

from framework.present.results import (
    RunOutputs,
    all_indices,
    flow_index,
    range_indices,
    reduce_view,
    systematic_shifts,
    total_shift,
    variation_templates,
)
from framework.present.views import AxisCut


@dataclass(frozen=True)
class Projection:
    """Values and variances over the kept axes' visible bins, systematic entries last."""

    axes: list[Any]  # the kept hist axes
    entries: list[str]
    values: np.ndarray
    variances: np.ndarray

    @property
    def nominal(self) -> np.ndarray:
        return self.values[..., self.entries.index("nominal")]

    @property
    def nominal_variance(self) -> np.ndarray:
        return self.variances[..., self.entries.index("nominal")]

    def templates(self, systematics: Sequence[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        return variation_templates(self.values, self.entries, systematics)

    def shifts(self, systematics: Sequence[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        return systematic_shifts(self.values, self.entries, systematics)

    def band(self, systematics: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Up and down systematic shifts of the nominal, per-systematic shifts added in quadrature."""
        return total_shift(self.shifts(systematics), self.nominal)

    def rebinned(self, factor: int | None) -> Projection:
        """Merge `factor` neighbouring bins of the first kept axis."""
        if not factor:
            return self

        def merge(a: np.ndarray) -> np.ndarray:
            return a.reshape(a.shape[0] // factor, factor, *a.shape[1:]).sum(axis=1)

        axis = self.axes[0]
        edges = axis.edges[::factor]
        merged = hist.axis.Variable(edges, name=axis.name, label=axis.label)
        return Projection([merged, *self.axes[1:]], self.entries, merge(self.values), merge(self.variances))


def cut_indices(axis: Any, cut: AxisCut) -> list[int]:
    """Flow positions of the bins a cut keeps."""
    if cut.range is not None:
        return range_indices(axis, *cut.range)
    if cut.other:
        return [all_indices(axis)[-1]]
    if cut.values is None:
        return all_indices(axis)
    return list(dict.fromkeys(flow_index(axis, v) for v in cut.values))


def project(h: hist.Hist, keep: Sequence[str], cuts: Sequence[AxisCut]) -> Projection:
    axes = [a for a in h.axes if a.name != "systematic"]
    by_name = {a.name: a for a in axes}
    chosen = {c.axis: cut_indices(by_name[c.axis], c) for c in cuts}
    view: Any = h.view(flow=True)  # a weighted view: a record array with .value and .variance
    return Projection(
        [by_name[k] for k in keep],
        list(h.axes["systematic"]),
        reduce_view(view.value, axes, keep, chosen),
        reduce_view(view.variance, axes, keep, chosen),
    )


def blinded(
    h: hist.Hist, keep: Sequence[str], cuts: Sequence[AxisCut], regions: Sequence[Sequence[AxisCut]]
) -> np.ndarray:
    """Which kept bins show events from a blinded region.

    A region restricts only the axes this histogram has; on the others it covers everything,
    so a histogram that cannot tell the region apart is blinded wherever it could hold it.
    """
    axes = [a for a in h.axes if a.name != "systematic"]
    by_name = {a.name: a for a in axes}
    shape = [len(all_indices(a)) for a in axes]
    mask = np.zeros(shape, dtype=bool)
    for region in regions:
        inside = np.ones(shape, dtype=bool)
        for cut in region:
            if cut.axis not in by_name:
                continue
            position = list(by_name).index(cut.axis)
            picked = np.zeros(shape[position], dtype=bool)
            picked[cut_indices(by_name[cut.axis], cut)] = True
            inside &= picked.reshape([-1 if i == position else 1 for i in range(len(axes))])
        mask |= inside
    chosen = {c.axis: cut_indices(by_name[c.axis], c) for c in cuts}
    return np.asarray(reduce_view(mask[..., None].astype(float), axes, keep, chosen)[..., 0] > 0)


def process_projections(
    outputs: RunOutputs, histogram: str, keep: Sequence[str], cuts: Sequence[AxisCut], processes: Sequence[str]
) -> dict[str, Projection]:
    return {p: project(outputs.histogram(p, histogram), keep, cuts) for p in processes}
