"""Deterministic NanoAOD-like event generator, written as ROOT files through RDataFrame.

Samples may declare `generate:` in their metadata; their files are made on first
use when missing (the demo runs on a fresh clone this way). Each event depends only
on (process, seed, entry), and files are written single-threaded, so the same
request always gives the same file, with ROOT's cluster boundaries.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from framework.config.load import LoadedConfig
from framework.engine.rootenv import declare_file, root
from framework.errors import ConfigError, InputError
from framework.testing.spec import GeneratorSpec

log = logging.getLogger(__name__)

PROCESS_CODES = {"zmumu": 0, "ttbar": 1, "adl": 2, "wjets": 3, "single_top": 4, "data": -1}
# Tag-and-probe samples: tightId efficiency of tracker muons per (|eta|, pT) bin, isolation
# scale, tracker efficiency and background fraction. "data" differs from "mc", so the true
# scale factors are known: id_data / id_mc, and for isolation < 0.15 given tightId,
# (1 - exp(-0.15 / iso_scale_data)) / (1 - exp(-0.15 / iso_scale_mc)).
TNP_ETA_EDGES = [0.0, 0.9, 1.2, 2.1, 2.4]
TNP_PT_EDGES = [20.0, 25.0, 30.0, 40.0, 60.0, 120.0]
_ID_MC = [round(0.975 - 0.015 * i - 0.03 * (4 - j) / 4, 4) for i in range(4) for j in range(5)]
TNP_TRUTH: dict[str, dict[str, Any]] = {
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
RNTUPLE_CLUSTER_BYTES = 2 << 20  # RNTuple's default clusters (~128 MB) would leave small files in one


# Flat open-data-style four-lepton ntuples (tree "mini", MeV), with per-sample XSection (pb)
# and SumWeights branches as open-data releases ship them.
FOUR_LEPTON_CODES = {"h4l": 0, "zz4l": 1, "zjets4l": 2, "data4l": -1}
FOUR_LEPTON_XSEC = {"h4l": 0.0133, "zz4l": 1.3, "zjets4l": 2.0}
FOUR_LEPTON_BRANCHES = [
    "lep_pt",
    "lep_eta",
    "lep_phi",
    "lep_E",
    "lep_charge",
    "lep_type",
    "lep_ptcone30",
    "lep_etcone20",
]
FOUR_LEPTON_SCALARS = [
    "mcWeight",
    "scaleFactor_ELE",
    "scaleFactor_MUON",
    "scaleFactor_LepTRIGGER",
    "scaleFactor_PILEUP",
]


def _four_lepton_frame(spec: GeneratorSpec, events: int) -> tuple[Any, list[str], str]:
    r = root()
    mixture = [spec.mixture.get(k, 0) for k in ("h4l", "zz4l")]
    first, second = mixture[0], mixture[0] + mixture[1]
    df = r.RDataFrame(events).Define(
        "ev",
        f"fwgen::generate_4l({FOUR_LEPTON_CODES[spec.process]}, {spec.seed}ULL, rdfentry_, {first}ULL, {second}ULL)",
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


# Cosmic muons through the drift-tube stand of analyses/cosmic_dt (geometry as in its dt.h):
# raw 64-bit TDC words in tree "raw" (one word per entry, orbit by orbit) and the truth per
# orbit in tree "truth".
DT_CELL, DT_HEIGHT, DT_VDRIFT = 42.0, 13.0, 0.0538  # mm, mm, mm/ns
DT_CHAMBER_Z = (0.0, 250.0, 500.0, 750.0)
DT_OFFSETS = (-5.0, -10.0, 3.0, 0.0)  # ns each chamber's hits arrive early (the analysis adds them back)
DT_TIME_SMEAR = 3.0  # ns


def _dt_word(
    tdc: np.ndarray, bx: np.ndarray, orbit: np.ndarray, channel: np.ndarray, fpga: np.ndarray, head: np.ndarray
) -> np.ndarray:
    u = np.uint64
    return (
        tdc.astype(u)
        | (bx.astype(u) << u(5))
        | (orbit.astype(u) << u(17))
        | (channel.astype(u) << u(49))
        | (fpga.astype(u) << u(58))
        | (head.astype(u) << u(61))
    )


def _dt_time(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    bx = np.floor(t / 25.0).astype(np.int64)
    tdc = np.clip(np.floor((t - 25.0 * bx) * 30.0 / 25.0), 0, 29).astype(np.int64)
    return tdc, bx


def _cosmic_tracks(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Per orbit: the track (slopes and positions at z = 0) and the trigger time t0, as the
    branches of the tree "truth"."""
    orbit = np.arange(n, dtype=np.int64) + 1000
    slope_x, slope_y = (
        np.tan(np.clip(rng.normal(0, 0.3, n), -0.8, 0.8)),
        np.tan(np.clip(rng.normal(0, 0.3, n), -0.8, 0.8)),
    )
    x0, y0 = rng.uniform(150, 520, n), rng.uniform(150, 520, n)
    has_t0 = rng.random(n) > 0.05
    t0 = 25.0 * rng.integers(100, 3000, n) + rng.uniform(0, 25, n)
    return {"orbit": orbit, "slope_x": slope_x, "x0": x0, "slope_y": slope_y, "y0": y0, "has_t0": has_t0, "t0": t0}


def _cosmic_hits(
    rng: np.random.Generator, truth: dict[str, np.ndarray], i: int
) -> tuple[list[float], list[int], list[int]]:
    """The hits of orbit `i`: its track's, noise and the t0 signal, as (times, channels, FPGAs)."""
    channels, fpgas, times = [], [], []
    t0 = truth["t0"]
    for chamber in range(4):
        start, slope = (truth["y0"][i], truth["slope_y"][i]) if chamber == 1 else (truth["x0"][i], truth["slope_x"][i])
        for layer in range(4):
            z = DT_CHAMBER_Z[chamber] + (layer + 0.5) * DT_HEIGHT
            x = start + slope * z
            stagger = (layer % 2) * DT_CELL / 2
            cell = int(np.floor((x - stagger) / DT_CELL))
            if not 0 <= cell < 16 or rng.random() > 0.95:  # outside, or a missing hit
                continue
            drift = abs(x - ((cell + 0.5) * DT_CELL + stagger))
            times.append(t0[i] + drift / DT_VDRIFT + rng.normal(0, DT_TIME_SMEAR) - DT_OFFSETS[chamber])
            channels.append((chamber % 2) * 64 + 4 * cell + layer)
            fpgas.append(chamber // 2)
    for _ in range(rng.poisson(0.5)):  # noise
        times.append(t0[i] + rng.uniform(-100, 500))
        channels.append(int(rng.integers(0, 128)))
        fpgas.append(int(rng.integers(0, 2)))
    if truth["has_t0"][i]:
        times.append(t0[i])
        channels.append(128)
        fpgas.append(1)
    return times, channels, fpgas


def _orbit_words(
    rng: np.random.Generator, times: list[float], channels: list[int], fpgas: list[int], orbit: int
) -> np.ndarray:
    """The TDC words of one orbit's hits, shuffled, sometimes followed by a word that is not a hit."""
    tdc, bx = _dt_time(np.array(times))
    heads = np.full(len(times), 2)
    order = rng.permutation(len(times))
    block = _dt_word(
        tdc[order],
        bx[order],
        np.full(len(times), orbit),
        np.array(channels)[order],
        np.array(fpgas)[order],
        heads,
    )
    if rng.random() < 0.1:  # a word that is not a hit (HEAD != 2), to be dropped
        block = np.append(block, _dt_word(*(np.array([v]) for v in (0, 0, orbit, 0, 0, 1))))
    return block


def write_cosmics(spec: GeneratorSpec, path: Path) -> int:
    """Straight cosmic tracks through four chambers, as raw TDC words plus the truth."""
    import uproot

    rng = np.random.default_rng(spec.seed)
    n = spec.events
    truth = _cosmic_tracks(rng, n)
    words: list[np.ndarray] = []
    for i in range(n):
        times, channels, fpgas = _cosmic_hits(rng, truth, i)
        words.append(_orbit_words(rng, times, channels, fpgas, truth["orbit"][i]))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with uproot.recreate(tmp) as f:
            f["raw"] = {"word": np.concatenate(words)}
            f["truth"] = truth
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return n


def write_events(spec: GeneratorSpec, path: Path) -> int:
    """Generate the events of `spec` into `path` (atomically). Returns the number of events."""
    if spec.process == "cosmic_dt":
        return write_cosmics(spec, path)
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
        if spec.format == "rntuple":
            options.fOutputFormat = r.RDF.ESnapshotOutputFormat.kRNTuple
            options.fApproxZippedClusterSize = RNTUPLE_CLUSTER_BYTES
        else:
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
        log.info("generating sample %r -> %s", name, path)
        try:
            write_events(sample.generate, path)
        except OSError as err:
            raise InputError(f"cannot write generated sample {name!r}: {err}") from err


def write_muon_scale_factors(path: Path, names: list[str]) -> None:
    """Synthetic muon scale factors as a correctionlib CorrectionSet: one correction per name,
    binned in |eta| x pt, with keys nominal/systup/systdown on the input 'scale_factors'."""
    import correctionlib.schemav2 as cs

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


# The synthetic corrections of `write_shape_corrections`, with what each one's value is as a C++
# expression (x the per-object argument): tests write the equivalent `kind: shape` expressions.
JES_SOURCES = {  # a relative uncertainty per source
    "Absolute": ("formula", "pt", "0.01+0.0001*x"),
    "FlavorQCD": ("binning", "eta", ([-5.0, -2.5, -1.3, 0.0, 1.3, 2.5, 5.0], [0.04, 0.03, 0.02, 0.02, 0.03, 0.04])),
    "RelativeBal": ("binning", "pt", ([0.0, 50.0, 100.0, 200.0, 1e9], [0.03, 0.02, 0.015, 0.01])),
}


def write_shape_corrections(path: Path) -> None:
    """Synthetic corrections for shape systematics, each a formula or a binning:

    - `jes_<source>` (inputs eta, pt): relative JES-like uncertainties of JES_SOURCES, one correction each;
    - `by_source` (inputs source, eta, pt): the same values chosen by the string input `source`;
    - `jer` (inputs pt, eta): a compound correction, the product of `jer_pt` (1 + 0.0002 pt) and
      `jer_eta` (1.02 for |eta| < 1.5, else 1.05), a JER-like scale factor;
    - `muon_scale` (inputs variation, charge, pt): a momentum scale factor with keys up and down,
      up 1.001 + 1e-5 pt (charge +1) or 1.002 + 1e-5 pt (charge -1), down 0.999 / 0.998 + 1e-5 pt;
    - `btag_sf` (inputs systematic, pt): a b-tag-like weight with keys central (1), up_hf/down_hf
      (1.05/0.95) and up_lf/down_lf (1.02/0.98): sources in the keys.
    """
    import correctionlib.schemav2 as cs

    real = {name: cs.Variable(name=name, type="real") for name in ("pt", "eta")}

    def content(kind: str, variable: str, data: Any) -> Any:
        if kind == "formula":
            return cs.Formula(nodetype="formula", expression=data, parser="TFormula", variables=[variable])
        edges, values = data
        return cs.Binning(nodetype="binning", input=variable, edges=edges, content=values, flow="clamp")

    def correction(name: str, inputs: list[cs.Variable], data: Any, output: str = "uncertainty") -> cs.Correction:
        return cs.Correction(
            name=name, version=1, inputs=inputs, output=cs.Variable(name=output, type="real"), data=data
        )

    corrections = [
        correction(f"jes_{source}", [real["eta"], real["pt"]], content(*spec)) for source, spec in JES_SOURCES.items()
    ]
    by_source = cs.Category(
        nodetype="category",
        input="source",
        content=[cs.CategoryItem(key=source, value=content(*spec)) for source, spec in JES_SOURCES.items()],
    )
    corrections.append(
        correction("by_source", [cs.Variable(name="source", type="string"), real["eta"], real["pt"]], by_source)
    )
    corrections.append(correction("jer_pt", [real["pt"]], content("formula", "pt", "1+0.0002*x"), "factor"))
    eta_factor = content("binning", "eta", ([-5.0, -1.5, 1.5, 5.0], [1.05, 1.02, 1.05]))
    corrections.append(correction("jer_eta", [real["eta"]], eta_factor, "factor"))

    def by_charge(plus: str, minus: str) -> cs.Category:
        return cs.Category(
            nodetype="category",
            input="charge",
            content=[
                cs.CategoryItem(key=1, value=content("formula", "pt", plus)),
                cs.CategoryItem(key=-1, value=content("formula", "pt", minus)),
            ],
        )

    scale = cs.Category(
        nodetype="category",
        input="variation",
        content=[
            cs.CategoryItem(key="up", value=by_charge("1.001+0.00001*x", "1.002+0.00001*x")),
            cs.CategoryItem(key="down", value=by_charge("0.999+0.00001*x", "0.998+0.00001*x")),
        ],
    )
    muon_inputs = [cs.Variable(name="variation", type="string"), cs.Variable(name="charge", type="int"), real["pt"]]
    corrections.append(correction("muon_scale", muon_inputs, scale, "factor"))
    btag = cs.Category(
        nodetype="category",
        input="systematic",
        content=[
            cs.CategoryItem(key=key, value=value)
            for key, value in (("central", 1.0), ("up_hf", 1.05), ("down_hf", 0.95), ("up_lf", 1.02), ("down_lf", 0.98))
        ],
    )
    corrections.append(
        correction("btag_sf", [cs.Variable(name="systematic", type="string"), real["pt"]], btag, "weight")
    )
    compound = cs.CompoundCorrection(
        name="jer",
        inputs=[real["pt"], real["eta"]],
        output=cs.Variable(name="factor", type="real"),
        inputs_update=[],
        input_op="*",
        output_op="*",
        stack=["jer_pt", "jer_eta"],
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    document = cs.CorrectionSet(schema_version=2, corrections=corrections, compound_corrections=[compound])
    path.write_text(document.model_dump_json(exclude_unset=True))
