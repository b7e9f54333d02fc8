"""Shape systematics from correctionlib, one-sided systematics and many-source sets.

One run of generated ttbar and Drell-Yan events (5000 each) with synthetic corrections
(framework.testing.generate.write_shape_corrections: formulas and binnings whose C++ equivalents are
written here): the varied columns per object against correctionlib's Python evaluation on the same
events, the histograms against equivalent `kind: shape` expressions bin for bin, one-sided entries
and their mirror images in the exports. The expansion of sets is tested on the plan alone (no ROOT).
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import awkward as ak
import correctionlib
import numpy as np
import pytest
import uproot

from framework.app.cli import main
from framework.config.load import load_config
from framework.errors import ConfigError
from framework.execute.pipeline import RunOptions, execute
from framework.plan.model import RunSelection
from framework.plan.select import select_systematics
from framework.plan.systematics import declared_systematics
from framework.present.results import systematic_shifts, variation_templates
from framework.stats.declare import make_model_plan

EVENTS = 5000
# The run: correction-based shape systematics and, named x_*, their expression-based equivalents
# (the synthetic corrections as C++: generate.JES_SOURCES, jer, muon_scale).
CONFIG = """
analysis: correction_shapes
lumi: 1.0
samples:
  ttbar: {files: ["@ttbar@"], xsec: 1.0}
  dy: {files: ["@zmumu@"], xsec: 1.0}
weight: "1"
generator_weight: "1"
collections:
  GoodJet: {from: Jet, where: "Jet_pt > 30 && abs(Jet_eta) < 2.4"}
defines:
  HT: Sum(GoodJet_pt)
systematics:
  jes:
    kind: shape
    column: Jet_pt
    correction: {file: "@shape_corrections@", correction: "jes_{source}", sources: all, inputs: {eta: Jet_eta, pt: Jet_pt}}
  jes_in:
    kind: shape
    column: Jet_pt
    correction:
      file: "@shape_corrections@"
      correction: by_source
      source_input: source
      sources: [RelativeBal]
      inputs: {eta: Jet_eta, pt: Jet_pt}
  jer:
    kind: shape
    column: Jet_pt
    one_sided: true
    correction: {file: "@shape_corrections@", correction: jer, apply: factor, inputs: {eta: Jet_eta, pt: Jet_pt}}
  mu_scale:
    kind: shape
    column: Muon_pt
    correction:
      file: "@shape_corrections@"
      correction: muon_scale
      apply: factor
      key_input: variation
      inputs: {charge: Muon_charge, pt: Muon_pt}
  x_Absolute: {kind: shape, column: Jet_pt, up: "Jet_pt * (1 + (0.01 + 0.0001 * Jet_pt))", down: "Jet_pt * (1 - (0.01 + 0.0001 * Jet_pt))"}
  x_jer: {kind: shape, column: Jet_pt, up: "Jet_pt * ((1 + 0.0002 * Jet_pt) * Where(abs(Jet_eta) < 1.5, 1.02, 1.05))"}
  x_mu_scale:
    kind: shape
    column: Muon_pt
    up: "Muon_pt * Where(Muon_charge > 0, 1.001 + 0.00001 * Muon_pt, 1.002 + 0.00001 * Muon_pt)"
    down: "Muon_pt * Where(Muon_charge > 0, 0.999 + 0.00001 * Muon_pt, 0.998 + 0.00001 * Muon_pt)"
  norm_up: {kind: weight, up: "1.1"}
histograms:
  ht: {axes: [{expr: HT, bins: 40, range: [0, 800]}]}
  mupt: {axes: [{expr: Muon_pt, bins: 30, range: [0, 150]}]}
  jet0: {axes: [{expr: "float(event)", name: event, integer: [1, @end@]}], weight: "Jet_pt[0]", where: "nJet > 0"}
  jet1: {axes: [{expr: "float(event)", name: event, integer: [1, @end@]}], weight: "Jet_pt[1]", where: "nJet > 1"}
  muon0: {axes: [{expr: "float(event)", name: event, integer: [1, @end@]}], weight: "Muon_pt[0]", where: "nMuon > 0"}
model:
  channels:
    ht: {histogram: ht, range: [40, 200], rebin: 2}
  signal: [ttbar]
  systematics: {jes: norm}
"""  # noqa: E501 (YAML: one flow mapping per line, as users write it)


def _filled(text: str, generated: dict[str, Path]) -> str:
    for name, path in {**generated, "end": EVENTS + 1}.items():
        text = text.replace(f"@{name}@", str(path))
    return text


def _config(folder: Path, generated: dict[str, Path]) -> Path:
    path = folder / "config.yaml"
    path.write_text(_filled(CONFIG, generated))
    return path


@pytest.fixture(scope="module")
def run(generated, tmp_path_factory):
    folder = tmp_path_factory.mktemp("correction_shapes")
    config = _config(folder, generated)
    selection = RunSelection(max_events=EVENTS)
    report = execute(RunOptions(config=config, output=folder / "out", threads=2, selection=selection))
    return config, folder / "out", report


def _sample(report, name):
    return next(s for s in report.result.samples if s.sample.name == name)


def test_varied_columns_per_object_equal_correctionlib_in_python(run, generated):
    """Each jet's (first three) and muon's (first two) varied pT, read through one histogram per object
    position (one bin per event, weighted by the object's pT), against correctionlib's Python evaluation."""
    _, _, report = run
    ttbar = _sample(report, "ttbar")
    cset = correctionlib.CorrectionSet.from_file(str(generated["shape_corrections"]))
    e = uproot.open(generated["ttbar"])["Events"].arrays(
        ["event", "Jet_pt", "Jet_eta", "Muon_pt", "Muon_charge"], entry_stop=EVENTS
    )

    def flat(array) -> np.ndarray:
        return ak.to_numpy(ak.flatten(array)).astype(np.float64)

    pt, eta = flat(e.Jet_pt), flat(e.Jet_eta)
    mpt, charge = flat(e.Muon_pt), ak.to_numpy(ak.flatten(e.Muon_charge)).astype(np.int64)

    def jets(factor: np.ndarray):
        return ak.unflatten((pt * factor).astype(np.float32), ak.num(e.Jet_pt))

    def muons(factor: np.ndarray):
        return ak.unflatten((mpt * factor).astype(np.float32), ak.num(e.Muon_pt))

    absolute = cset["jes_Absolute"].evaluate(eta, pt)
    expected = {
        "nominal": (e.Jet_pt, e.Muon_pt),
        "jes_AbsoluteUp": (jets(1 + absolute), None),
        "jes_AbsoluteDown": (jets(1 - absolute), None),
        "jes_FlavorQCDDown": (jets(1 - cset["jes_FlavorQCD"].evaluate(eta, pt)), None),
        "jes_in_RelativeBalUp": (jets(1 + cset["by_source"].evaluate("RelativeBal", eta, pt)), None),
        "jerUp": (jets(cset.compound["jer"].evaluate(pt, eta)), None),
        "mu_scaleUp": (None, muons(cset["muon_scale"].evaluate("up", charge, mpt))),
        "mu_scaleDown": (None, muons(cset["muon_scale"].evaluate("down", charge, mpt))),
    }
    events = ak.to_numpy(e.event).astype(np.int64)
    for entry, (jet_pt, muon_pt) in expected.items():
        for name, values, k in [("jet", jet_pt, 0), ("jet", jet_pt, 1), ("muon", muon_pt, 0)]:
            if values is None:
                continue
            has = ak.to_numpy(ak.num(values) > k)
            want = np.zeros(EVENTS)
            want[events[has] - 1] = ak.to_numpy(values[has][:, k]).astype(np.float64)
            got = ttbar.histograms[f"{name}{k}"][{"systematic": entry}].values() / ttbar.norm
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=0, err_msg=f"{entry} {name}{k}")
            assert entry == "nominal" or not np.allclose(got, _nominal(ttbar, f"{name}{k}") / ttbar.norm)


def _nominal(sample, histogram: str) -> np.ndarray:
    return sample.histograms[histogram][{"systematic": "nominal"}].values()


@pytest.mark.parametrize(
    ("ours", "expression"),
    [
        ("jes_Absolute", "x_Absolute"),  # a formula
        ("jes_in_RelativeBal", "jes_RelativeBal"),  # a source input, against a correction per source
        ("jer", "x_jer"),  # a compound correction, one-sided
        ("mu_scale", "x_mu_scale"),  # key_input and an int input
    ],
)
def test_histograms_equal_the_expression_variations(run, ours, expression):
    """HT (jets migrate across the pT > 30 cut) and muon pT, every bin (flow too, values and variances)."""
    _, _, report = run
    for sample in report.result.samples:
        for name in ("ht", "mupt"):
            h = sample.histograms[name]
            entries = list(h.axes["systematic"])
            directions = ("Up",) if ours == "jer" else ("Up", "Down")
            for d in directions:
                got, want = h[{"systematic": f"{ours}{d}"}], h[{"systematic": f"{expression}{d}"}]
                np.testing.assert_array_equal(got.values(flow=True), want.values(flow=True))
                np.testing.assert_array_equal(got.variances(flow=True), want.variances(flow=True))
            assert (f"{ours}Down" in entries) == (len(directions) == 2)
    moved = _sample(report, "ttbar").histograms["ht" if ours.startswith(("j", "x")) else "mupt"]
    assert not np.array_equal(moved[{"systematic": f"{ours}Up"}].values(), moved[{"systematic": "nominal"}].values())


def test_one_sided_entries_and_provenance(run):
    _, out, report = run
    entries = list(_sample(report, "ttbar").histograms["ht"].axes["systematic"])
    for name in ("jer", "x_jer", "norm_up"):
        assert f"{name}Up" in entries and f"{name}Down" not in entries
    assert entries[:2] == ["nominal", "norm_upUp"]
    with zipfile.ZipFile(out / "ttbar.hist.zip") as z:
        provenance = json.loads(z.read("provenance.json"))
    assert provenance["one_sided"] == ["jer", "x_jer", "norm_up"]
    assert provenance["systematics"][:3] == ["jes_Absolute", "jes_FlavorQCD", "jes_RelativeBal"]
    h = _sample(report, "dy").histograms["mupt"]
    np.testing.assert_allclose(h[{"systematic": "norm_upUp"}].values(), 1.1 * h[{"systematic": "nominal"}].values())


def test_exports_mirror_one_sided_systematics_and_say_so(run, tmp_path):
    """The datacard, shapes and HistFactory XML: one-sided systematics get Down = 2 nominal - Up, named
    in a comment; the model takes `jes` (a set) as normalisation for each of its members."""
    config, out, _ = run
    assert main(["export", str(config), "-i", str(out), "-o", str(tmp_path / "exports")]) == 0
    card = (tmp_path / "exports" / "datacard.txt").read_text()
    note = card.splitlines()[1]
    assert note.startswith("# one-sided systematics (only <name>Up in the run), their Down the mirror image")
    assert note.endswith(": jer, x_jer, norm_up")
    rows = {w[0]: w[1] for w in map(str.split, card.splitlines()) if w[1:2] in (["lnN"], ["shape"])}
    assert rows["norm_up"] == rows["jer"] == rows["jes_in_RelativeBal"] == "shape"
    assert rows["jes_Absolute"] == rows["jes_RelativeBal"] == "lnN"  # the set's treatment, `jes: norm`
    assert "mu_scale" not in rows  # muons do not move HT: no effect, no nuisance
    shapes = uproot.open(tmp_path / "exports" / "shapes.root")
    nominal = shapes["ht/dy"].values()
    np.testing.assert_allclose(shapes["ht/dy_norm_upUp"].values(), 1.1 * nominal, rtol=1e-12)
    np.testing.assert_allclose(shapes["ht/dy_norm_upDown"].values(), 0.9 * nominal, rtol=1e-12)
    for process in ("ttbar", "dy"):
        up, nominal = shapes[f"ht/{process}_jerUp"].values(), shapes[f"ht/{process}"].values()
        assert not np.allclose(up, nominal)
        np.testing.assert_allclose(
            shapes[f"ht/{process}_jerDown"].values(), np.maximum(2 * nominal - up, 0), rtol=1e-12
        )
    channel = (tmp_path / "exports" / "histfactory" / "channels" / "ht.xml").read_text()
    assert f"<!-- {note[2:]} -->" in channel


def test_templates_mirror_a_lone_up_entry():
    """What plot bands, tables and exports read: the Up entry and its mirror image (not below 0)."""
    values = np.array([[10.0, 12.0, 11.0, 9.5], [1.0, 2.5, 1.0, 1.0]])  # bins x (nominal, aUp, bUp, bDown)
    entries = ["nominal", "aUp", "bUp", "bDown"]
    templates = variation_templates(values, entries, ["a", "b"])
    np.testing.assert_array_equal(templates["a"][1], [8.0, 0.0])
    np.testing.assert_array_equal(templates["b"][1], [9.5, 1.0])
    up, down = systematic_shifts(values, entries, ["a"])["a"]
    np.testing.assert_array_equal(up, [2.0, 1.5])
    np.testing.assert_array_equal(down, [2.0, 1.0])


# ---------------------------------------------------------------- the plan alone


SETS = """
analysis: sets
lumi: 1.0
samples:
  ttbar: {files: ["@ttbar@"], xsec: 1.0}
  dy: {files: ["@zmumu@"], xsec: 1.0}
systematics:
  jes:
    kind: shape
    column: Jet_pt
    correction: {file: "@shape_corrections@", correction: "jes_{source}", sources: all, inputs: {eta: Jet_eta, pt: Jet_pt}}
  unc:
    kind: shape
    column: Jet_pt
    group: jets
    correction: {file: "@shape_corrections@", correction: by_source, source_input: source, sources: all, inputs: {eta: Jet_eta, pt: Jet_pt}}
  btag:
    kind: correctionlib
    file: "@shape_corrections@"
    correction: btag_sf
    key_input: systematic
    nominal: central
    up: "up_{source}"
    down: "down_{source}"
    sources: all
    inputs: {pt: Jet_pt}
  res: {kind: shape, column: Jet_pt, up: "Jet_pt * 1.1", group: jets}
histograms:
  h: {axes: [{expr: MET_pt, bins: 10, range: [0, 100]}]}
model:
  channels:
    h: {histogram: h}
  signal: [ttbar]
  systematics: {jes: norm, jes_FlavorQCD: drop}
"""  # noqa: E501 (YAML: one flow mapping per line, as users write it)


def test_sets_expand_in_the_plan(generated, tmp_path):
    config_path = tmp_path / "config.yaml"
    config_path.write_text(_filled(SETS, generated))
    config = load_config(config_path)
    members = declared_systematics(config)
    sources = ["Absolute", "FlavorQCD", "RelativeBal"]
    assert list(members) == [
        *(f"jes_{s}" for s in sources),
        *(f"unc_{s}" for s in sources),
        "btag_hf",
        "btag_lf",
        "res",
    ]
    assert [(m.declared, m.source, m.group) for m in members.values()][:4] == [
        ("jes", "Absolute", "jes"),
        ("jes", "FlavorQCD", "jes"),
        ("jes", "RelativeBal", "jes"),
        ("unc", "Absolute", "jets"),
    ]
    assert members["res"].one_sided and not members["jes_Absolute"].one_sided
    assert select_systematics(config, "jes") == [f"jes_{s}" for s in sources]
    assert select_systematics(config, "jets") == [*(f"unc_{s}" for s in sources), "res"]
    assert select_systematics(config, "btag*") == ["btag_hf", "btag_lf"]
    treatments = make_model_plan(config).treatments
    assert treatments["jes_Absolute"] == "norm" and treatments["jes_FlavorQCD"] == "drop"
    assert treatments["unc_Absolute"] == "shape"

    from test_plan import nanoaod  # tests/ is on the path

    plan_json = _plan(config, nanoaod(str(generated["ttbar"]), 20000), "btag,unc_FlavorQCD,res")
    dataset = plan_json.datasets[0]
    assert dataset.systematic_entries == [
        "nominal",
        "btag_hfUp",
        "btag_hfDown",
        "btag_lfUp",
        "btag_lfDown",
        "unc_FlavorQCDUp",
        "unc_FlavorQCDDown",
        "resUp",
    ]
    assert plan_json.one_sided == ("res",) and dataset.one_sided == ("res",)
    vary = next(s for s in dataset.steps if s.kind == "vary" and s.name == "unc_FlavorQCD")
    assert vary.ups[0].endswith('"srr", "FlavorQCD", Jet_eta, Jet_pt)') and vary.downs[0].startswith(
        "fw::correction_vary(Jet_pt, -1, "
    )
    defines = {s.name: s.expression for s in dataset.steps if s.kind == "define"}
    assert '"sr", "up_lf", Jet_pt)' in defines["__sf_btag_lf_up"]
    assert '"sr", "central", Jet_pt)' in defines["__sf_btag_lf"]
    described = plan_json.describe()
    assert "res (one-sided)" in described and "down=(one-sided)" in described


def _plan(config, inputs, systematics):
    from framework.plan.make import make_plan

    return make_plan(config, {"ttbar": inputs}, RunSelection(samples=("ttbar",), systematics=systematics))


def test_a_set_member_named_twice_is_refused(generated, tmp_path):
    config_path = tmp_path / "config.yaml"
    text = _filled(SETS, generated).replace("  res: {", '  jes_Absolute: {kind: weight, up: "1.1"}\n  res: {')
    config_path.write_text(text)
    with pytest.raises(ConfigError, match="systematic 'jes_Absolute' is a member of set 'jes' and declared on its own"):
        declared_systematics(load_config(config_path))
