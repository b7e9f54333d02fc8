"""Systematic variations: every kind against an independent computation."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import awkward as ak
import correctionlib
import hist
import numpy as np
import pytest
import uproot

from framework.execute.pipeline import RunOptions, prepare
from framework.plan.model import RunSelection

REPO = Path(__file__).resolve().parent.parent


def test_one_pass_equals_one_vary_per_variation(tmp_path):
    """The benchmark's comparison on a small input: every weight kind (expressions, arrays and their
    envelope, correctionlib per-object factors) and shape kind (one column, two columns together),
    bin for bin against the obvious RDataFrame way (one Vary per variation, HistoND, VariationsFor)."""
    out = tmp_path / "figures.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "systematics.py"),
            "--events",
            "1000",
            "--threads",
            "2",
            "--cache",
            str(tmp_path),
            "--json",
            str(out),
            "--equality-only",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    figures = json.loads(out.read_text())
    assert figures["equal"] is True
    assert figures["histogram_entries_compared"] == 40 * 159
    for key in (
        "events",
        "threads",
        "a_build_s",
        "a_loop_s",
        "a_peak_rss_bytes",
        "b_build_s",
        "b_loop_s",
        "b_peak_rss_bytes",
    ):
        assert key in figures


CONFIG = """
analysis: systematics_check
lumi: 1.0
samples:
  zmumu: {{files: ["{zmumu}"], xsec: 1.0, era: "2016"}}
  ttbar: {{files: ["{ttbar}"], xsec: 1.0, era: "2017"}}
collections:
  GoodMuon: {{from: Muon, where: "Muon_pt > 20 && abs(Muon_eta) < 2.4"}}
weight: genWeight
systematics:
  muon_id:
    kind: correctionlib
    file: "{corrections}"
    correction: muon_id
    key_input: scale_factors
    nominal: nominal
    up: systup
    down: systdown
    inputs: {{abseta: "abs(GoodMuon_eta)", pt: GoodMuon_pt}}
  scale: {{kind: weight, from_array: LHEScaleWeight, indices: [0, 1, 3, 5, 7, 8], combine: envelope, group: theory}}
  pdf: {{kind: weight, from_array: PSWeight, indices: [0, 1, 2, 3], combine: hessian, group: theory}}
  replicas: {{kind: weight, from_array: PSWeight, indices: [0, 1, 2, 3], combine: rms}}
  dy_norm: {{kind: weight, up: "1.1", down: "0.9", applies_to: {{samples: ["zm*"]}}}}
  late_era: {{kind: weight, up: "1.2", down: "0.8", applies_to: {{eras: ["2017"]}}}}
  mu_scale: {{kind: shape, column: Muon_pt, up: "Muon_pt * 1.01", down: "Muon_pt * 0.99", applies_to: {{samples: [ttbar]}}}}
histograms:
  met: {{axes: [{{expr: MET_pt, bins: 20, range: [0, 200]}}, {{expr: nGoodMuon, integer: [0, 3]}}]}}
"""  # noqa: E501 (YAML: one flow mapping per line, as users write it)


@pytest.fixture(scope="module")
def report(generated, tmp_path_factory):
    from framework.execute.pipeline import execute

    folder = tmp_path_factory.mktemp("systematics")
    config = folder / "config.yaml"
    config.write_text(CONFIG.format(**{k: v for k, v in generated.items()}))
    return execute(RunOptions(config=config, output=folder / "out", threads=2))


def _sample(report, name):
    return next(s for s in report.result.samples if s.sample.name == name)


def test_correctionlib_weights_equal_python_correctionlib(report, generated):
    ours = _sample(report, "zmumu")
    e = uproot.open(generated["zmumu"])["Events"].arrays(["Muon_pt", "Muon_eta", "MET_pt", "genWeight"])
    good = (e.Muon_pt > 20) & (abs(e.Muon_eta) < 2.4)
    pt, eta = e.Muon_pt[good], abs(e.Muon_eta[good])
    corr = correctionlib.CorrectionSet.from_file(str(generated["corrections"]))["muon_id"]
    flat_pt, flat_eta, counts = ak.flatten(pt), ak.flatten(eta), ak.num(pt)

    def per_event(key):
        values = corr.evaluate(key, ak.to_numpy(flat_eta).astype(np.float64), ak.to_numpy(flat_pt).astype(np.float64))
        return ak.to_numpy(ak.prod(ak.unflatten(values, counts), axis=1))

    gen = ak.to_numpy(e.genWeight).astype(np.float64)
    sf = {k: per_event(k) for k in ("nominal", "systup", "systdown")}
    for entry, weight in (("nominal", sf["nominal"]), ("muon_idUp", sf["systup"]), ("muon_idDown", sf["systdown"])):
        expected = hist.Hist(hist.axis.Regular(20, 0, 200), hist.axis.Integer(0, 3), storage=hist.storage.Weight())
        expected.fill(ak.to_numpy(e.MET_pt), ak.to_numpy(counts), weight=gen * weight * ours.norm)
        got = ours.histograms["met"][{"systematic": entry}]
        np.testing.assert_allclose(got.values(flow=True), expected.values(flow=True), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", ["zmumu", "ttbar"])
def test_combinations_from_member_entries(report, name):
    h = _sample(report, name).histograms["met"]
    values = h.view(flow=True).value
    index = {entry: i for i, entry in enumerate(h.axes["systematic"])}
    nominal = values[..., index["nominal"]]
    scale = values[..., [index[f"scale_{i}"] for i in (0, 1, 3, 5, 7, 8)]]
    np.testing.assert_allclose(values[..., index["scaleUp"]], scale.max(axis=-1))
    np.testing.assert_allclose(values[..., index["scaleDown"]], scale.min(axis=-1))
    ps = values[..., [index[f"pdf_{i}"] for i in range(4)]] - nominal[..., None]
    np.testing.assert_allclose(values[..., index["pdfUp"]], nominal + np.sqrt((ps**2).sum(axis=-1)))
    np.testing.assert_allclose(values[..., index["pdfDown"]], nominal - np.sqrt((ps**2).sum(axis=-1)))
    np.testing.assert_allclose(values[..., index["replicasUp"]], nominal + np.sqrt((ps**2).mean(axis=-1)))


def test_applicability_by_sample_and_era(report):
    for name, applies in (("zmumu", {"dy_norm"}), ("ttbar", {"late_era", "mu_scale"})):
        h = _sample(report, name).histograms["met"]
        nominal = h[{"systematic": "nominal"}].values(flow=True)
        for syst, factor in (("dy_norm", 1.1), ("late_era", 1.2)):
            up = h[{"systematic": f"{syst}Up"}].values(flow=True)
            np.testing.assert_allclose(up, factor * nominal if syst in applies else nominal, rtol=1e-12)
        moved = h[{"systematic": "mu_scaleUp"}].values(flow=True)
        assert (not np.allclose(moved, nominal)) == ("mu_scale" in applies)


def test_groups_select_their_members(generated, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG.format(**{k: v for k, v in generated.items()}))
    plan, _ = prepare(RunOptions(config=config, selection=RunSelection(systematics="theory")))
    assert plan.systematics == ["scale", "pdf"]
    plan, _ = prepare(RunOptions(config=config, selection=RunSelection(systematics="mu_*,muon*")))
    assert plan.systematics == ["muon_id", "mu_scale"]


def test_two_columns_varied_together(generated, write_config, run_config):
    config = write_config(
        f"""
        analysis: two_columns
        lumi: 1.0
        samples:
          ttbar: {{files: ["{generated["ttbar"]}"], xsec: 1.0}}
        weight: "1.0"
        generator_weight: "1.0"
        systematics:
          jes:
            kind: shape
            columns:
              Jet_pt: {{up: "Jet_pt * 1.1", down: "Jet_pt * 0.9"}}
              Jet_mass: {{up: "Jet_mass * 1.2", down: "Jet_mass * 0.8"}}
        histograms:
          jets: {{axes: [{{expr: Jet_pt, bins: 10, range: [0, 200]}}, {{expr: Jet_mass, bins: 10, range: [0, 50]}}]}}
        """
    )
    h = run_config(config).result.samples[0].histograms["jets"]
    e = uproot.open(generated["ttbar"])["Events"].arrays(["Jet_pt", "Jet_mass"])
    n = len(e)
    for entry, fp, fm in (("jesUp", 1.1, 1.2), ("jesDown", 0.9, 0.8)):
        pt = ak.values_astype(ak.values_astype(ak.flatten(e.Jet_pt), np.float64) * fp, np.float32)
        mass = ak.values_astype(ak.values_astype(ak.flatten(e.Jet_mass), np.float64) * fm, np.float32)
        expected = hist.Hist(hist.axis.Regular(10, 0, 200), hist.axis.Regular(10, 0, 50)).fill(pt, mass)
        np.testing.assert_allclose(
            h[{"systematic": entry}].values(flow=True) * n, expected.values(flow=True), rtol=1e-9
        )
