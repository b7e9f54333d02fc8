"""Tag and probe after the event loop: the efficiencies of every bin, and from them the scale
factors and their systematic uncertainties.

From the `tnp` histogram of every sample (data summed, simulation summed):

    for each efficiency, variant (nominal and each systematic alternative) and probe bin:
        data: fit (or count), simulation: count (or fit)        -> efficiencies
    scale factor = data / simulation; stat from the nominal; syst = alternatives in quadrature

The outputs written from a `Measurement` are outputs.py's.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import cast

import hist
import numpy as np

from framework.config.load import LoadedConfig
from framework.errors import ConfigError
from framework.extensions.tnp.config import TNP_HISTOGRAM
from framework.extensions.tnp.fitting import Efficiency, clopper_pearson, fit_efficiency, weighted_count
from framework.extensions.tnp.likelihood import FitInput
from framework.extensions.tnp.schema import TnpSpec
from framework.present.results import RunOutputs, sum_histograms

log = logging.getLogger(__name__)

Sums = tuple[float, float, float, float]  # summed weights and squared weights of pass, then fail


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


def _fit_input(
    h: hist.Hist, template: hist.Hist, tag: int, eff: int, index: tuple[int, ...], names: list[str], variant: Variant
) -> tuple[FitInput, Sums]:
    """Pass and fail in the fit range (rebinned), the templates over the whole window, and the
    summed weights and squared weights of pass and fail in the range (for counting)."""
    where: dict[int | str, int | str] = {
        "tag": tag,
        "efficiency": eff,
        "systematic": "nominal",
        **dict(zip(names, index)),
    }
    edges = h.axes["mass"].edges
    sides: list[tuple[np.ndarray, np.ndarray]] = []
    for source in (h, template):
        for passed in (1, 0):
            s = cast(hist.Hist, source[{**where, "passed": passed}])  # the mass axis is kept: a histogram
            sides.append((s.values(), cast(np.ndarray, s.variances())))  # Weight storage: never None
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


def run_task(task: Task, sums: Sums) -> Efficiency:
    if task.method == "fit":
        return fit_efficiency(task.data, task.signal, task.background, task.simultaneous)
    passed, passed_w2, failed, failed_w2 = sums
    if task.weighted:
        return weighted_count(passed, passed_w2, failed, failed_w2)
    return clopper_pearson(passed, passed + failed)


def _run(args: tuple[Task, Sums]) -> Efficiency:
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
        return (
            np.array([r.error_low for r in rs]).reshape(self.shape),
            np.array([r.error_high for r in rs]).reshape(self.shape),
        )

    def scale_factor(self, eff: str) -> dict[str, np.ndarray]:
        """Nominal scale factor with stat (from data and simulation) and syst (alternatives) uncertainties."""
        d, m = self.values("data", eff, "nominal"), self.values("mc", eff, "nominal")
        sf = d / m
        dl, dh = self.errors("data", eff, "nominal")
        ml, mh = self.errors("mc", eff, "nominal")
        stat = sf * np.sqrt(((dl + dh) / 2 / d) ** 2 + ((ml + mh) / 2 / m) ** 2)
        shifts = {v: self.values("data", eff, v) / self.values("mc", eff, v) - sf for v in self.variant_names[1:]}
        return {
            "sf": sf,
            "stat": stat,
            "syst": self.combine(shifts, sf),
            **{f"shift_{v}": s for v, s in shifts.items()},
        }

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

    def fits(self) -> list[tuple[Task, Efficiency]]:
        """Every fitted task with its result."""
        counters: dict[tuple[str, str, str], int] = {}
        out = []
        for task in self.tasks:
            key = (task.kind, task.efficiency, task.variant)
            k = counters.get(key, 0)
            counters[key] = k + 1
            if task.method == "fit":
                out.append((task, self.results[key][k]))
        return out


def measure(
    config: LoadedConfig, outputs: RunOutputs, workers: int | None = None, progress: bool = True
) -> Measurement:
    """Every efficiency of every variant and bin, in data and simulation (fits on `workers` processes)."""
    tnp = config.spec.tnp
    assert tnp is not None
    data = [s.histograms[TNP_HISTOGRAM] for s in outputs.samples.values() if s.is_data]
    mc = [s.histograms[TNP_HISTOGRAM] for s in outputs.samples.values() if not s.is_data]
    if not data or not mc:
        raise ConfigError(
            "tag and probe needs data and simulated samples",
            config.locate("samples"),
            "declare at least one sample with is_data: true and one without",
        )
    shape = tuple(len(b.edges) - 1 for b in tnp.binning.values())
    jobs = _jobs(tnp, sum_histograms(data), sum_histograms(mc), shape)
    empty = sorted(
        {(t.kind, t.efficiency, t.bin) for t, sums in jobs if t.variant == "nominal" and sums[0] + sums[2] <= 0}
    )
    if empty:
        listed = "; ".join(f"{kind} {eff} in {bin_label(tnp, index)}" for kind, eff, index in empty[:5])
        raise ConfigError(
            f"{len(empty)} tag-and-probe bin(s) have no probes in the fit range: {listed}",
            config.locate("tnp", "binning"),
            "merge those bins (fewer edges) or widen the fit range; an efficiency needs probes",
        )
    found = _run_all(jobs, workers or tnp.workers, progress)
    results: dict[tuple[str, str, str], list[Efficiency]] = {}
    for (task, sums), result in zip(jobs, found):
        if task.method == "fit" and not result.converged:  # flagged in fits_to_check, replaced by a count
            fallback = run_task(Task(**{**task.__dict__, "method": "count"}), sums)
            result.value, result.error_low, result.error_high = fallback.value, fallback.error_low, fallback.error_high
            result.message = (result.message + "; " if result.message else "") + "replaced by the count"
        results.setdefault((task.kind, task.efficiency, task.variant), []).append(result)
    return Measurement(tnp, shape, results, [t for t, _ in jobs])


def _jobs(tnp: TnpSpec, h_data: hist.Hist, h_mc: hist.Hist, shape: tuple[int, ...]) -> list[tuple[Task, Sums]]:
    """One task per efficiency, variant, probe bin and kind (data, simulation), with its sums."""
    names = list(tnp.binning)
    jobs: list[tuple[Task, Sums]] = []
    for (e, eff), variant, index in itertools.product(enumerate(tnp.efficiencies), variants(tnp), np.ndindex(*shape)):
        for kind, h, method in (("data", h_data, tnp.data_method), ("mc", h_mc, tnp.mc_method)):
            fit_input, sums = _fit_input(h, h_mc, variant.tag, e, index, names, variant)
            task = Task(
                kind,
                eff,
                variant.name,
                tuple(int(i) for i in index),
                method,
                kind == "mc",
                variant.signal,
                variant.background,
                tnp.fit.simultaneous,
                fit_input,
            )
            jobs.append((task, sums))
    return jobs


def _run_all(jobs: list[tuple[Task, Sums]], workers: int, progress: bool) -> list[Efficiency]:
    """The result of every job, in order, from `workers` processes; progress logged when asked."""
    fits = sum(1 for t, _ in jobs if t.method == "fit")
    start = time.perf_counter()
    if progress:
        log.info("tag and probe: %d efficiencies, %d of them fitted, on %d processes", len(jobs), fits, workers)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with ProcessPoolExecutor(workers) as pool:
        found = []
        for i, result in enumerate(pool.map(_run, jobs, chunksize=max(1, len(jobs) // (8 * workers)))):
            found.append(result)
            if progress and (i + 1) % max(1, len(jobs) // 10) == 0:
                log.info("  %d/%d done, %.1f s", i + 1, len(jobs), time.perf_counter() - start)
    return found


def bin_label(tnp: TnpSpec, index: tuple[int, ...]) -> str:
    """The probe bin `index` as text: `0.9 <= eta < 1.2, 20 <= pt < 25`."""
    return ", ".join(f"{b.edges[i]:g} <= {n} < {b.edges[i + 1]:g}" for (n, b), i in zip(tnp.binning.items(), index))
