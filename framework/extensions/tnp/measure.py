"""Tag and probe after the event loop: efficiencies, scale factors, systematics and outputs.

From the `tnp` histogram of every sample (data summed, simulation summed):

    for each efficiency, variant (nominal and each systematic alternative) and probe bin:
        data: fit (or count), simulation: count (or fit)        -> efficiencies
    scale factor = data / simulation; stat from the nominal; syst = alternatives in quadrature

Outputs in OUT/: `tnp_scale_factors.json` (correctionlib), and in OUT/tnp/: the efficiencies
and scale factors as `hist` objects (`efficiencies.hist.zip`), tables (`scale_factors.md/.csv`,
`fits.csv`, `fits_to_check.md`) and plots (one per nominal data fit, one summary per efficiency).
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import time
import zipfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hist
import numpy as np

from framework.errors import ConfigError
from framework.extensions.tnp.fitting import Efficiency, FitInput, clopper_pearson, fit_efficiency, weighted_count
from framework.config.load import LoadedConfig
from framework.present.results import RunOutputs, load_outputs, sum_histograms
from framework.extensions.tnp.schema import TnpSpec
from framework.extensions.tnp.config import TNP_HISTOGRAM

CORRECTION_FILE = "tnp_scale_factors.json"


@dataclass(frozen=True)
class Variant:
    """The nominal measurement or one systematic alternative of it."""

    name: str
    tag: int
    signal: str
    background: str
    window: tuple[float, float]
    rebin: int


@dataclass(frozen=True)
class Task:
    kind: str  # data | mc
    efficiency: str
    variant: str
    bin: tuple[int, ...]
    method: str  # fit | count
    weighted: bool
    signal: str
    background: str
    simultaneous: bool
    data: FitInput


def variants(tnp: TnpSpec) -> list[Variant]:
    tags = ["", *tnp.tag_variations]
    fit = tnp.fit
    out = [Variant("nominal", 0, fit.signal, fit.background, fit.range, fit.rebin)]
    for name, alt in tnp.systematics.items():
        out.append(
            Variant(
                name,
                tags.index(alt.tag) if alt.tag else 0,
                alt.signal or fit.signal,
                alt.background or fit.background,
                alt.range or fit.range,
                alt.rebin or fit.rebin,
            )
        )
    return out


def _rebinned(values: np.ndarray, edges: np.ndarray, factor: int) -> tuple[np.ndarray, np.ndarray]:
    n = len(values) // factor * factor
    return values[:n].reshape(-1, factor).sum(axis=1), edges[: n + 1 : factor]


def _fit_input(h: hist.Hist, template: hist.Hist, tag: int, eff: int, index: tuple[int, ...], names: list[str],
               variant: Variant) -> tuple[FitInput, tuple[float, float, float, float]]:
    """Pass and fail in the fit range (rebinned), the templates over the whole window, and the
    summed weights and squared weights of pass and fail in the range (for counting)."""
    where = {"tag": tag, "efficiency": eff, "systematic": "nominal", **dict(zip(names, index))}
    edges = h.axes["mass"].edges
    sides = []
    for source in (h, template):
        for passed in (1, 0):
            s = source[{**where, "passed": passed}]
            sides.append((s.values(), s.variances()))
    (p, p2), (f, f2), (tp, _), (tf, _) = sides
    p, e_fit = _rebinned(p, edges, variant.rebin)
    f, _ = _rebinned(f, edges, variant.rebin)
    p2, _ = _rebinned(p2, edges, variant.rebin)
    f2, _ = _rebinned(f2, edges, variant.rebin)
    low, high = variant.window
    inside = (e_fit[:-1] >= low - 1e-9) & (e_fit[1:] <= high + 1e-9)
    cut = np.flatnonzero(inside)
    fit_edges = e_fit[cut[0] : cut[-1] + 2]
    sums = (float(p[inside].sum()), float(p2[inside].sum()), float(f[inside].sum()), float(f2[inside].sum()))
    return FitInput(fit_edges, p[inside], f[inside], (tp, edges), (tf, edges)), sums


def run_task(task: Task, sums: tuple[float, float, float, float]) -> Efficiency:
    if task.method == "fit":
        return fit_efficiency(task.data, task.signal, task.background, task.simultaneous)
    passed, passed_w2, failed, failed_w2 = sums
    if task.weighted:
        return weighted_count(passed, passed_w2, failed, failed_w2)
    return clopper_pearson(passed, passed + failed)


def _run(args: tuple[Task, tuple[float, float, float, float]]) -> Efficiency:
    return run_task(*args)


@dataclass
class Measurement:
    """Efficiencies per (kind, efficiency, variant) as arrays over the probe bins, and every fit."""

    tnp: TnpSpec
    shape: tuple[int, ...]
    results: dict[tuple[str, str, str], list[Efficiency]]
    tasks: list[Task]

    def values(self, kind: str, eff: str, variant: str) -> np.ndarray:
        return np.array([r.value for r in self.results[kind, eff, variant]]).reshape(self.shape)

    def errors(self, kind: str, eff: str, variant: str) -> tuple[np.ndarray, np.ndarray]:
        rs = self.results[kind, eff, variant]
        return (np.array([r.error_low for r in rs]).reshape(self.shape), np.array([r.error_high for r in rs]).reshape(self.shape))

    def scale_factor(self, eff: str) -> dict[str, np.ndarray]:
        """Nominal scale factor with stat (from data and simulation) and syst (alternatives) uncertainties."""
        d, m = self.values("data", eff, "nominal"), self.values("mc", eff, "nominal")
        sf = d / m
        dl, dh = self.errors("data", eff, "nominal")
        ml, mh = self.errors("mc", eff, "nominal")
        stat = sf * np.sqrt(((dl + dh) / 2 / d) ** 2 + ((ml + mh) / 2 / m) ** 2)
        shifts = {v: self.values("data", eff, v) / self.values("mc", eff, v) - sf for v in self.variant_names[1:]}
        return {"sf": sf, "stat": stat, "syst": self.combine(shifts, sf), **{f"shift_{v}": s for v, s in shifts.items()}}

    def combine(self, shifts: dict[str, np.ndarray], like: np.ndarray) -> np.ndarray:
        """Quadrature sum: |shift| of a single alternative, half the spread (max - min) of a group's."""
        groups: dict[str, list[np.ndarray]] = {}
        for name, shift in shifts.items():
            groups.setdefault(self.tnp.systematics[name].group or f"single:{name}", []).append(shift)
        total = np.zeros_like(like)
        for key, members in groups.items():
            if key.startswith("single:"):
                total = total + members[0] ** 2
            else:
                stack = np.stack(members)
                total = total + (0.5 * (stack.max(axis=0) - stack.min(axis=0))) ** 2
        return np.sqrt(total)

    @property
    def variant_names(self) -> list[str]:
        return [v.name for v in variants(self.tnp)]


def measure(config: LoadedConfig, outputs: RunOutputs, workers: int | None = None, progress: bool = True) -> Measurement:
    tnp = config.spec.tnp
    assert tnp is not None
    data = [s.histograms[TNP_HISTOGRAM] for s in outputs.samples.values() if s.is_data]
    mc = [s.histograms[TNP_HISTOGRAM] for s in outputs.samples.values() if not s.is_data]
    if not data or not mc:
        raise ConfigError("tag and probe needs data and simulated samples", config.locate("samples"),
                          "declare at least one sample with is_data: true and one without")
    h_data, h_mc = sum_histograms(data), sum_histograms(mc)
    names = list(tnp.binning)
    shape = tuple(len(b.edges) - 1 for b in tnp.binning.values())
    jobs: list[tuple[Task, tuple[float, float, float, float]]] = []
    for (e, eff), variant, index in itertools.product(enumerate(tnp.efficiencies), variants(tnp), np.ndindex(*shape)):
        for kind, h, method in (("data", h_data, tnp.data_method), ("mc", h_mc, tnp.mc_method)):
            fit_input, sums = _fit_input(h, h_mc, variant.tag, e, index, names, variant)
            task = Task(kind, eff, variant.name, tuple(int(i) for i in index), method, kind == "mc", variant.signal,
                        variant.background, tnp.fit.simultaneous, fit_input)
            jobs.append((task, sums))
    empty = sorted({(t.kind, t.efficiency, t.bin) for t, sums in jobs if t.variant == "nominal" and sums[0] + sums[2] <= 0})
    if empty:
        listed = "; ".join(f"{kind} {eff} in {_bin_label(tnp, index)}" for kind, eff, index in empty[:5])
        raise ConfigError(
            f"{len(empty)} tag-and-probe bin(s) have no probes in the fit range: {listed}",
            config.locate("tnp", "binning"),
            "merge those bins (fewer edges) or widen the fit range; an efficiency needs probes",
        )
    workers = workers or tnp.workers
    fits = sum(1 for t, _ in jobs if t.method == "fit")
    start = time.perf_counter()
    if progress:
        print(f"tag and probe: {len(jobs)} efficiencies, {fits} of them fitted, on {workers} processes", file=sys.stderr)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with ProcessPoolExecutor(workers) as pool:
        found = []
        for i, result in enumerate(pool.map(_run, jobs, chunksize=max(1, len(jobs) // (8 * workers)))):
            found.append(result)
            if progress and (i + 1) % max(1, len(jobs) // 10) == 0:
                print(f"  {i + 1}/{len(jobs)} done, {time.perf_counter() - start:.1f} s", file=sys.stderr)
    results: dict[tuple[str, str, str], list[Efficiency]] = {}
    for (task, sums), result in zip(jobs, found):
        if task.method == "fit" and not result.converged:  # flagged in fits_to_check, replaced by a count
            fallback = run_task(Task(**{**task.__dict__, "method": "count"}), sums)
            result.value, result.error_low, result.error_high = fallback.value, fallback.error_low, fallback.error_high
            result.message = (result.message + "; " if result.message else "") + "replaced by the count"
        results.setdefault((task.kind, task.efficiency, task.variant), []).append(result)
    return Measurement(tnp, shape, results, [t for t, _ in jobs])


def _bin_label(tnp: TnpSpec, index: tuple[int, ...]) -> str:
    return ", ".join(
        f"{b.edges[i]:g} <= {n} < {b.edges[i + 1]:g}" for (n, b), i in zip(tnp.binning.items(), index)
    )


def correction_set(m: Measurement) -> Any:
    """One correction per efficiency: inputs = the binning variables and `scale_factors`
    (nominal, systup, systdown = nominal +- stat (+) syst, stat, syst), as muon groups ship them."""
    import correctionlib.schemav2 as cs  # noqa: PLC0415

    tnp = m.tnp
    corrections = []
    for eff in tnp.efficiencies:
        s = m.scale_factor(eff)
        total = np.sqrt(s["stat"] ** 2 + s["syst"] ** 2)
        keys = {"nominal": s["sf"], "systup": s["sf"] + total, "systdown": s["sf"] - total, "stat": s["stat"],
                "syst": s["syst"]}
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
                inputs=[*(cs.Variable(name=n, type="real", description=b.label) for n, b in tnp.binning.items()),
                        cs.Variable(name="scale_factors", type="string", description="nominal, systup, systdown, stat, syst")],
                output=cs.Variable(name="weight", type="real"),
                data=cs.Category(nodetype="category", input="scale_factors", content=content),
            )
        )
    return cs.CorrectionSet(schema_version=2, description="tag and probe (rdf-analysis)", corrections=corrections)


def efficiency_histograms(m: Measurement) -> dict[str, hist.Hist]:
    """Per efficiency: binning axes x quantity (eff_data, eff_mc, sf) x uncertainty (value, stat_low, stat_high, syst)."""
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


def tables(m: Measurement) -> list[Any]:
    from framework.present.tables import Measured, Table  # noqa: PLC0415

    tnp = m.tnp
    rows = []
    for eff in tnp.efficiencies:
        s = m.scale_factor(eff)
        for index in np.ndindex(*m.shape):
            k = int(np.ravel_multi_index(index, m.shape))
            d, mc = m.results["data", eff, "nominal"][k], m.results["mc", eff, "nominal"][k]
            rows.append([eff, _bin_label(tnp, index), Measured(d.value, d.error), Measured(mc.value, mc.error),
                         Measured(float(s["sf"][index]), float(s["stat"][index]), float(s["syst"][index]),
                                  float(s["syst"][index]))])
    summary = Table("scale_factors", "Efficiencies and scale factors", ["efficiency", "bin", "data", "simulation",
                    "scale factor"], rows, "value ± stat; the scale factor also +syst/-syst (alternatives in quadrature).")
    fits, check = [], []
    for task, results in _fits(m):
        r = results
        row = [task.kind, task.efficiency, task.variant, _bin_label(tnp, task.bin), r.value, r.error_low, r.error_high,
               "yes" if r.converged else "no", r.chi2_ndf, r.message]
        fits.append(row)
        if not r.converged or r.chi2_ndf > tnp.chi2_limit or r.message:
            check.append(row)
    columns = ["sample", "efficiency", "variant", "bin", "efficiency value", "error low", "error high", "converged",
               "chi2/ndf", "message"]
    return [
        summary,
        Table("fits", "Every fit", columns, fits),
        Table("fits_to_check", f"Fits that did not converge, have chi2/ndf > {tnp.chi2_limit:g} or a remark", columns,
              check, "Non-converged fits are replaced by the count in the outputs (and say so)."),
    ]


def _fits(m: Measurement) -> list[tuple[Task, Efficiency]]:
    counters: dict[tuple[str, str, str], int] = {}
    out = []
    for task in m.tasks:
        key = (task.kind, task.efficiency, task.variant)
        k = counters.get(key, 0)
        counters[key] = k + 1
        if task.method == "fit":
            out.append((task, m.results[key][k]))
    return out


def plot_fit(task: Task, result: Efficiency, title: str, path: Path) -> None:
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=False)
    edges = task.data.edges
    centres = 0.5 * (edges[1:] + edges[:-1])
    for ax, label, observed in zip(axes, ("pass", "fail"), (task.data.passed, task.data.failed)):
        ax.errorbar(centres, observed, yerr=np.sqrt(observed), fmt="o", color="black", markersize=3, label="data")
        if result.curves:
            signal = np.asarray(result.curves[f"signal_{label}"])
            background = np.asarray(result.curves[f"background_{label}"])
            ax.stairs(signal + background, edges, color="tab:blue", label="fit")
            ax.stairs(signal, edges, color="tab:green", linestyle="--", label="signal")
            ax.stairs(background, edges, color="tab:red", linestyle=":", label="background")
        ax.set_title(f"{label}ing probes", fontsize="medium")
        ax.set_xlabel("tag-probe mass [GeV]")
        ax.legend(fontsize="small")
    status = "" if result.converged else "  NOT CONVERGED"
    fig.suptitle(f"{title}\n e = {result.value:.4f} -{result.error_low:.4f} +{result.error_high:.4f},"
                 f" chi2/ndf = {result.chi2_ndf:.2f}{status}", fontsize="medium")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def plot_summary(m: Measurement, eff: str, path: Path) -> None:
    """Efficiency in data and simulation and the scale factor against the last binning variable,
    one line per bin of the others."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    names = list(m.tnp.binning)
    edges = np.asarray(m.tnp.binning[names[-1]].edges)
    centres = 0.5 * (edges[1:] + edges[:-1])
    s = m.scale_factor(eff)
    fig, (ax, rax) = plt.subplots(2, 1, sharex=True, figsize=(7, 7), gridspec_kw={"height_ratios": [2, 1]})
    for j, outer in enumerate(np.ndindex(*m.shape[:-1])):
        color = f"C{j}"
        label = _bin_label(m.tnp, outer + (0,)).rsplit(",", 1)[0] if len(names) > 1 else ""
        for kind, marker in (("data", "o"), ("mc", "s")):
            values = m.values(kind, eff, "nominal")[outer]
            low, high = (e[outer] for e in m.errors(kind, eff, "nominal"))
            ax.errorbar(centres, values, yerr=[low, high], fmt=marker, color=color, mfc="none" if kind == "mc" else color,
                        label=f"{kind} {label}", markersize=4)
        total = np.sqrt(s["stat"][outer] ** 2 + s["syst"][outer] ** 2)
        rax.errorbar(centres, s["sf"][outer], yerr=total, fmt="o", color=color, markersize=4)
    ax.set_ylabel("efficiency")
    ax.set_title(eff)
    ax.legend(fontsize="x-small", ncol=2)
    rax.set_ylabel("data / simulation")
    rax.set_xlabel(m.tnp.binning[names[-1]].label or names[-1])
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write_tnp_outputs(m: Measurement, outdir: Path) -> list[Path]:
    import uhi.io.zip  # noqa: PLC0415

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
        plot_summary(m, eff, folder / "plots" / f"{eff}.png")
    if m.tnp.plot_fits:
        for task, result in _fits(m):
            if task.kind == "data" and task.variant == "nominal":
                name = "_".join(str(i) for i in task.bin)
                plot_fit(task, result, f"{task.efficiency}: {_bin_label(m.tnp, task.bin)}",
                         folder / "plots" / "fits" / task.efficiency / f"bin_{name}.png")
    (folder / "summary.json").write_text(json.dumps({
        eff: {k: v.tolist() for k, v in m.scale_factor(eff).items()} for eff in m.tnp.efficiencies}, indent=1))
    return written


def run_tnp(config: LoadedConfig, outdir: Path) -> list[Path]:
    """The tag-and-probe stage of `run-analysis`: measure from the run's outputs and write the results."""
    outputs = load_outputs(outdir)
    return write_tnp_outputs(measure(config, outputs), outdir)
