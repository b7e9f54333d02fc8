"""Deterministic NanoAOD-like event generator, written as ROOT files through RDataFrame.

Samples may declare `generate:` in their metadata; their files are made on first
use when missing (the demo runs on a fresh clone this way). Each event depends only
on (process, seed, entry), and files are written single-threaded, so the same
request always gives the same file, with ROOT's cluster boundaries.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from .exceptions import ConfigError, InputError
from .load import LoadedConfig
from .rootenv import declare_file, root
from .schema import GeneratorSpec

PROCESS_CODES = {"zmumu": 0, "ttbar": 1, "adl": 2, "wjets": 3, "single_top": 4, "data": -1}
# Tag-and-probe samples: tightId efficiency of tracker muons per (|eta|, pT) bin, isolation
# scale, tracker efficiency and background fraction. "data" differs from "mc", so the true
# scale factors are known: id_data / id_mc, and for isolation < 0.15 given tightId,
# (1 - exp(-0.15 / iso_scale_data)) / (1 - exp(-0.15 / iso_scale_mc)).
TNP_ETA_EDGES = [0.0, 0.9, 1.2, 2.1, 2.4]
TNP_PT_EDGES = [20.0, 25.0, 30.0, 40.0, 60.0, 120.0]
_ID_MC = [round(0.975 - 0.015 * i - 0.03 * (4 - j) / 4, 4) for i in range(4) for j in range(5)]
TNP_TRUTH = {
    "tnp_mc": {"id": _ID_MC, "tracker": 0.99, "iso_scale": 0.04, "background": 0.0},
    "tnp_data": {
        "id": [round(e * (0.99 - 0.012 * (k // 5)), 4) for k, e in enumerate(_ID_MC)],
        "tracker": 0.98,
        "iso_scale": 0.05,
        "background": 0.2,
    },
}
COLLECTIONS = {
    "Muon": ["pt", "eta", "phi", "mass", "charge", "pfRelIso04_all", "tightId", "sip3d", "isTracker"],
    "Electron": ["pt", "eta", "phi", "mass", "charge", "pfRelIso03_all", "cutBased", "sip3d"],
    "Jet": ["pt", "eta", "phi", "mass", "btagCSVV2", "btag", "jetId", "hadronFlavour"],
}
SIMULATION_ONLY = {"genWeight", "LHEScaleWeight", "PSWeight", "Pileup_nTrueInt", "Jet_hadronFlavour"}
SCALARS = ["MET_pt", "MET_phi"]
CLUSTER_ENTRIES = 10000  # clusters let RDataFrame spread a file over threads


# Flat open-data-style four-lepton ntuples (tree "mini", MeV), with per-sample XSection (pb)
# and SumWeights branches as open-data releases ship them.
FOUR_LEPTON_CODES = {"h4l": 0, "zz4l": 1, "zjets4l": 2, "data4l": -1}
FOUR_LEPTON_XSEC = {"h4l": 0.0133, "zz4l": 1.3, "zjets4l": 2.0}
FOUR_LEPTON_BRANCHES = ["lep_pt", "lep_eta", "lep_phi", "lep_E", "lep_charge", "lep_type", "lep_ptcone30", "lep_etcone20"]
FOUR_LEPTON_SCALARS = ["mcWeight", "scaleFactor_ELE", "scaleFactor_MUON", "scaleFactor_LepTRIGGER", "scaleFactor_PILEUP"]


def _four_lepton_frame(spec: GeneratorSpec, events: int) -> tuple[Any, list[str], str]:
    r = root()
    mixture = [spec.mixture.get(k, 0) for k in ("h4l", "zz4l")]
    first, second = mixture[0], mixture[0] + mixture[1]
    df = r.RDataFrame(events).Define(
        "ev", f"fwgen::generate_4l({FOUR_LEPTON_CODES[spec.process]}, {spec.seed}ULL, rdfentry_, {first}ULL, {second}ULL)"
    )
    df = df.Define("eventNumber", "ULong64_t(rdfentry_ + 1)").Define("lep_n", "UInt_t(ev.lep_pt.size())")
    columns = ["eventNumber", "lep_n"]
    for name in FOUR_LEPTON_BRANCHES + (FOUR_LEPTON_SCALARS if spec.process != "data4l" else []):
        df = df.Define(name, f"ev.{name}")
        columns.append(name)
    if spec.process != "data4l":
        df = df.Define("XSection", f"float({FOUR_LEPTON_XSEC[spec.process]})").Define("SumWeights", f"float({events})")
        columns += ["XSection", "SumWeights"]
    return df, columns, "mini"


def _nanoaod_frame(spec: GeneratorSpec, events: int) -> tuple[Any, list[str], str]:
    r = root()
    if spec.process in TNP_TRUTH:
        t = TNP_TRUTH[spec.process]
        # built per event from literals: a global object with RVec members fails to
        # initialise in cling's JIT
        truth = (
            f"fwgen::TnpTruth{{{{{', '.join(map(str, TNP_ETA_EDGES))}}}, {{{', '.join(map(str, TNP_PT_EDGES))}}}, "
            f"{{{', '.join(map(str, t['id']))}}}, {t['tracker']}, {t['iso_scale']}, {t['background']}}}"
        )
        df = r.RDataFrame(events).Define("ev", f"fwgen::generate_tnp({truth}, {spec.seed}ULL, rdfentry_)")
    else:
        split = spec.mixture.get("zmumu", 0)
        df = r.RDataFrame(events).Define(
            "ev", f"fwgen::generate({PROCESS_CODES[spec.process]}, {spec.seed}ULL, rdfentry_, {split}ULL)"
        )
    df = df.Define("run", "UInt_t(1)").Define("luminosityBlock", "UInt_t(1 + rdfentry_ / 1000)")
    df = df.Define("event", "ULong64_t(rdfentry_ + 1)")
    columns = ["run", "luminosityBlock", "event"]
    for coll, fields in COLLECTIONS.items():
        df = df.Define(f"n{coll}", f"UInt_t(ev.{coll}_pt.size())")
        columns.append(f"n{coll}")
        for field in fields:
            df = df.Define(f"{coll}_{field}", f"ev.{coll}_{field}")
            columns.append(f"{coll}_{field}")
    for name in [*SCALARS, "genWeight", "LHEScaleWeight", "PSWeight", "Pileup_nTrueInt"]:
        df = df.Define(name, f"ev.{name}")
        columns.append(name)
    if spec.process == "data":
        columns = [c for c in columns if c not in SIMULATION_ONLY]
    return df, columns, "Events"


def write_events(spec: GeneratorSpec, path: Path) -> int:
    """Generate the events of `spec` into `path` (atomically). Returns the number of events."""
    r = root()
    declare_file(Path(__file__).parent / "cpp" / "generator.hxx")
    events = sum(spec.mixture.values()) if spec.process in ("data", "data4l") else spec.events
    if r.IsImplicitMTEnabled():
        r.DisableImplicitMT()  # one thread: entries in order, identical files every time
    frame = _four_lepton_frame if spec.process in FOUR_LEPTON_CODES else _nanoaod_frame
    df, columns, tree = frame(spec, events)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        options = r.RDF.RSnapshotOptions()
        options.fAutoFlush = CLUSTER_ENTRIES
        df.Snapshot(tree, str(tmp), columns, options)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return events


def ensure_generated(config: LoadedConfig, samples: list[str]) -> None:
    """Make the missing files of the given samples that declare `generate:`."""
    for name in samples:
        sample = config.spec.samples[name]
        if sample.generate is None:
            continue
        if len(sample.files) != 1 or any(ch in sample.files[0] for ch in "*?["):
            raise ConfigError(
                f"sample {name!r} declares 'generate' but not exactly one plain file path",
                config.locate("samples", name, "files"),
                "a generated sample writes one file: list its path, without wildcards",
            )
        path = (config.source.file_of(("samples", name, "files", 0)).parent / sample.files[0]).resolve()
        if path.exists():
            continue
        print(f"generating sample {name!r} -> {path}", file=sys.stderr)
        try:
            write_events(sample.generate, path)
        except OSError as err:
            raise InputError(f"cannot write generated sample {name!r}: {err}") from err


def write_muon_scale_factors(path: Path, names: list[str]) -> None:
    """Synthetic muon scale factors as a correctionlib CorrectionSet: one correction per name,
    binned in |eta| x pt, with keys nominal/systup/systdown on the input 'scale_factors'."""
    import correctionlib.schemav2 as cs  # noqa: PLC0415

    def binned(shift: float) -> cs.MultiBinning:
        return cs.MultiBinning(
            nodetype="multibinning",
            inputs=["abseta", "pt"],
            edges=[[0, 0.9, 1.2, 2.1, 2.4], [15, 30, 50, 100, 1e9]],
            content=[0.98 + 0.0025 * i + shift for i in range(16)],  # around 1: the generator has no mismodelling
            flow="clamp",
        )

    corrections = []
    for n, name in enumerate(names):
        step = 0.01 * (n + 1)
        keys = {"nominal": 0.0, "systup": step, "systdown": -step}
        corrections.append(
            cs.Correction(
                name=name,
                version=1,
                inputs=[
                    cs.Variable(name="scale_factors", type="string"),
                    cs.Variable(name="abseta", type="real"),
                    cs.Variable(name="pt", type="real"),
                ],
                output=cs.Variable(name="weight", type="real"),
                data=cs.Category(
                    nodetype="category",
                    input="scale_factors",
                    content=[cs.CategoryItem(key=k, value=binned(v)) for k, v in keys.items()],
                ),
            )
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    text = cs.CorrectionSet(schema_version=2, corrections=corrections).model_dump_json(exclude_unset=True)
    path.write_text(text)
