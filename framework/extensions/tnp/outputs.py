"""The outputs of a tag-and-probe measurement, in OUT/: `tnp_scale_factors.json` (correctionlib),
and in OUT/tnp/: the efficiencies and scale factors as `hist` objects (`efficiencies.hist.zip`),
tables (`scale_factors.md/.csv`, `fits.csv`, `fits_to_check.md`), `summary.json` and plots (one
summary per efficiency, one per nominal data fit: plots.py).
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import hist
import numpy as np

from framework.config.load import LoadedConfig
from framework.config.schema.presentation import PlotStyleSpec
from framework.extensions.tnp.measure import Measurement, bin_label, measure
from framework.extensions.tnp.plots import plot_fit, plot_summary
from framework.present.results import load_outputs
from framework.present.views import plot_lumi

if TYPE_CHECKING:
    from framework.present.tables import Cell, Table

CORRECTION_FILE = "tnp_scale_factors.json"


def correction_set(m: Measurement) -> Any:
    """One correction per efficiency: inputs = the binning variables and `scale_factors`
    (nominal, systup, systdown = nominal +- stat (+) syst, stat, syst), as muon groups ship them."""
    import correctionlib.schemav2 as cs

    tnp = m.tnp
    corrections = []
    for eff in tnp.efficiencies:
        s = m.scale_factor(eff)
        total = np.sqrt(s["stat"] ** 2 + s["syst"] ** 2)
        keys = {
            "nominal": s["sf"],
            "systup": s["sf"] + total,
            "systdown": s["sf"] - total,
            "stat": s["stat"],
            "syst": s["syst"],
        }
        content = [
            cs.CategoryItem(
                key=key,
                value=cs.MultiBinning(
                    nodetype="multibinning",
                    inputs=list(tnp.binning),
                    edges=[list(b.edges) for b in tnp.binning.values()],
                    content=[float(v) for v in values.ravel()],
                    flow=tnp.flow,
                ),
            )
            for key, values in keys.items()
        ]
        corrections.append(
            cs.Correction(
                name=eff,
                description=f"tag-and-probe scale factor {eff} (data / simulation)",
                version=1,
                inputs=[
                    *(cs.Variable(name=n, type="real", description=b.label) for n, b in tnp.binning.items()),
                    cs.Variable(
                        name="scale_factors", type="string", description="nominal, systup, systdown, stat, syst"
                    ),
                ],
                output=cs.Variable(name="weight", type="real"),
                data=cs.Category(nodetype="category", input="scale_factors", content=content),
            )
        )
    return cs.CorrectionSet(schema_version=2, description="tag and probe (rdf-analysis)", corrections=corrections)


def efficiency_histograms(m: Measurement) -> dict[str, hist.Hist]:
    """Per efficiency: binning axes x quantity (eff_data, eff_mc, sf) x uncertainty (value, stat_low,
    stat_high, syst)."""
    out = {}
    for eff in m.tnp.efficiencies:
        h = hist.Hist(
            *[hist.axis.Variable(b.edges, name=n, label=b.label or n) for n, b in m.tnp.binning.items()],
            hist.axis.StrCategory(["eff_data", "eff_mc", "sf"], name="quantity"),
            hist.axis.StrCategory(["value", "stat_low", "stat_high", "syst"], name="uncertainty"),
            storage=hist.storage.Double(),
            name=eff,
        )
        s = m.scale_factor(eff)
        view = h.view()
        for q, kind in enumerate(("data", "mc")):
            nominal = m.values(kind, eff, "nominal")
            low, high = m.errors(kind, eff, "nominal")
            shifts = {v: m.values(kind, eff, v) - nominal for v in m.variant_names[1:]}
            view[..., q, 0], view[..., q, 1], view[..., q, 2] = nominal, low, high
            view[..., q, 3] = m.combine(shifts, nominal)
        view[..., 2, 0], view[..., 2, 1], view[..., 2, 2], view[..., 2, 3] = s["sf"], s["stat"], s["stat"], s["syst"]
        out[eff] = h
    return out


def _scale_factor_table(m: Measurement) -> Table:
    """Per efficiency and bin: the data and simulation efficiencies and the scale factor."""
    from framework.present.tables import Measured, Table

    tnp = m.tnp
    rows: list[list[Cell]] = []
    for eff in tnp.efficiencies:
        s = m.scale_factor(eff)
        for index in np.ndindex(*m.shape):
            k = int(np.ravel_multi_index(index, m.shape))
            d, mc = m.results["data", eff, "nominal"][k], m.results["mc", eff, "nominal"][k]
            rows.append(
                [
                    eff,
                    bin_label(tnp, index),
                    Measured(d.value, d.error),
                    Measured(mc.value, mc.error),
                    Measured(
                        float(s["sf"][index]), float(s["stat"][index]), float(s["syst"][index]), float(s["syst"][index])
                    ),
                ]
            )
    return Table(
        "scale_factors",
        "Efficiencies and scale factors",
        ["efficiency", "bin", "data", "simulation", "scale factor"],
        rows,
        "value ± stat; the scale factor also +syst/-syst (alternatives in quadrature).",
    )


def _fit_tables(m: Measurement) -> list[Table]:
    """Every fit, and those a physicist should look at."""
    from framework.present.tables import Table

    tnp = m.tnp
    fits: list[list[Cell]] = []
    check: list[list[Cell]] = []
    for task, results in m.fits():
        r = results
        row: list[Cell] = [
            task.kind,
            task.efficiency,
            task.variant,
            bin_label(tnp, task.bin),
            r.value,
            r.error_low,
            r.error_high,
            "yes" if r.converged else "no",
            r.chi2_ndf,
            r.message,
        ]
        fits.append(row)
        if not r.converged or r.chi2_ndf > tnp.chi2_limit or r.message:
            check.append(row)
    columns = [
        "sample",
        "efficiency",
        "variant",
        "bin",
        "efficiency value",
        "error low",
        "error high",
        "converged",
        "chi2/ndf",
        "message",
    ]
    return [
        Table("fits", "Every fit", columns, fits),
        Table(
            "fits_to_check",
            f"Fits that did not converge, have chi2/ndf > {tnp.chi2_limit:g} or a remark",
            columns,
            check,
            "Non-converged fits are replaced by the count in the outputs (and say so).",
        ),
    ]


def tables(m: Measurement) -> list[Table]:
    """The tables of OUT/tnp/: the scale factors, every fit, the fits to check."""
    return [_scale_factor_table(m), *_fit_tables(m)]


def write_tnp_outputs(
    m: Measurement, outdir: Path, style: PlotStyleSpec | None = None, lumi_inv_pb: float | None = None
) -> list[Path]:
    """Everything in OUT/tnp/; plots in the analysis' `style` (default: the defaults), labelled with `lumi_inv_pb`."""
    import uhi.io.zip

    style = style or PlotStyleSpec()

    folder = outdir / "tnp"
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    correction = outdir / CORRECTION_FILE
    correction.write_text(correction_set(m).model_dump_json(exclude_unset=True, indent=1))
    written.append(correction)
    with zipfile.ZipFile(folder / "efficiencies.hist.zip", "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, h in efficiency_histograms(m).items():
            uhi.io.zip.write(z, name, h)
    written.append(folder / "efficiencies.hist.zip")
    for table in tables(m):
        written += table.write(folder)
    for eff in m.tnp.efficiencies:
        plot_summary(m, eff, folder / "plots" / f"{eff}.png", style, lumi_inv_pb)
    if m.tnp.plot_fits:
        for task, result in m.fits():
            if task.kind == "data" and task.variant == "nominal":
                name = "_".join(str(i) for i in task.bin)
                plot_fit(
                    task,
                    result,
                    f"{task.efficiency}: {bin_label(m.tnp, task.bin)}",
                    folder / "plots" / "fits" / task.efficiency / f"bin_{name}.png",
                    style,
                    lumi_inv_pb,
                )
    (folder / "summary.json").write_text(
        json.dumps(
            {eff: {k: v.tolist() for k, v in m.scale_factor(eff).items()} for eff in m.tnp.efficiencies}, indent=1
        )
    )
    return written


def run_tnp(config: LoadedConfig, outdir: Path) -> list[Path]:
    """The tag-and-probe stage of `run-analysis`: measure from the run's outputs and write the results."""
    outputs = load_outputs(outdir)
    return write_tnp_outputs(measure(config, outputs), outdir, config.spec.style, plot_lumi(config))
