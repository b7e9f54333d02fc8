"""The 8 ADL benchmark queries: the framework (A) against hand-written RDataFrame (B) and the
columnar way with uproot + awkward + hist (C), on the same generated file, in the same run.

- A: `run-analysis` on `analyses/adl/common.yaml` + `analyses/adl/queries/qN.yaml`, one process per query,
  and all eight queries as one configuration (`analyses/adl/config.yaml`'s queries: one event loop).
- B: ROOT's RDataFrame Python API as a physicist writes it: Filter/Define/Histo1D per query,
  the same C++ kinematics header (`cpp/kinematics.h`), `EXTRA_CLING_ARGS=-O2` like A.
- C: uproot + awkward + hist, two worker processes over entry ranges, computed in float64 with the
  same formulas (an independent implementation: A and C share no code).

Each runs in its own process, so import, graph building and JIT are counted where they happen:
set-up is everything before the first event (the interpreter's start, imports, inspecting the
input, building the graph, JIT), the loop is the event loop alone (A: the framework's own loop
time, JIT done before it; B: RDataFrame's own log of its loop, JIT excluded; C: reading,
computing and filling after the workers started). A runs with a warm cache (a first,
untimed run compiled its steps) unless `--cold`, where each A run starts from an empty cache.
The queries run on one generated file written as a TTree and, with the same events, as an
RNTuple (`--format ttree|rntuple|both`). With `--repeat N` each of A, B and C runs N times per
query and the run with the shortest loop is kept (loops of 0.1 s move by tens of percent from
run to run on a shared machine). Histograms (all bins, flow included) must be identical in
A, B and C.

    python benchmarks/adl.py --events 2000000 --json OUT.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

CACHE = Path(__file__).resolve().parent / ".cache"
REPO = Path(__file__).resolve().parent.parent
ADL = REPO / "analyses" / "adl"
QUERIES = [f"q{i}" for i in range(1, 9)]
BRANCHES = {
    "q1": ["MET_pt"],
    "q2": ["Jet_pt"],
    "q3": ["Jet_pt", "Jet_eta"],
    "q4": ["Jet_pt", "MET_pt"],
    "q5": ["Muon_pt", "Muon_eta", "Muon_phi", "Muon_mass", "Muon_charge", "MET_pt"],
    "q6": ["Jet_pt", "Jet_eta", "Jet_phi", "Jet_mass", "Jet_btag"],
    "q7": [
        "Jet_pt",
        "Jet_eta",
        "Jet_phi",
        "Muon_pt",
        "Muon_eta",
        "Muon_phi",
        "Electron_pt",
        "Electron_eta",
        "Electron_phi",
    ],
    "q8": [f"{c}_{f}" for c in ("Muon", "Electron") for f in ("pt", "eta", "phi", "mass", "charge")]
    + ["MET_pt", "MET_phi"],
}
# histogram name -> (bins, low, high), as in analyses/adl/queries/
BINNING = {
    "q1_met": (100, 0.0, 200.0),
    "q2_jet_pt": (100, 15.0, 60.0),
    "q3_jet_pt": (100, 15.0, 60.0),
    "q4_met": (100, 0.0, 200.0),
    "q5_met": (100, 0.0, 200.0),
    "q6_trijet_pt": (100, 0.0, 300.0),
    "q6_trijet_btag": (100, 0.0, 1.0),
    "q7_ht": (100, 15.0, 200.0),
    "q8_mt": (100, 0.0, 200.0),
}


def histograms_of(query: str) -> list[str]:
    return [h for h in BINNING if h.startswith(query + "_")]


# ------------------------------------------------------------------------------- B: RDataFrame


def rdf_query(df: Any, query: str) -> dict[str, Any]:
    """The query with RDataFrame's Python API: name -> booked Histo1D."""

    def model(name: str) -> Any:
        import ROOT

        bins, low, high = BINNING[name]
        return ROOT.RDF.TH1DModel(name, name, bins, low, high)

    if query == "q1":
        return {"q1_met": df.Histo1D(model("q1_met"), "MET_pt")}
    if query == "q2":
        return {"q2_jet_pt": df.Histo1D(model("q2_jet_pt"), "Jet_pt")}
    if query == "q3":
        return {
            "q3_jet_pt": df.Define("central_pt", "Jet_pt[abs(Jet_eta) < 1]").Histo1D(model("q3_jet_pt"), "central_pt")
        }
    if query == "q4":
        return {"q4_met": df.Filter("Sum(Jet_pt > 40) >= 2").Histo1D(model("q4_met"), "MET_pt")}
    if query == "q5":
        selected = df.Filter(
            "kin::has_opposite_pair_in_mass_window(Muon_pt, Muon_eta, Muon_phi, Muon_mass, Muon_charge, 60., 120.)"
        )
        return {"q5_met": selected.Histo1D(model("q5_met"), "MET_pt")}
    if query == "q6":
        d = (
            df.Filter("nJet >= 3")
            .Define("trijet", "kin::trijet_closest_to_mass(Jet_pt, Jet_eta, Jet_phi, Jet_mass, 172.5)")
            .Define("trijet_pt", "kin::system_pt(Jet_pt, Jet_eta, Jet_phi, Jet_mass, trijet)")
            .Define("trijet_btag", "kin::max_at(Jet_btag, trijet)")
        )
        return {
            "q6_trijet_pt": d.Histo1D(model("q6_trijet_pt"), "trijet_pt"),
            "q6_trijet_btag": d.Histo1D(model("q6_trijet_btag"), "trijet_btag"),
        }
    if query == "q7":
        d = df.Define(
            "clean",
            "Jet_pt > 30 && kin::delta_r_clean(Jet_eta, Jet_phi, Muon_eta[Muon_pt > 10], Muon_phi[Muon_pt > 10], 0.4)"
            " && kin::delta_r_clean(Jet_eta, Jet_phi, Electron_eta[Electron_pt > 10],"
            " Electron_phi[Electron_pt > 10], 0.4)",
        ).Define("ht", "kin::scalar_sum(Jet_pt[clean])")
        return {"q7_ht": d.Histo1D(model("q7_ht"), "ht")}
    d = df.Filter("nMuon + nElectron >= 3")
    for field in ("pt", "eta", "phi", "mass", "charge"):
        d = d.Define(f"lep_{field}", f"Concatenate(Muon_{field}, Electron_{field})")
    d = (
        d.Define("lep_flavour", "Concatenate(ROOT::RVecI(nMuon, 13), ROOT::RVecI(nElectron, 11))")
        .Define(
            "pair", "kin::sfos_pair_closest_to_mass(lep_pt, lep_eta, lep_phi, lep_mass, lep_charge, lep_flavour, 91.2)"
        )
        .Filter("pair.size() == 2")
        .Define("mt", "kin::transverse_mass(lep_pt, lep_phi, kin::leading_excluding(lep_pt, pair), MET_pt, MET_phi)")
    )
    return {"q8_mt": d.Histo1D(model("q8_mt"), "mt")}


def process_age() -> float:
    sys.path.insert(0, str(REPO))
    from framework.timing import process_age as age

    return age()


def run_rdf(query: str, file: Path, threads: int) -> dict[str, Any]:
    """B. RDataFrame logs its own loop time (JIT excluded): "Finished event loop number 0 (... elapsed)"."""
    os.environ.setdefault("EXTRA_CLING_ARGS", "-O2")
    warnings.filterwarnings("ignore", message="(?s).*alpha stage")
    import ROOT

    ROOT.gInterpreter.ProcessLine("ROOT::Detail::RDF::RDFLogChannel().SetVerbosity(ROOT::ELogLevel::kInfo);")
    ROOT.EnableImplicitMT(threads)
    ROOT.gInterpreter.Declare(f'#include "{REPO / "cpp" / "kinematics.h"}"')
    df = ROOT.RDataFrame("Events", str(file))
    booked = rdf_query(df, query)
    first = next(iter(booked.values()))
    first.GetValue()  # JIT and the event loop, for every histogram of the query
    done = process_age()
    out = {}
    for name, h in booked.items():
        h = h.GetValue()
        out[name] = [h.GetBinContent(i) for i in range(h.GetNbinsX() + 2)]
    return {"done_s": done, "histograms": out}


LOOP_LOG = re.compile(r"Finished event loop number \d+ \(([\d.e+-]+)s CPU, ([\d.e+-]+)s elapsed\)")


# ------------------------------------------------------------------------- C: uproot + awkward


def _momentum(pt: Any, eta: Any, phi: Any, mass: Any) -> tuple[Any, Any, Any, Any]:
    import numpy as np

    x, y, z = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    return x, y, z, np.sqrt(x * x + y * y + z * z + mass * mass)


def _system(parts: list[tuple[Any, Any, Any, Any]]) -> tuple[Any, Any]:
    """Mass and pT of the sum of four-momenta, added in the order given (as the C++ helper does)."""
    import numpy as np

    px, py, pz, e = parts[0]
    for x, y, z, en in parts[1:]:
        px, py, pz, e = px + x, py + y, pz + z, e + en
    return np.sqrt(np.maximum(e * e - px * px - py * py - pz * pz, 0.0)), np.sqrt(px * px + py * py)


def columnar_chunk(query: str, file: str, start: int, stop: int) -> dict[str, np.ndarray]:
    """The query on entries [start, stop): name -> bin counts with flow bins."""
    import awkward as ak
    import hist
    import numpy as np
    import uproot

    with uproot.open(file) as f:
        e = f["Events"].arrays(BRANCHES[query], entry_start=start, entry_stop=stop)
    e = ak.zip({k: ak.values_astype(e[k], np.float64) for k in e.fields}, depth_limit=1)
    values: dict[str, Any] = {}
    if query == "q1":
        values["q1_met"] = e.MET_pt
    elif query == "q2":
        values["q2_jet_pt"] = ak.flatten(e.Jet_pt)
    elif query == "q3":
        values["q3_jet_pt"] = ak.flatten(e.Jet_pt[abs(e.Jet_eta) < 1])
    elif query == "q4":
        values["q4_met"] = e.MET_pt[ak.sum(e.Jet_pt > 40, axis=1) >= 2]
    elif query == "q5":
        mu = ak.zip({f: e[f"Muon_{f}"] for f in ("pt", "eta", "phi", "mass", "charge")})
        a, b = ak.unzip(ak.combinations(mu, 2))
        mass, _ = _system([_momentum(a.pt, a.eta, a.phi, a.mass), _momentum(b.pt, b.eta, b.phi, b.mass)])
        good = (a.charge != b.charge) & (mass > 60) & (mass < 120)
        values["q5_met"] = e.MET_pt[ak.any(good, axis=1)]
    elif query == "q6":
        jets = ak.zip({f: e[f"Jet_{f}"] for f in ("pt", "eta", "phi", "mass", "btag")})[ak.num(e.Jet_pt) >= 3]
        a, b, c = ak.unzip(ak.combinations(jets, 3))
        mass, pt = _system([_momentum(j.pt, j.eta, j.phi, j.mass) for j in (a, b, c)])
        best = ak.argmin(abs(mass - 172.5), axis=1, keepdims=True)
        values["q6_trijet_pt"] = ak.flatten(pt[best])
        btag = np.maximum(np.maximum(a.btag, b.btag), c.btag)
        values["q6_trijet_btag"] = ak.flatten(btag[best])
    elif query == "q7":
        jets = ak.zip({f: e[f"Jet_{f}"] for f in ("pt", "eta", "phi")})
        jets = jets[jets.pt > 30]
        clean = ak.ones_like(jets.pt, dtype=bool)
        for lepton in ("Muon", "Electron"):
            lep = ak.zip({f: e[f"{lepton}_{f}"] for f in ("pt", "eta", "phi")})
            lep = lep[lep.pt > 10]
            jet, other = ak.unzip(ak.cartesian([jets, lep], nested=True))
            deta = jet.eta - other.eta
            dphi = abs(jet.phi - other.phi)
            dphi = ak.where(dphi > np.pi, 2 * np.pi - dphi, dphi)
            clean = clean & ak.all(deta * deta + dphi * dphi >= 0.4 * 0.4, axis=2)
        values["q7_ht"] = ak.sum(jets.pt[clean], axis=1)
    else:
        fields = ("pt", "eta", "phi", "mass", "charge")
        lep = ak.concatenate(
            [
                ak.zip({**{f: e[f"Muon_{f}"] for f in fields}, "flavour": 13 * ak.ones_like(e.Muon_pt)}),
                ak.zip({**{f: e[f"Electron_{f}"] for f in fields}, "flavour": 11 * ak.ones_like(e.Electron_pt)}),
            ],
            axis=1,
        )
        lep = ak.with_field(lep, ak.local_index(lep.pt), "index")
        pairs = ak.combinations(lep, 2)
        a, b = ak.unzip(pairs)
        mass, _ = _system([_momentum(a.pt, a.eta, a.phi, a.mass), _momentum(b.pt, b.eta, b.phi, b.mass)])
        sfos = (a.flavour == b.flavour) & (a.charge != b.charge)
        distance = ak.where(sfos, abs(mass - 91.2), np.inf)
        keep = (ak.num(lep.pt) >= 3) & ak.any(sfos, axis=1)
        best = ak.argmin(distance[keep], axis=1, keepdims=True)
        a, b, lep, met = a[keep][best], b[keep][best], lep[keep], e[keep]
        others = lep[(lep.index != ak.flatten(a.index)) & (lep.index != ak.flatten(b.index))]
        leading = others[ak.argmax(others.pt, axis=1, keepdims=True)]
        pt, phi = ak.flatten(leading.pt), ak.flatten(leading.phi)
        values["q8_mt"] = np.sqrt(2.0 * pt * met.MET_pt * (1.0 - np.cos(phi - met.MET_phi)))
    out = {}
    for name, v in values.items():
        bins, low, high = BINNING[name]
        h = hist.Hist.new.Reg(bins, low, high).Double()
        h.fill(ak.to_numpy(v))
        out[name] = h.view(flow=True).copy()
    return out


def run_columnar(query: str, file: Path, workers: int) -> dict[str, Any]:
    from concurrent.futures import ProcessPoolExecutor

    import uproot

    with uproot.open(file) as f:
        entries = f["Events"].num_entries
    pool = ProcessPoolExecutor(workers)
    list(pool.map(int, range(workers)))  # start the workers before the clock of the loop
    setup = process_age()
    ready = time.perf_counter()
    chunk = -(-entries // (4 * workers))
    starts = list(range(0, entries, chunk))
    parts = list(
        pool.map(columnar_chunk, [query] * len(starts), [str(file)] * len(starts), starts, [s + chunk for s in starts])
    )
    done = time.perf_counter()
    pool.shutdown()
    total = {name: sum(p[name] for p in parts) for name in parts[0]}
    return {"setup_s": setup, "loop_s": done - ready, "histograms": {k: v.tolist() for k, v in total.items()}}


# ----------------------------------------------------------------------------- A: the framework


def framework_config(folder: Path, queries: list[str], file: Path) -> Path:
    includes = [str(ADL / "common.yaml"), *[str(ADL / "queries" / f"{q}.yaml") for q in queries]]
    text = (
        f"schema: 1\nanalysis: adl_{'_'.join(queries)}\ninclude: {json.dumps(includes)}\n"
        f"samples:\n  adl: {{files: [{json.dumps(str(file))}], is_data: true}}\n"
    )
    path = folder / f"adl_{'_'.join(queries) if len(queries) == 1 else 'all'}.yaml"
    path.write_text(text)
    return path


def run_framework(config: Path, out: Path, threads: int, env: dict[str, str], warm_up: bool) -> dict[str, Any]:
    """A, timed by the framework itself (`--profile`): set-up = process start to the first event."""
    command = [
        sys.executable,
        "-m",
        "framework",
        str(config),
        "-o",
        str(out),
        "-j",
        str(threads),
        "--force",
        "--no-progress",
    ]
    if warm_up:  # untimed: the steps compiled into the cache for the timed run
        subprocess.run([*command, "--compile", "now"], capture_output=True, text=True, cwd=REPO, env=env, check=True)
    profile = out.with_suffix(".profile.json")
    start = time.perf_counter()
    proc = subprocess.run(
        [*command, "--compile", "off", "--profile", str(profile)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        check=False,
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"framework failed on {config}:\n{proc.stderr}")
    timing = json.loads(profile.read_text())
    import zipfile

    import hist
    import uhi.io.zip

    histograms = {}
    with zipfile.ZipFile(out / "adl.hist.zip") as z:
        for name in BINNING:
            if f"{name}.json" in z.namelist():
                h = hist.Hist(uhi.io.zip.read(z, name))
                histograms[name] = h[{"systematic": "nominal"}].view(flow=True).value.tolist()
    return {
        "setup_s": timing["setup"],
        "loop_s": timing["loop"],
        "wall_s": wall,
        "profile": timing,
        "histograms": histograms,
    }


# ------------------------------------------------------------------------------------- driver


def _in_subprocess(role: str, query: str, file: Path, threads: int) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".json") as tmp:
        start = time.perf_counter()
        proc = subprocess.run(
            [
                sys.executable,
                __file__,
                "--role",
                role,
                "--query",
                query,
                "--file",
                str(file),
                "--threads",
                str(threads),
                "--result",
                tmp.name,
            ],
            check=True,
            cwd=REPO,
            capture_output=True,
            text=True,
        )
        result = json.loads(Path(tmp.name).read_text())
        result["wall_s"] = time.perf_counter() - start
    if role == "rdf":
        loops = [float(m.group(2)) for m in LOOP_LOG.finditer(proc.stderr)]
        if len(loops) != 1:
            raise SystemExit(f"B on {query}: expected one loop in RDataFrame's log, found {loops}")
        result["loop_s"] = loops[0]
        result["setup_s"] = result["done_s"] - loops[0]
    return result


def ensure_file(events: int, fmt: str) -> Path:
    """The generated ADL events (seed 31) as a TTree or, the same events, as an RNTuple."""
    CACHE.mkdir(exist_ok=True)
    path = CACHE / (f"adl_{events}.root" if fmt == "ttree" else f"adl_{events}_{fmt}.root")
    if not path.exists():
        code = (
            "from pathlib import Path; from framework.testing.generate import write_events; "
            "from framework.config.schema.analysis import GeneratorSpec; "
            f"write_events(GeneratorSpec(process='adl', events={events}, seed=31, format={fmt!r}), Path({str(path)!r}))"
        )
        subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
    return path


def same(*runs: dict[str, Any], names: list[str]) -> bool:
    return all(np.array_equal(runs[0]["histograms"][n], r["histograms"][n]) for r in runs[1:] for n in names)


def benchmark_format(fmt: str, args: argparse.Namespace, folder: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    file = ensure_file(args.events, fmt)
    cache = folder / "cache"
    env = {**os.environ, "RDF_ANALYSIS_CACHE": str(cache)}

    def framework(queries: list[str], out: Path) -> dict[str, Any]:
        if args.cold:
            shutil.rmtree(cache, ignore_errors=True)
        return run_framework(framework_config(folder, queries, file), out, args.threads, env, warm_up=not args.cold)

    def best(run: Any) -> dict[str, Any]:
        """The run with the shortest loop of `--repeat` runs: loops of 0.1 s vary by tens of percent."""
        return min((run() for _ in range(args.repeat)), key=lambda r: r["loop_s"])

    rows = []
    per_query: dict[str, Any] = {}  # A's histograms of the one-query runs
    for q in args.queries:
        a = best(partial(framework, [q], folder / f"out_{fmt}_{q}"))
        b = best(partial(_in_subprocess, "rdf", q, file, args.threads))
        c = best(partial(_in_subprocess, "columnar", q, file, args.threads))
        per_query.update(a["histograms"])
        row = {"query": q, "format": fmt, "events": args.events}
        for who, r in (("a", a), ("b", b), ("c", c)):
            row.update(
                {
                    f"{who}_setup_s": r["setup_s"],
                    f"{who}_loop_s": r["loop_s"],
                    f"{who}_s": r["wall_s"],
                    f"{who}_rate": args.events / r["loop_s"],
                }
            )
        row.update(
            a_over_b=row["a_rate"] / row["b_rate"],
            a_over_c=row["a_rate"] / row["c_rate"],
            equal=same(a, b, c, names=histograms_of(q)),
            a_setup_parts=a["profile"],
        )
        rows.append(row)
        print(
            f"{fmt} {q}: set-up A {row['a_setup_s']:.2f} s, B {row['b_setup_s']:.2f} s, C {row['c_setup_s']:.2f} s; "
            f"loop A {row['a_loop_s']:.2f} s, B {row['b_loop_s']:.2f} s, C {row['c_loop_s']:.2f} s; "
            f"equal {row['equal']}",
            flush=True,
        )
    together = framework(args.queries, folder / f"out_{fmt}_all")
    names = [n for q in args.queries for n in histograms_of(q)]
    all_in_one = {
        "format": fmt,
        "a_s": together["wall_s"],
        "a_setup_s": together["setup_s"],
        "a_loop_s": together["loop_s"],
        "b_s": sum(r["b_s"] for r in rows),
        "c_s": sum(r["c_s"] for r in rows),
        "equal": all(np.array_equal(together["histograms"][n], per_query[n]) for n in names),
    }
    print(
        f"{fmt}: all {len(args.queries)} queries end to end: A in one run {all_in_one['a_s']:.1f} s, "
        f"B query by query {all_in_one['b_s']:.1f} s, C query by query {all_in_one['c_s']:.1f} s",
        flush=True,
    )
    return rows, all_in_one


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=200_000)
    p.add_argument("--threads", type=int, default=2, help="A and B threads; C worker processes")
    p.add_argument("--json", type=Path, help="write the results here")
    p.add_argument("--queries", nargs="+", default=QUERIES, choices=QUERIES)
    p.add_argument("--format", choices=("ttree", "rntuple", "both"), default="both")
    p.add_argument("--cold", action="store_true", help="A from an empty cache in every run (default: warm)")
    p.add_argument(
        "--repeat", type=int, default=1, help="run A, B and C this many times, keep each one's shortest loop"
    )
    p.add_argument("--role", choices=("rdf", "columnar"), help=argparse.SUPPRESS)
    p.add_argument("--query", help=argparse.SUPPRESS)
    p.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.role:
        run = run_rdf if args.role == "rdf" else run_columnar
        args.result.write_text(json.dumps(run(args.query, args.file, args.threads)))
        return
    formats = ["ttree", "rntuple"] if args.format == "both" else [args.format]
    rows: list[dict[str, Any]] = []
    together = []
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in formats:
            found, all_in_one = benchmark_format(fmt, args, Path(tmp))
            rows += found
            together.append(all_in_one)
    result = {
        "events": args.events,
        "threads": args.threads,
        "cache": "cold" if args.cold else "warm",
        "repeat": args.repeat,
        "queries": rows,
        "all_in_one": together,
    }
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
