"""End-to-end behaviour on generated samples: outputs, provenance, threads, selections."""

from __future__ import annotations

import json
import zipfile

import hist
import numpy as np
import pytest
import uhi.io.zip
import uproot

from framework.execute.pipeline import RunOptions, execute, prepare
from framework.plan.model import Plan, RunSelection

CONFIG = """
analysis: generated
lumi: 10.0
cpp: ["{kinematics}"]
samples:
  zmumu: {{files: ["{zmumu}"], xsec: 2000.0, process: DY}}
  ttbar: {{files: ["{ttbar}"], xsec: 832.0}}
  data:  {{files: ["{data}"], is_data: true}}
collections:
  GoodMuon: {{from: Muon, where: "Muon_pt > 25 && abs(Muon_eta) < 2.4 && Muon_tightId", sort_by: pt}}
  GoodJet: {{from: Jet, where: "Jet_pt > 30 && abs(Jet_eta) < 2.4", sort_by: pt}}
defines:
  mll: kin::leading_pair_mass(GoodMuon_pt, GoodMuon_eta, GoodMuon_phi, GoodMuon_mass)
selection:
  - {{name: one_muon, cut: "nGoodMuon >= 1"}}
categories:
  channel: {{cases: {{mumu: "nGoodMuon >= 2", mu: "nGoodMuon == 1"}}}}
  njets: {{expr: nGoodJet, values: [0, 1, 2, 3]}}
weight: genWeight
systematics:
  scale: {{kind: weight, from_array: LHEScaleWeight, indices: [0, 8]}}
  pileup: {{kind: weight, up: "1.05", down: "0.95"}}
  jes: {{kind: shape, column: Jet_pt, up: "Jet_pt * 1.1", down: "Jet_pt * 0.9"}}
  jer: {{kind: shape, column: Jet_pt, up: "Jet_pt * 1.02", down: "Jet_pt * 0.98"}}
histograms:
  mll: {{axes: [{{expr: mll, bins: 30, range: [60, 120]}}, channel]}}
  jet_pt: {{axes: [{{expr: GoodJet_pt, bins: 20, range: [0, 200]}}, njets]}}
  met: {{axes: [{{expr: MET_pt, bins: 20, range: [0, 200]}}, channel], weight: "0.5"}}
"""


@pytest.fixture(scope="module")
def config_path(generated, tmp_path_factory, kinematics_header):
    path = tmp_path_factory.mktemp("pipeline") / "config.yaml"
    path.write_text(CONFIG.format(kinematics=kinematics_header, **{k: v for k, v in generated.items()}))
    return path


@pytest.fixture(scope="module")
def two_threads(config_path, tmp_path_factory):
    return execute(RunOptions(config=config_path, output=tmp_path_factory.mktemp("j2"), threads=2))


@pytest.fixture(scope="module")
def one_thread(config_path, tmp_path_factory):
    return execute(RunOptions(config=config_path, output=tmp_path_factory.mktemp("j1"), threads=1))


def test_one_file_per_sample_readable_with_hist_and_uhi_only(two_threads):
    names = sorted(p.name for p in two_threads.outputs)
    assert names == ["data.hist.zip", "ttbar.hist.zip", "zmumu.hist.zip"]
    path = next(p for p in two_threads.outputs if p.name == "zmumu.hist.zip")
    with zipfile.ZipFile(path) as z:
        h = hist.Hist(uhi.io.zip.read(z, "mll"))
        provenance = json.loads(z.read("provenance.json"))
    assert [ax.name for ax in h.axes] == ["mll", "channel", "systematic"]
    assert list(h.axes["systematic"]) == [
        "nominal",
        "scale_0",
        "scale_8",
        "pileupUp",
        "pileupDown",
        "jesUp",
        "jesDown",
        "jerUp",
        "jerDown",
    ]
    assert h.storage_type is hist.storage.Weight
    same = two_threads.result.samples[0].histograms["mll"]
    np.testing.assert_array_equal(h.view(flow=True).value, same.view(flow=True).value)
    np.testing.assert_array_equal(h.view(flow=True).variance, same.view(flow=True).variance)
    for key in ("config_hash", "cpp_hash", "versions", "command", "events_read", "sum_gen_weights"):
        assert key in provenance
    assert provenance["events_read"] == 30000
    assert provenance["versions"]["root"].startswith("6.")
    assert h[{"systematic": "nominal", "channel": "mumu"}].project("mll").sum().value > 0


def test_normalisation_is_lumi_times_xsec(two_threads):
    zmumu = next(s for s in two_threads.result.samples if s.sample.name == "zmumu")
    assert zmumu.cutflow[0]["weighted"] == pytest.approx(10.0 * 2000.0)
    assert zmumu.norm == pytest.approx(10.0 * 2000.0 / zmumu.sum_gen_weights)


def test_weight_variations_are_exact_factors(two_threads):
    h = two_threads.result.samples[0].histograms["mll"]
    nominal = h[{"systematic": "nominal"}].values(flow=True)
    np.testing.assert_allclose(h[{"systematic": "pileupUp"}].values(flow=True), 1.05 * nominal, rtol=1e-12)
    np.testing.assert_allclose(h[{"systematic": "pileupDown"}].values(flow=True), 0.95 * nominal, rtol=1e-12)
    # the histogram weight multiplies the event weight
    met = two_threads.result.samples[0].histograms["met"][{"systematic": "nominal"}]
    assert met.sum(flow=True).value == pytest.approx(0.5 * two_threads.result.samples[0].cutflow[1]["weighted"])


def test_data_carries_only_nominal(two_threads):
    data = next(s for s in two_threads.result.samples if s.sample.is_data)
    for h in data.histograms.values():
        assert list(h.axes["systematic"]) == ["nominal"]
    assert data.norm == 1.0
    rows = data.cutflow
    assert rows[0]["events"] == 11000 and rows[0]["weighted"] == 11000
    h = data.histograms["mll"][{"systematic": "nominal"}]
    assert h.sum(flow=True).value == rows[1]["events"]  # every selected event has one channel entry


def test_same_histograms_with_one_and_two_threads(one_thread, two_threads):
    for a, b in zip(one_thread.result.samples, two_threads.result.samples):
        assert [r["events"] for r in a.cutflow] == [r["events"] for r in b.cutflow]
        assert [r["weighted"] for r in a.cutflow] == pytest.approx([r["weighted"] for r in b.cutflow], rel=1e-12)
        for name in a.histograms:
            va, vb = a.histograms[name].view(flow=True), b.histograms[name].view(flow=True)
            # identical up to the order of floating-point additions across threads
            np.testing.assert_allclose(va.value, vb.value, rtol=1e-12, atol=1e-9)
            np.testing.assert_allclose(va.variance, vb.variance, rtol=1e-12, atol=1e-9)
            if a.sample.is_data:
                np.testing.assert_array_equal(va.value, vb.value)


def test_max_events_reads_that_many_per_sample(config_path, tmp_path):
    report = execute(
        RunOptions(config=config_path, output=tmp_path, selection=RunSelection(max_events=12345), threads=2)
    )
    assert [s.events for s in report.result.samples] == [12345, 12345, 11000]
    zmumu = report.result.samples[0]
    assert zmumu.cutflow[0]["weighted"] == pytest.approx(10.0 * 2000.0)  # normalised to the events read


@pytest.mark.parametrize(
    ("choice", "entries"),
    [
        ("none", ["nominal"]),
        ("jes", ["nominal", "jesUp", "jesDown"]),
        ("j*", ["nominal", "jesUp", "jesDown", "jerUp", "jerDown"]),
        ("scale,pileup", ["nominal", "scale_0", "scale_8", "pileupUp", "pileupDown"]),
    ],
)
def test_systematics_selection(config_path, choice, entries):
    plan, _ = prepare(RunOptions(config=config_path, selection=RunSelection(systematics=choice)))
    mc = next(d for d in plan.datasets if not d.is_data)
    assert mc.systematic_entries == entries
    assert next(d for d in plan.datasets if d.is_data).systematic_entries == ["nominal"]


def test_sample_selection_by_pattern(config_path):
    plan, _ = prepare(RunOptions(config=config_path, selection=RunSelection(samples=("*mu*", "data"))))
    assert [s.name for s in plan.samples] == ["zmumu", "data"]


def test_plan_round_trips_through_json(config_path):
    plan, _ = prepare(RunOptions(config=config_path))
    again = Plan.from_dict(json.loads(plan.to_json()))
    assert again == plan
    assert "histogram mll: mll[30 bins 60.0..120.0], channel['mumu', 'mu'] x systematic" in plan.describe()


def test_shape_variation_moves_events_across_cut_and_category(generated, write_config, run_config):
    """MET_pt scaled by 1.2 / 0.8: counts after a MET cut and per MET category, against numpy."""

    config = write_config(
        f"""
        analysis: migration
        lumi: 1.0
        samples:
          zmumu: {{files: ["{generated["zmumu"]}"], xsec: 1.0}}
        defines:
          met_gev: double(MET_pt)
        selection:
          - {{name: met30, cut: "MET_pt > 30"}}
        categories:
          high_met: {{expr: "met_gev > 60", boolean: true}}
        weight: "1.0"
        generator_weight: "1.0"
        systematics:
          met_scale: {{kind: shape, column: MET_pt, up: "MET_pt * 1.2", down: "MET_pt * 0.8"}}
        histograms:
          met: {{axes: [high_met, {{expr: met_gev, bins: 10, range: [0, 200]}}]}}
        """
    )
    report = run_config(config)
    h = report.result.samples[0].histograms["met"]
    met = uproot.open(generated["zmumu"])["Events"]["MET_pt"].array(library="np")
    norm = 1.0 / len(met)
    for entry, factor in (("nominal", 1.0), ("met_scaleUp", 1.2), ("met_scaleDown", 0.8)):
        varied = (met.astype(np.float64) * factor).astype(np.float32).astype(np.float64)
        passed = varied[varied > 30]
        expected = hist.Hist(hist.axis.Boolean(), hist.axis.Regular(10, 0, 200)).fill(passed > 60, passed)
        got = h[{"systematic": entry}].values(flow=True) / norm
        np.testing.assert_allclose(got, expected.values(flow=True), rtol=1e-9)
    assert h[{"systematic": "met_scaleUp"}].sum().value > h[{"systematic": "nominal"}].sum().value


def test_varying_a_defined_column_reaches_its_dependants(generated, write_config, run_config):
    """Regression: RDataFrame does not vary a Define created before the Vary; the plan orders them."""
    config = write_config(
        f"""
        analysis: vary_define
        lumi: 1.0
        samples:
          zmumu: {{files: ["{generated["zmumu"]}"], xsec: 1.0}}
        defines:
          met_doubled: met_gev * 2
          met_gev: double(MET_pt)
        weight: "1.0"
        generator_weight: "1.0"
        systematics:
          met_scale: {{kind: shape, column: met_gev, up: "met_gev * 1.5", down: "met_gev * 0.5"}}
        histograms:
          met2: {{axes: [{{expr: met_doubled, bins: 10, range: [0, 400]}}]}}
        """
    )
    report = run_config(config)
    steps = [(s.kind, s.name) for s in report.plan.datasets[0].steps]
    assert steps.index(("vary", "met_scale")) < steps.index(("define", "met_doubled"))
    h = report.result.samples[0].histograms["met2"]
    met = uproot.open(generated["zmumu"])["Events"]["MET_pt"].array(library="np").astype(np.float64)
    for entry, factor in (("nominal", 1.0), ("met_scaleUp", 1.5), ("met_scaleDown", 0.5)):
        expected = hist.Hist(hist.axis.Regular(10, 0, 400)).fill(met * factor * 2)
        np.testing.assert_allclose(h[{"systematic": entry}].values(flow=True) * len(met), expected.values(flow=True))


def test_collision_data_counts_without_categories(generated, write_config, run_config):
    """Without categories, data's `yields` and first cutflow row are counts the framework knows
    without filling them (events read, events selected): they must equal an independent count."""
    import awkward as ak
    import uproot

    config = write_config(
        f"""
        analysis: counts
        samples:
          data: {{files: ["{generated["data"]}"], is_data: true}}
        selection:
          - {{name: two_jets, cut: "nJet >= 2"}}
        histograms:
          met: {{axes: [{{expr: MET_pt, bins: 10, range: [0, 200]}}], where: "MET_pt > 40"}}
        """
    )
    report = run_config(config)
    data = report.result.samples[0]
    events = uproot.open(generated["data"])["Events"].arrays(["nJet", "MET_pt"])
    selected = int(ak.sum(events.nJet >= 2))
    assert [r["events"] for r in data.cutflow] == [len(events), selected]
    assert data.histograms["yields"].sum(flow=True).value == selected
    assert data.histograms["yields"].sum(flow=True).variance == selected
    assert data.histograms["met"].sum(flow=True).value == int(ak.sum((events.nJet >= 2) & (events.MET_pt > 40)))
