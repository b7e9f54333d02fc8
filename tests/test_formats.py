"""RNTuple and flat (non-NanoAOD) ntuples go through the same path, checked against uproot."""

from __future__ import annotations

import awkward as ak
import hist
import numpy as np
import uproot

RNTUPLE = "Run2012BC_DoubleMuParked_Muons_1000evts_rntuple_v1-0-0-0.root"
FLAT = "uproot-HZZ.root"


def _pair_mass(pt, eta, phi, m):
    """Invariant mass of the first two objects, in float64."""
    pt, eta, phi, m = (np.asarray(x, dtype=np.float64) for x in (pt, eta, phi, m))
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    e = np.sqrt(px**2 + py**2 + pz**2 + m**2)
    return np.sqrt(np.maximum(e.sum(1) ** 2 - px.sum(1) ** 2 - py.sum(1) ** 2 - pz.sum(1) ** 2, 0))


def test_rntuple_dimuon_spectrum(shared_data, write_config, run_config, kinematics_header):
    config = write_config(
        f"""
        analysis: dimuon
        cpp: ["{kinematics_header}"]
        samples:
          doublemu: {{files: ["{shared_data / RNTUPLE}"], is_data: true}}
        defines:
          mass: kin::leading_pair_mass(Muon_pt, Muon_eta, Muon_phi, Muon_mass)
        selection:
          - {{name: opposite_sign_pair, cut: "nMuon == 2 && Muon_charge[0] != Muon_charge[1]"}}
        histograms:
          mass: {{axes: [{{expr: mass, edges: [0.2, 1, 3, 3.2, 10, 60, 80, 100, 120]}}]}}
          muon_pt: {{axes: [{{expr: Muon_pt, bins: 30, range: [0, 60]}}]}}
        """
    )
    report = run_config(config)
    assert report.plan.datasets[0].format == "RNTuple"
    ours = report.result.samples[0].histograms

    a = uproot.open(shared_data / RNTUPLE)["Events"].arrays(
        ["nMuon", "Muon_pt", "Muon_eta", "Muon_phi", "Muon_mass", "Muon_charge"]
    )
    sel = (a.nMuon == 2) & (ak.fill_none(ak.firsts(a.Muon_charge) != ak.firsts(a.Muon_charge[:, 1:]), False))
    s = a[sel]
    mass = _pair_mass(*(ak.to_numpy(s[f]) for f in ("Muon_pt", "Muon_eta", "Muon_phi", "Muon_mass")))
    h_mass = hist.Hist(hist.axis.Variable([0.2, 1, 3, 3.2, 10, 60, 80, 100, 120]), storage=hist.storage.Weight()).fill(
        mass
    )
    h_pt = hist.Hist(hist.axis.Regular(30, 0, 60), storage=hist.storage.Weight()).fill(ak.flatten(s.Muon_pt))
    assert ours["mass"].axes["systematic"][0] == "nominal" and len(ours["mass"].axes["systematic"]) == 1
    np.testing.assert_array_equal(
        ours["mass"][{"systematic": "nominal"}].view(flow=True).value, h_mass.view(flow=True).value
    )
    np.testing.assert_array_equal(
        ours["muon_pt"][{"systematic": "nominal"}].view(flow=True).value, h_pt.view(flow=True).value
    )
    assert report.result.samples[0].cutflow[0]["events"] == 1000


def test_flat_ntuple_with_derived_object_columns(shared_data, write_config, run_config):
    config = write_config(
        f"""
        analysis: hzz_flat
        lumi: 1.0
        samples:
          hzz: {{files: ["{shared_data / FLAT}"], tree: events, xsec: 2.0, sum_weights: 4.0}}
        defines:
          Muon_pt: "sqrt(Muon_Px * Muon_Px + Muon_Py * Muon_Py)"
          met: "std::hypot(MET_px, MET_py)"
        collections:
          IsoMuon: {{from: Muon, where: "Muon_Iso < 1.0 && Muon_pt > 5", sort_by: pt}}
        selection:
          - {{name: trigger, cut: triggerIsoMu24}}
        categories:
          nmuon: {{expr: nIsoMuon, values: [0, 1, 2]}}
        weight: EventWeight
        generator_weight: EventWeight
        histograms:
          muon_pt: {{axes: [{{expr: IsoMuon_pt, bins: 20, range: [0, 100]}}, nmuon]}}
          met: {{axes: [{{expr: met, bins: 10, range: [0, 100]}}]}}
        """
    )
    report = run_config(config)
    ours = report.result.samples[0]
    assert ours.norm == 1.0 * 2.0 / 4.0  # declared sum_weights is used as given

    a = uproot.open(shared_data / FLAT)["events"].arrays(
        ["Muon_Px", "Muon_Py", "Muon_Iso", "MET_px", "MET_py", "triggerIsoMu24", "EventWeight"]
    )
    a = a[a.triggerIsoMu24]
    pt = np.sqrt(ak.values_astype(a.Muon_Px, np.float64) ** 2 + ak.values_astype(a.Muon_Py, np.float64) ** 2)
    pt = ak.values_astype(pt, np.float32)  # the define takes float inputs: sqrt(float) is float in C++
    iso = (a.Muon_Iso < 1.0) & (pt > 5)
    n = ak.sum(iso, axis=1)
    w = ak.values_astype(a.EventWeight, np.float64) * ours.norm
    mu, nn, ww = ak.broadcast_arrays(pt[iso], n, w)
    expected = hist.Hist(hist.axis.Regular(20, 0, 100), hist.axis.IntCategory([0, 1, 2]), storage=hist.storage.Weight())
    expected.fill(ak.flatten(mu), ak.flatten(nn), weight=ak.flatten(ww))
    got = ours.histograms["muon_pt"][{"systematic": "nominal"}]
    np.testing.assert_allclose(got.view(flow=True).value, expected.view(flow=True).value, rtol=1e-12)
    np.testing.assert_allclose(got.view(flow=True).variance, expected.view(flow=True).variance, rtol=1e-12)


def test_generated_ttree_and_rntuple_give_identical_histograms(write_config, run_config, kinematics_header, tmp_path):
    """The generator writes the same events as a TTree or an RNTuple (`generate: {format: rntuple}`);
    every histogram and variation (weights, a weight array, a Jet_pt shape variation) is identical,
    bit for bit on one thread."""
    from framework.present.results import differences

    def config(fmt: str) -> object:
        return write_config(
            f"""
            analysis: formats
            cpp: ["{kinematics_header}"]
            lumi: 10.0
            samples:
              ttbar: {{files: ["{tmp_path / f"ttbar_{fmt}.root"}"], xsec: 832.0,
                      generate: {{process: ttbar, events: 6000, seed: 5, format: {fmt}}}}}
              data: {{files: ["{tmp_path / f"data_{fmt}.root"}"], is_data: true,
                     generate: {{process: data, mixture: {{zmumu: 2000, ttbar: 500}}, seed: 6, format: {fmt}}}}}
            collections:
              GoodJet: {{from: Jet, where: "Jet_pt > 30 && abs(Jet_eta) < 2.4", sort_by: pt}}
            defines:
              HT: kin::scalar_sum(GoodJet_pt)
            selection:
              - {{name: jets, cut: "nGoodJet >= 2"}}
            systematics:
              scale: {{kind: weight, from_array: LHEScaleWeight, indices: [0, 8]}}
              jes: {{kind: shape, column: Jet_pt, up: "Jet_pt * 1.03", down: "Jet_pt * 0.97"}}
            histograms:
              ht: {{axes: [{{expr: HT, bins: 30, range: [0, 900]}}, {{expr: nGoodJet, integer: [2, 8]}}]}}
              jet_eta: {{axes: [{{expr: GoodJet_eta, bins: 24, range: [-2.4, 2.4]}}]}}
            """,
            f"{fmt}.yaml",
        )

    ttree = run_config(config("ttree"), threads=1)
    rntuple = run_config(config("rntuple"), threads=1)
    assert [d.format for d in ttree.plan.datasets] == ["TTree", "TTree"]
    assert [d.format for d in rntuple.plan.datasets] == ["RNTuple", "RNTuple"]
    assert differences(ttree.outputs[0].parent, rntuple.outputs[0].parent) == []
    assert "jesUp" in list(ttree.result.samples[0].histograms["ht"].axes["systematic"])
