"""Files for fits and sharing: combine-style shapes (ROOT TH1 via uproot) and correctionlib ratios."""

from __future__ import annotations

from pathlib import Path

import hist
import numpy as np

from framework.errors import ConfigError
from framework.present.project import Projection, blinded, project
from framework.present.results import DATA, RunOutputs, sum_histograms
from framework.present.views import CombineView, CorrectionView, Presentation

DATA_OBS = "data_obs"


def _th1(p: Projection, values: np.ndarray, variances: np.ndarray) -> hist.Hist:
    axis = p.axes[0]
    edges = (
        axis.edges
        if hasattr(axis, "edges") and not isinstance(axis, hist.axis.StrCategory | hist.axis.IntCategory)
        else np.arange(len(axis) + 1.0)
    )
    h = hist.Hist(
        hist.axis.Variable(edges, name=axis.name, label=axis.label or axis.name), storage=hist.storage.Weight()
    )
    view = h.view()
    view.value = values
    view.variance = variances
    return h


def combine_shapes(outputs: RunOutputs, presentation: Presentation, export: CombineView) -> dict[str, hist.Hist]:
    """{'channel/process': TH1-like hist}, with `process_<syst>Up/Down` and `data_obs` per channel.

    Systematics with indexed members (e.g. scale_0..scale_8) are written as their envelope.
    A channel with any blinded bin gets the simulation total (Asimov) as data_obs.
    """
    processes = [p for p in presentation.processes if p in outputs.processes()]
    out: dict[str, hist.Hist] = {}
    for channel, cuts in export.channels:
        for process in processes:
            p = project(outputs.histogram(process, export.histogram), [export.axis], cuts).rebinned(export.rebin)
            out[f"{channel}/{process}"] = _th1(p, p.nominal, p.nominal_variance)
            for name, (up, down) in p.templates(outputs.systematics).items():
                out[f"{channel}/{process}_{name}Up"] = _th1(p, up, p.nominal_variance)
                out[f"{channel}/{process}_{name}Down"] = _th1(p, down, p.nominal_variance)
        hidden = True
        if outputs.has_data():
            data = outputs.histogram(DATA, export.histogram)
            hidden = bool(blinded(data, [export.axis], cuts, presentation.blind).any())
        if hidden:
            total = sum_histograms([outputs.histogram(p, export.histogram) for p in processes])
            p = project(total, [export.axis], cuts).rebinned(export.rebin)
        else:
            p = project(data, [export.axis], cuts).rebinned(export.rebin)
        out[f"{channel}/{DATA_OBS}"] = _th1(p, p.nominal, p.nominal_variance)
    return out


def write_combine(path: Path, shapes: dict[str, hist.Hist]) -> None:
    import uproot

    with uproot.recreate(path) as f:
        for key, h in shapes.items():
            f[key] = h


def correction_ratio(outputs: RunOutputs, presentation: Presentation, export: CorrectionView) -> hist.Hist:
    """numerator / denominator over the correction's axes (nominal); 1 where the denominator is not positive."""

    def summed(names: tuple[str, ...]) -> Projection:
        return project(
            sum_histograms([outputs.histogram(n, export.histogram) for n in names]), export.axes, export.cuts
        )

    if DATA in export.numerator + export.denominator:
        if not outputs.has_data():
            raise ConfigError(f"correction {export.name!r} needs data, and the run has no data sample", export.origin)
        data = outputs.histogram(DATA, export.histogram)
        if blinded(data, export.axes, export.cuts, presentation.blind).any():
            raise ConfigError(
                f"correction {export.name!r} would use data from a blinded region",
                export.origin,
                "restrict its 'slices' to unblinded categories or ranges",
            )
    numerator, denominator = summed(export.numerator), summed(export.denominator)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(denominator.nominal > 0, numerator.nominal / denominator.nominal, 1.0)
    h = hist.Hist(*numerator.axes, storage=hist.storage.Double(), name=export.name, label="ratio")
    h.view()[...] = ratio
    return h


def write_corrections(path: Path, outputs: RunOutputs, presentation: Presentation) -> None:
    import correctionlib.convert
    import correctionlib.schemav2 as cs

    corrections = []
    for export in presentation.corrections:
        correction = correctionlib.convert.from_histogram(correction_ratio(outputs, presentation, export), flow="clamp")
        correction.description = export.description
        corrections.append(correction)
    document = cs.CorrectionSet(
        schema_version=2, description="Ratios of histograms (rdf-analysis export)", corrections=corrections
    )
    path.write_text(document.model_dump_json(exclude_unset=True, indent=1))
