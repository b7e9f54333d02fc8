"""Histograms from the real CMS NanoAOD file equal an independent uproot + awkward computation."""

from __future__ import annotations

import awkward as ak
import hist
import numpy as np
import pytest
import uproot

FILE = "nanoAOD_2015_CMS_Open_Data_ttbar.root"
LUMI, XSEC = 1000.0, 831.76
JES = 1.05


@pytest.fixture(scope="module")
def report(shared_data, tmp_path_factory, kinematics_header):
    from framework.execute.pipeline import RunOptions, execute

    folder = tmp_path_factory.mktemp("nanoaod")
    config = folder / "config.yaml"
    config.write_text(
        f"""
analysis: nanoaod_check
cpp: ["{kinematics_header}"]
lumi: {LUMI}
samples:
  ttbar: {{files: ["{shared_data / FILE}"], xsec: {XSEC}}}
collections:
  GoodJet: {{from: Jet, where: "Jet_pt > 30 && abs(Jet_eta) < 2.4 && Jet_jetId >= 2", sort_by: pt}}
  GoodMuon: {{from: Muon, where: "Muon_pt > 10 && abs(Muon_eta) < 2.4"}}
defines:
  HT: kin::scalar_sum(GoodJet_pt)
selection:
  - {{name: two_jets, cut: "nGoodJet >= 2"}}
categories:
  nbtag: {{expr: "Sum(GoodJet_btagCSVV2 > 0.8)", integer: [0, 3]}}
  has_muon: {{expr: "nGoodMuon > 0", boolean: true}}
weight: genWeight
systematics:
  scale: {{kind: weight, from_array: LHEScaleWeight, indices: [0, 8]}}
  jes: {{kind: shape, column: Jet_pt, up: "Jet_pt * {JES}", down: "Jet_pt / {JES}"}}
histograms:
  ht: {{axes: [{{expr: HT, bins: 20, range: [0, 1000]}}, nbtag]}}
  jet_pt: {{axes: [{{expr: GoodJet_pt, edges: [30, 40, 60, 100, 200, 500]}}, has_muon]}}
  njet: {{axes: [{{expr: nGoodJet, integer: [0, 8]}}]}}
"""
    )
    return execute(RunOptions(config=config, output=folder / "out", threads=2))


@pytest.fixture(scope="module")
def events(shared_data):
    with uproot.open(shared_data / FILE) as f:
        return f["Events"].arrays(
            ["Jet_pt", "Jet_eta", "Jet_jetId", "Jet_btagCSVV2", "Muon_pt", "Muon_eta", "genWeight", "LHEScaleWeight"]
        )


def expected(events, jet_scale: float | None, weight_index: int | None) -> dict[str, hist.Hist]:
    """The three histograms, computed with awkward + hist only."""
    pt = events.Jet_pt
    if jet_scale is not None:
        pt = ak.values_astype(ak.values_astype(pt, np.float64) * jet_scale, np.float32)
    good = (pt > 30) & (abs(events.Jet_eta) < 2.4) & (events.Jet_jetId >= 2)
    gpt = pt[good]
    njet = ak.num(gpt)
    ht = ak.sum(ak.values_astype(gpt, np.float64), axis=1)
    nbtag = ak.sum(events.Jet_btagCSVV2[good] > 0.8, axis=1)
    has_muon = ak.sum((events.Muon_pt > 10) & (abs(events.Muon_eta) < 2.4), axis=1) > 0
    norm = LUMI * XSEC / ak.sum(ak.values_astype(events.genWeight, np.float64))
    w = ak.values_astype(events.genWeight, np.float64) * norm
    if weight_index is not None:
        w = w * events.LHEScaleWeight[:, weight_index]
    sel = njet >= 2
    h_ht = hist.Hist(hist.axis.Regular(20, 0, 1000), hist.axis.Integer(0, 3), storage=hist.storage.Weight())
    h_ht.fill(ht[sel], nbtag[sel], weight=w[sel])
    jets, mu, wj = ak.broadcast_arrays(gpt[sel], has_muon[sel], w[sel])
    h_pt = hist.Hist(
        hist.axis.Variable([30, 40, 60, 100, 200, 500]), hist.axis.Boolean(), storage=hist.storage.Weight()
    )
    h_pt.fill(ak.flatten(jets), ak.flatten(mu), weight=ak.flatten(wj))
    h_nj = hist.Hist(hist.axis.Integer(0, 8), storage=hist.storage.Weight())
    h_nj.fill(njet[sel], weight=w[sel])
    return {"ht": h_ht, "jet_pt": h_pt, "njet": h_nj}


@pytest.mark.parametrize(
    ("entry", "jet_scale", "weight_index"),
    [
        ("nominal", None, None),
        ("scale_0", None, 0),
        ("scale_8", None, 8),
        ("jesUp", JES, None),
        ("jesDown", 1 / JES, None),
    ],
)
@pytest.mark.parametrize("name", ["ht", "jet_pt", "njet"])
def test_bins_equal_independent_computation(report, events, name, entry, jet_scale, weight_index):
    ours = report.result.samples[0].histograms[name][{"systematic": entry}]
    theirs = expected(events, jet_scale, weight_index)[name]
    np.testing.assert_allclose(ours.view(flow=True).value, theirs.view(flow=True).value, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(ours.view(flow=True).variance, theirs.view(flow=True).variance, rtol=1e-9, atol=1e-9)


def test_shape_variation_moves_events(report):
    h = report.result.samples[0].histograms["njet"]
    assert not np.allclose(h[{"systematic": "jesUp"}].values(), h[{"systematic": "nominal"}].values())


def test_cutflow_counts_real_events(report, events):
    rows = report.result.samples[0].cutflow
    assert [r["cut"] for r in rows] == ["all", "two_jets"]
    assert rows[0]["events"] == 200
    assert rows[0]["weighted"] == pytest.approx(LUMI * XSEC)
    good = (events.Jet_pt > 30) & (abs(events.Jet_eta) < 2.4) & (events.Jet_jetId >= 2)
    assert rows[1]["events"] == int(ak.sum(ak.sum(good, axis=1) >= 2))
