"""Systematics at scale: the framework (A) against the obvious RDataFrame way (B).

The same physics, defined once below as Python data, is run two ways on the same
generated events, each in its own process so that peak memory is its own:

- A: `run-analysis` on a YAML config written from that data: 60 weight systematics
  (expressions, LHEScaleWeight with an envelope, PSWeight, three correctionlib muon
  scale factors) and 15 shape systematics (14 Jet_pt scales, one Muon_pt scale), 40
  observables, each with nJet x nBTag x channel category axes and the systematic axis.
- B: raw ROOT Python API as a physicist writes it by hand: one `Vary` per variation
  (weights included), one `HistoND` per observable, `VariationsFor`.

It prints build+JIT seconds, event-loop seconds and peak RSS of each, the ratios A/B,
and whether every histogram agrees bin for bin (relative 1e-6) for the nominal and
every variation. A runs twice: cold (an empty cache of its own; its steps are compiled after
the run, untimed) and warm (`a_build_warm_s`: every step comes compiled from the cache).

    python benchmarks/systematics.py --events 1000000 --json OUT.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

CACHE = Path(__file__).resolve().parent / ".cache"
REPO = Path(__file__).resolve().parent.parent
LUMI, XSEC = 100.0, 832.0

# ---------------------------------------------------------------- the physics, once

JET_MASK = "Jet_pt > 30 && abs(Jet_eta) < 2.4 && Jet_jetId == 6"
MUON_MASK = "Muon_pt > 25 && abs(Muon_eta) < 2.4 && Muon_tightId"
ELECTRON_MASK = "Electron_pt > 25 && abs(Electron_eta) < 2.5 && Electron_cutBased >= 3"
BTAG = 0.8


def _nth(collection: str, field: str, i: int) -> str:
    return f"(n{collection} > {i} ? double({collection}_{field}[{i}]) : -1.0)"


def observables() -> dict[str, tuple[str, int, float, float]]:
    """40 event-level observables: name -> (expression over the framework's columns, bins, low, high)."""
    obs: dict[str, tuple[str, int, float, float]] = {}
    for i in range(4):
        obs[f"jet{i}_pt"] = (_nth("GoodJet", "pt", i), 20, 0.0, 400.0)
        obs[f"jet{i}_eta"] = (_nth("GoodJet", "eta", i), 20, -2.5, 2.5)
        obs[f"jet{i}_phi"] = (_nth("GoodJet", "phi", i), 20, -3.2, 3.2)
        obs[f"jet{i}_mass"] = (_nth("GoodJet", "mass", i), 20, 0.0, 60.0)
        obs[f"jet{i}_btag"] = (_nth("GoodJet", "btagCSVV2", i), 20, 0.0, 1.0)
    obs["ht"] = ("kin::scalar_sum(GoodJet_pt)", 20, 0.0, 1500.0)
    obs["met"] = ("double(MET_pt)", 20, 0.0, 300.0)
    obs["met_phi"] = ("double(MET_phi)", 20, -3.2, 3.2)
    obs["muon_pt"] = (_nth("GoodMuon", "pt", 0), 20, 0.0, 300.0)
    obs["muon_eta"] = (_nth("GoodMuon", "eta", 0), 20, -2.5, 2.5)
    obs["electron_pt"] = (_nth("GoodElectron", "pt", 0), 20, 0.0, 300.0)
    obs["electron_eta"] = (_nth("GoodElectron", "eta", 0), 20, -2.5, 2.5)
    obs["n_jets_all"] = ("double(nJet)", 20, 0.0, 20.0)
    obs["bjet_pt"] = (_nth("BJet", "pt", 0), 20, 0.0, 400.0)
    obs["sum_btag"] = ("double(Sum(GoodJet_btagCSVV2))", 20, 0.0, 6.0)
    obs["mjj"] = ("kin::leading_pair_mass(GoodJet_pt, GoodJet_eta, GoodJet_phi, GoodJet_mass)", 20, 0.0, 800.0)
    obs["mll"] = ("kin::leading_pair_mass(GoodMuon_pt, GoodMuon_eta, GoodMuon_phi, GoodMuon_mass)", 20, 0.0, 200.0)
    obs["pileup"] = ("double(Pileup_nTrueInt)", 20, 0.0, 60.0)
    obs["jet_pt_ratio"] = ("(nGoodJet > 1 ? double(GoodJet_pt[1]) / GoodJet_pt[0] : -1.0)", 20, 0.0, 1.0)
    obs["lead_lepton_pt"] = (
        "std::max(" + _nth("GoodMuon", "pt", 0) + ", " + _nth("GoodElectron", "pt", 0) + ")",
        20,
        0.0,
        300.0,
    )
    obs["muon_phi"] = (_nth("GoodMuon", "phi", 0), 20, -3.2, 3.2)
    obs["electron_phi"] = (_nth("GoodElectron", "phi", 0), 20, -3.2, 3.2)
    obs["n_muons_all"] = ("double(nMuon)", 20, 0.0, 10.0)
    obs["deta_jj"] = ("(nGoodJet > 1 ? double(GoodJet_eta[0]) - GoodJet_eta[1] : -9.0)", 20, -5.0, 5.0)
    obs["met_over_ht"] = ("MET_pt / std::max(1.0, kin::scalar_sum(GoodJet_pt))", 20, 0.0, 2.0)
    assert len(obs) == 40, len(obs)
    return obs


CATEGORIES = {
    "njet": ("nGoodJet", 2, 7),  # integer axis: 2..6 and flows
    "nbtag": ("nBJet", 0, 5),
}
CHANNELS = {  # label -> condition; index 0..2, anything else 3 (other)
    "mu": "nGoodMuon == 1 && nGoodElectron == 0",
    "e": "nGoodElectron == 1 && nGoodMuon == 0",
    "ll": "nGoodMuon + nGoodElectron >= 2",
}
WEIGHT_INPUTS = ["MET_pt / 100.", "(Pileup_nTrueInt - 25.) / 6.", "nJet / 5.", "MET_phi"]
N_EXPRESSIONS = 55
N_JES = 14
SCALE_INDICES = [0, 1, 3, 5, 7, 8]
PS_INDICES = [0, 1, 2, 3]
CORRECTIONS = ["muon_id", "muon_iso", "muon_trigger"]


def expression_systematics() -> dict[str, tuple[str, str]]:
    out = {}
    for i in range(N_EXPRESSIONS):
        x = WEIGHT_INPUTS[i % len(WEIGHT_INPUTS)]
        a = 0.002 * (1 + i % 7)
        out[f"w{i:02d}"] = (f"1 + {a} * std::tanh({x})", f"1 - {a} * std::tanh({x})")
    return out


def jes_factor(k: int) -> float:
    return 0.005 * (k + 1)


# ---------------------------------------------------------------- inputs


def inputs(events: int, cache: Path = CACHE) -> tuple[Path, Path]:
    """Generated events and the correction file, made once per size and cached."""
    from framework.testing.generate import write_events, write_muon_scale_factors
    from framework.testing.spec import GeneratorSpec

    cache.mkdir(parents=True, exist_ok=True)
    events_file = cache / f"ttbar_{events}.root"
    if not events_file.exists():
        print(f"generating {events} events -> {events_file}", file=sys.stderr)
        write_events(GeneratorSpec(process="ttbar", events=events, seed=2024), events_file)
    corrections = cache / "muon_sf.json"
    if not corrections.exists():
        write_muon_scale_factors(corrections, CORRECTIONS)
    return events_file, corrections


# ---------------------------------------------------------------- A: the framework


def write_config(folder: Path, events_file: Path, corrections: Path) -> Path:
    lines = [
        "schema: 1",
        "analysis: systematics_benchmark",
        f'cpp: ["{REPO / "cpp" / "kinematics.h"}"]',
        f"lumi: {LUMI}",
        "samples:",
        f'  ttbar: {{files: ["{events_file}"], xsec: {XSEC}}}',
        "collections:",
        f'  GoodJet: {{from: Jet, where: "{JET_MASK}"}}',
        f'  GoodMuon: {{from: Muon, where: "{MUON_MASK}"}}',
        f'  GoodElectron: {{from: Electron, where: "{ELECTRON_MASK}"}}',
        f'  BJet: {{from: GoodJet, where: "GoodJet_btagCSVV2 > {BTAG}"}}',
        "selection:",
        '  - {name: two_jets, cut: "nGoodJet >= 2"}',
        "categories:",
    ]
    for name, (expr, lo, hi) in CATEGORIES.items():
        lines.append(f"  {name}: {{expr: {expr}, integer: [{lo}, {hi}]}}")
    lines.append("  channel: {cases: {" + ", ".join(f'{k}: "{v}"' for k, v in CHANNELS.items()) + "}}")
    lines += ["weight: genWeight", "systematics:"]
    for name, (up, down) in expression_systematics().items():
        lines.append(f'  {name}: {{kind: weight, up: "{up}", down: "{down}"}}')
    lines.append(f"  scale: {{kind: weight, from_array: LHEScaleWeight, indices: {SCALE_INDICES}, combine: envelope}}")
    lines.append(f"  ps: {{kind: weight, from_array: PSWeight, indices: {PS_INDICES}}}")
    for name in CORRECTIONS:
        lines.append(
            f'  {name}: {{kind: correctionlib, file: "{corrections}", correction: {name}, key_input: scale_factors,'
            " nominal: nominal, up: systup, down: systdown,"
            ' inputs: {abseta: "abs(GoodMuon_eta)", pt: GoodMuon_pt}}'
        )
    for k in range(N_JES):
        f = jes_factor(k)
        if k == 0:  # an energy scale moves momentum and mass together
            lines.append(
                f'  jes00: {{kind: shape, columns: {{Jet_pt: {{up: "Jet_pt * {1 + f}", down: "Jet_pt * {1 - f}"}},'
                f' Jet_mass: {{up: "Jet_mass * {1 + f}", down: "Jet_mass * {1 - f}"}}}}}}'
            )
            continue
        lines.append(f'  jes{k:02d}: {{kind: shape, column: Jet_pt, up: "Jet_pt * {1 + f}", down: "Jet_pt * {1 - f}"}}')
    lines.append('  muon_scale: {kind: shape, column: Muon_pt, up: "Muon_pt * 1.002", down: "Muon_pt * 0.998"}')
    lines.append("histograms:")
    for name, (expr, bins, lo, hi) in observables().items():
        lines.append(
            f'  {name}: {{axes: [{{expr: "{expr}", name: x, bins: {bins}, range: [{lo}, {hi}]}}, '
            "njet, nbtag, channel]}"
        )
    path = folder / "config.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def child_a(config: Path, out: Path, threads: int, compile_after: bool) -> dict[str, Any]:
    """A: plan, build (JIT included: the framework compiles pending code before its loop), loop,
    write; with `compile_after`, the steps are then compiled into the cache (not timed)."""
    from framework.engine.build import build_graph
    from framework.engine.compiled import submit
    from framework.engine.run import collect_results, run_event_loop
    from framework.execute.pipeline import RunOptions, prepare
    from framework.output.format import RunProvenance
    from framework.output.write import write_outputs

    start = time.perf_counter()
    plan, _ = prepare(RunOptions(config=config))
    booked = build_graph(plan, threads)
    build = time.perf_counter() - start
    _, loop = run_event_loop(booked, plan)
    result = collect_results(plan, booked)
    provenance = RunProvenance(
        config=plan.config,
        config_hash=plan.config_hash,
        cpp_hash="",
        versions={},
        command=[],
        threads=threads,
        systematics=plan.systematics,
    )
    timing = {"setup_seconds": 0.0, "event_loop_seconds": loop, "events_per_second": 0.0, "setup_parts": {}}
    write_outputs(result, provenance, out, {"analysis": plan.analysis, "events": 0, **timing, "threads": threads})
    rss = peak_rss_bytes()
    if compile_after:
        submit(booked.job, "now")
    return {
        "build_s": build,
        "loop_s": loop,
        "peak_rss_bytes": rss,
        "norm": result.samples[0].norm,
        "interpreted_steps": len(booked.interpreted),
    }


# ---------------------------------------------------------------- B: the obvious way


B_HELPERS = """
ROOT::RVecF bench_scaled(const ROOT::RVecF &v, double f) {
   ROOT::RVecF out(v.size());
   for (std::size_t i = 0; i < v.size(); ++i) out[i] = float(v[i] * f);
   return out;
}
double bench_product(const correction::Correction &c, const std::string &key,
                     const ROOT::RVecF &eta, const ROOT::RVecF &pt) {
   double p = 1.;
   for (std::size_t i = 0; i < pt.size(); ++i) p *= c.evaluate({key, std::abs((double)eta[i]), (double)pt[i]});
   return p;
}
std::vector<double> bench_thn(const THnD &h, bool errors) {
   std::vector<double> v(h.GetNbins());
   for (Long64_t i = 0; i < h.GetNbins(); ++i) v[i] = errors ? h.GetBinError2(i) : h.GetBinContent(i);
   return v;
}
"""


def build_b(events_file: Path, corrections: Path, threads: int) -> tuple[dict[str, Any], Any]:
    """The obvious graph: returns {observable: RResultMap of THnD} and the dataframe."""
    import correctionlib
    import ROOT

    if threads > 1:
        ROOT.EnableImplicitMT(threads)
    correctionlib.register_pyroot_binding()
    ROOT.gInterpreter.Declare(f'#include "{REPO / "cpp" / "kinematics.h"}"')
    ROOT.gInterpreter.Declare(f'auto bench_cset = correction::CorrectionSet::from_file("{corrections}");')
    ROOT.gInterpreter.Declare(B_HELPERS)
    df = ROOT.RDataFrame("Events", str(events_file))
    f = jes_factor(0)
    df = df.Vary(
        ["Jet_pt", "Jet_mass"],
        f"ROOT::RVec<ROOT::RVec<ROOT::RVecF>>{{{{bench_scaled(Jet_pt, {1 + f}), bench_scaled(Jet_pt, {1 - f})}},"
        f" {{bench_scaled(Jet_mass, {1 + f}), bench_scaled(Jet_mass, {1 - f})}}}}",
        ["up", "down"],
        "jes00",
    )
    for k in range(1, N_JES):
        f = jes_factor(k)
        df = df.Vary(
            "Jet_pt",
            f"ROOT::RVec<ROOT::RVecF>{{bench_scaled(Jet_pt, {1 + f}), bench_scaled(Jet_pt, {1 - f})}}",
            ["up", "down"],
            f"jes{k:02d}",
        )
    df = df.Vary(
        "Muon_pt",
        "ROOT::RVec<ROOT::RVecF>{bench_scaled(Muon_pt, 1.002), bench_scaled(Muon_pt, 0.998)}",
        ["up", "down"],
        "muon_scale",
    )
    for coll, mask in (("GoodJet", JET_MASK), ("GoodMuon", MUON_MASK), ("GoodElectron", ELECTRON_MASK)):
        source = coll[4:]
        df = df.Define(f"{coll}_mask", mask)
        for field in ("pt", "eta", "phi", "mass") + (("btagCSVV2",) if source == "Jet" else ()):
            df = df.Define(f"{coll}_{field}", f"{source}_{field}[{coll}_mask]")
        df = df.Define(f"n{coll}", f"int({coll}_pt.size())")
    df = df.Define("BJet_pt", f"GoodJet_pt[GoodJet_btagCSVV2 > {BTAG}]").Define("nBJet", "int(BJet_pt.size())")
    df = df.Filter("nGoodJet >= 2")
    channel = "3"
    for i, cond in reversed(list(enumerate(CHANNELS.values()))):
        channel = f"(({cond}) ? {i} : {channel})"
    df = df.Define("channel", channel).Define("njet", "nGoodJet").Define("nbtag", "nBJet")
    for name in CORRECTIONS:
        for key in ("nominal", "systup", "systdown"):
            df = df.Define(
                f"sf_{name}_{key}", f'bench_product(*bench_cset->at("{name}"), "{key}", GoodMuon_eta, GoodMuon_pt)'
            )
    nominal = "double(genWeight)" + "".join(f" * sf_{n}_nominal" for n in CORRECTIONS)
    df = df.Define("weight", nominal)
    for name, (up, down) in expression_systematics().items():
        df = df.Vary("weight", f"ROOT::RVecD{{weight * ({up}), weight * ({down})}}", ["up", "down"], name)
    df = df.Vary(
        "weight",
        "ROOT::RVecD{" + ", ".join(f"weight * LHEScaleWeight[{i}]" for i in SCALE_INDICES) + "}",
        len(SCALE_INDICES),
        "scale",
    )
    df = df.Vary(
        "weight", "ROOT::RVecD{" + ", ".join(f"weight * PSWeight[{i}]" for i in PS_INDICES) + "}", len(PS_INDICES), "ps"
    )
    for name in CORRECTIONS:
        ratio = "(sf_{0}_nominal != 0 ? sf_{0}_{1} / sf_{0}_nominal : 0.)"
        df = df.Vary(
            "weight",
            f"ROOT::RVecD{{weight * {ratio.format(name, 'systup')}, weight * {ratio.format(name, 'systdown')}}}",
            ["up", "down"],
            name,
        )
    results = {}
    for name, (expr, bins, lo, hi) in observables().items():
        df = df.Define(f"obs_{name}", expr)
        model = ROOT.RDF.THnDModel(name, name, 4, [bins, 5, 5, 3], [lo, 1.5, -0.5, -0.5], [hi, 6.5, 4.5, 2.5])
        res = df.HistoND(model, [f"obs_{name}", "njet", "nbtag", "channel", "weight"])
        results[name] = res
    return {name: ROOT.RDF.Experimental.VariationsFor(res) for name, res in results.items()}, df


def thn_to_numpy(h: Any) -> tuple[Any, Any]:
    """THnD contents with flow bins, axes in order (THnD's linear bin index is C order, measured)."""
    import numpy as np
    import ROOT

    shape = [h.GetAxis(i).GetNbins() + 2 for i in range(h.GetNdimensions())]
    values = np.asarray(ROOT.bench_thn(h, False)).reshape(shape)
    variances = np.asarray(ROOT.bench_thn(h, True)).reshape(shape)
    return values, variances


def b_key(entry: str) -> tuple[str, int | None]:
    """The VariationsFor key of a systematic-axis entry of A (or an envelope to compute)."""
    if entry == "nominal":
        return "nominal", None
    for direction in ("Up", "Down"):
        if entry.endswith(direction) and entry != f"scale{direction}":
            return f"{entry[: -len(direction)]}:{direction.lower()}", None
    base, _, index = entry.rpartition("_")
    if base in ("scale", "ps"):
        positions = SCALE_INDICES if base == "scale" else PS_INDICES
        return f"{base}:{positions.index(int(index))}", None
    return entry, None


def compare(a_out: Path, b_results: dict[str, Any], norm: float) -> tuple[bool, float, int]:
    """Every bin of every histogram and variation: A == B within relative 1e-6."""
    import numpy as np

    from framework.output.write import read_histograms

    ours = read_histograms(a_out / "ttbar.hist.zip")
    equal, worst, checked = True, 0.0, 0
    for name, varied in b_results.items():
        h = ours[name]
        keys = {str(k) for k in varied.GetKeys()}
        theirs: dict[str, Any] = {}

        def get(key: str, varied: Any = varied, keys: set[str] = keys, theirs: dict[str, Any] = theirs) -> Any:
            if key not in theirs:
                values, variances = thn_to_numpy(varied[key if key in keys else "nominal"])
                # B's channel axis has an (empty) underflow bin that A's category axis has not
                theirs[key] = (values[..., 1:] * norm, variances[..., 1:] * norm * norm)
            return theirs[key]

        for i, entry in enumerate(h.axes["systematic"]):
            if entry in ("scaleUp", "scaleDown"):
                members = np.stack([get(f"scale:{j}")[0] for j in range(len(SCALE_INDICES))], axis=-1)
                expected = members.max(axis=-1) if entry == "scaleUp" else members.min(axis=-1)
            else:
                expected = get(b_key(entry)[0])[0]
            got = h.view(flow=True).value[..., i]
            scale = max(np.abs(expected).max(), 1e-300)
            diff = np.abs(got - expected)
            ok = np.all(diff <= 1e-6 * np.abs(expected) + 1e-12 * scale)
            worst = max(worst, float((diff / np.maximum(np.abs(expected), 1e-12 * scale)).max()))
            if not ok and equal:
                print(f"first difference: histogram {name!r}, entry {entry!r}", file=sys.stderr)
            equal &= bool(ok)
            checked += 1
    return equal, worst, checked


def child_b(events_file: Path, corrections: Path, threads: int, a_out: Path, norm: float) -> dict[str, Any]:
    import framework.output.write  # noqa: F401  # everything the comparison needs is imported before the long loop

    start = time.perf_counter()
    varied, _ = build_b(events_file, corrections, threads)
    build = time.perf_counter() - start
    start = time.perf_counter()
    next(iter(varied.values()))["nominal"]  # the event loop runs here, for all histograms and variations
    loop = time.perf_counter() - start
    rss = peak_rss_bytes()
    equal, worst, checked = compare(a_out, varied, norm)
    return {
        "build_s": build,
        "loop_s": loop,
        "peak_rss_bytes": rss,
        "equal": equal,
        "worst_relative": worst,
        "entries_checked": checked,
    }


# ---------------------------------------------------------------- driver


def run_child(args: list[str]) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"child {args[:2]} failed")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", type=Path, help="write the figures as JSON here")
    p.add_argument("--cache", type=Path, default=CACHE, help="where generated inputs and outputs are kept")
    p.add_argument(
        "--equality-only",
        action="store_true",
        help="only A's histograms against B's (A interpreted, nothing compiled; the timings are not figures)",
    )
    p.add_argument("--child", choices=["a", "b"], help=argparse.SUPPRESS)
    p.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--norm", type=float, help=argparse.SUPPRESS)
    p.add_argument("--compile-after", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    events_file, corrections = inputs(args.events, args.cache)
    work = args.work or args.cache / f"run_{args.events}"
    if args.child == "a":
        print(json.dumps(child_a(work / "config.yaml", work / "a_out", args.threads, args.compile_after)))
        return
    if args.child == "b":
        print(json.dumps(child_b(events_file, corrections, args.threads, work / "a_out", args.norm)))
        return

    work.mkdir(parents=True, exist_ok=True)
    write_config(work, events_file, corrections)
    # A's compiled steps in a cache folder of this benchmark, emptied first: the first run is cold
    os.environ["RDF_ANALYSIS_CACHE"] = str(work / "cache")
    shutil.rmtree(work / "cache", ignore_errors=True)
    common = [
        "--events",
        str(args.events),
        "--threads",
        str(args.threads),
        "--work",
        str(work),
        "--cache",
        str(args.cache),
    ]
    if args.equality_only:  # the tests' check: no C++ compilation of A's steps, which takes most of the time
        os.environ["RDF_ANALYSIS_COMPILE"] = "off"
        cold = a = run_child(["--child", "a", *common])
    else:
        cold = run_child(["--child", "a", *common, "--compile-after"])
        a = run_child(["--child", "a", *common])  # warm: every step compiled
    b = run_child(["--child", "b", *common, "--norm", repr(a["norm"])])
    figures = {
        "events": args.events,
        "threads": args.threads,
        "a_build_s": round(cold["build_s"], 2),
        "a_build_warm_s": round(a["build_s"], 2),
        "a_interpreted_steps_cold_warm": [cold["interpreted_steps"], a["interpreted_steps"]],
        "a_loop_s": round(a["loop_s"], 2),
        "a_peak_rss_bytes": a["peak_rss_bytes"],
        "b_build_s": round(b["build_s"], 2),
        "b_loop_s": round(b["loop_s"], 2),
        "b_peak_rss_bytes": b["peak_rss_bytes"],
        "loop_speedup_b_over_a": round(b["loop_s"] / a["loop_s"], 2),
        "build_ratio_a_over_b": round(cold["build_s"] / b["build_s"], 3),
        "rss_ratio_a_over_b": round(a["peak_rss_bytes"] / b["peak_rss_bytes"], 3),
        "equal": b["equal"],
        "worst_relative_difference": b["worst_relative"],
        "histogram_entries_compared": b["entries_checked"],
    }
    gib = 1024**3
    print(f"events {args.events}, threads {args.threads}")
    print(
        f"A framework : build+JIT {cold['build_s']:7.2f} s cold, {a['build_s']:7.2f} s warm   "
        f"loop {a['loop_s']:7.2f} s   "
        f"peak RSS {a['peak_rss_bytes'] / gib:5.2f} GiB"
    )
    print(
        f"B obvious   : build+JIT {b['build_s']:7.2f} s   loop {b['loop_s']:7.2f} s   "
        f"peak RSS {b['peak_rss_bytes'] / gib:5.2f} GiB"
    )
    print(
        f"A/B         : build {figures['build_ratio_a_over_b']}   loop {a['loop_s'] / b['loop_s']:.3f} "
        f"(B is {figures['loop_speedup_b_over_a']}x slower)   RSS {figures['rss_ratio_a_over_b']}"
    )
    print(
        f"histograms equal bin for bin (rel 1e-6): {b['equal']} "
        f"({b['entries_checked']} histogram x variation pairs, worst relative difference {b['worst_relative']:.2e})"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    if not b["equal"]:
        raise SystemExit(1)


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    os.environ.setdefault("PYTHONWARNINGS", "ignore::UserWarning")
    main()
