"""`run-analysis samples update`: computed fields written back, everything else kept byte for byte."""

from __future__ import annotations

import os
import re
import shutil

import awkward as ak
import numpy as np
import pytest
import uproot

from framework.app.samples import update_samples_file
from framework.errors import InputError

ORIGINAL = """\
# Samples of a test era: comments, anchors and odd quoting must survive.
defaults: &mc {xsec: 1.0, era: "2016"}
eras:
  '2016': {lumi: 10.0}   # /pb

samples:
  zmumu:                    # Drell-Yan
    files: ["zmumu.root"]
    xsec:   2000.0          # pb; spacing kept
    era: '2016'
    process: "DY"
  ttbar:
    files:
      - 'tt*.root'          # a glob
    xsec: 832.0
    era: "2016"
  data:
    files: [data.root]
    is_data: true
"""


@pytest.fixture
def samples_file(generated, tmp_path):
    for name in ("zmumu", "data"):
        shutil.copy(generated[name], tmp_path / f"{name}.root")
    shutil.copy(generated["ttbar"], tmp_path / "ttbar_1.root")
    path = tmp_path / "samples.yaml"
    path.write_text(ORIGINAL)
    return path


def _sum(path, column):
    return float(np.sum(uproot.open(path)["Events"][column].array(library="np").astype(np.float64)))


def test_update_writes_sums_and_keeps_the_rest(samples_file, tmp_path):
    report = update_samples_file(samples_file)
    assert report.changed and sorted(report.scanned) == ["data.root", "ttbar_1.root", "zmumu.root"]
    text = samples_file.read_text()
    # without the computed lines, the file is exactly what it was
    computed = re.compile(r'^\s+(events|sum_weights2?|file_stats):|^\s+"[^"]+": \{events: ')
    assert "".join(ln for ln in text.splitlines(keepends=True) if not computed.match(ln)) == ORIGINAL

    from ruamel.yaml import YAML

    doc = YAML(typ="safe").load(text)
    zmumu = doc["samples"]["zmumu"]
    assert zmumu["events"] == 30000
    assert zmumu["sum_weights"] == pytest.approx(_sum(tmp_path / "zmumu.root", "genWeight"), rel=1e-12)
    w = uproot.open(tmp_path / "zmumu.root")["Events"]["genWeight"].array(library="np").astype(np.float64)
    assert zmumu["sum_weights2"] == pytest.approx(float(np.sum(w * w)), rel=1e-12)
    assert doc["samples"]["data"]["events"] == 11000 and "sum_weights" not in doc["samples"]["data"]
    assert set(doc["samples"]["ttbar"]["file_stats"]) == {"ttbar_1.root"}


def test_second_run_is_a_no_op(samples_file):
    update_samples_file(samples_file)
    first = samples_file.read_bytes()
    report = update_samples_file(samples_file)
    assert not report.changed and report.scanned == []
    assert samples_file.read_bytes() == first


def test_only_changed_files_are_read_again(samples_file, tmp_path, generated):
    update_samples_file(samples_file)
    shutil.copy(generated["ttbar"], tmp_path / "ttbar_2.root")  # a new file matches the glob
    os.utime(tmp_path / "zmumu.root", ns=(1, 1))  # touched: must be read again
    report = update_samples_file(samples_file)
    assert sorted(report.scanned) == ["ttbar_2.root", "zmumu.root"] and report.reused == ["ttbar_1.root", "data.root"]
    from ruamel.yaml import YAML

    ttbar = YAML(typ="safe").load(samples_file.read_text())["samples"]["ttbar"]
    assert ttbar["events"] == 40000
    assert ttbar["sum_weights"] == pytest.approx(2 * _sum(generated["ttbar"], "genWeight"), rel=1e-12)


def test_sums_on_real_nanoaod_equal_uproot(shared_data, tmp_path):
    path = tmp_path / "samples.yaml"
    path.write_text(
        f"samples:\n  ttbar:\n    files: [{shared_data / 'nanoAOD_2015_CMS_Open_Data_ttbar.root'}]\n    xsec: 831.76\n"
    )
    update_samples_file(path)
    from ruamel.yaml import YAML

    sample = YAML(typ="safe").load(path.read_text())["samples"]["ttbar"]
    gen = uproot.open(shared_data / "nanoAOD_2015_CMS_Open_Data_ttbar.root")["Events"]["genWeight"].array()
    assert sample["events"] == 200
    assert sample["sum_weights"] == pytest.approx(float(ak.sum(ak.values_astype(gen, np.float64))), rel=1e-12)


def test_glob_matching_nothing_names_the_sample(tmp_path):
    path = tmp_path / "samples.yaml"
    path.write_text("samples:\n  ghost:\n    files: ['nothing_*.root']\n    xsec: 1.0\n")
    with pytest.raises(InputError, match=r"sample 'ghost': no file matches 'nothing_\*.root'") as info:
        update_samples_file(path)
    assert info.value.location.key == "samples.ghost" and info.value.location.line == 2


def test_split_sub_processes_add_up_to_the_parent(generated, write_config, run_config):
    text = f"""
        analysis: split
        lumi: 10.0
        samples:
          ttbar:
            files: ["{generated["ttbar"]}"]
            xsec: 832.0
            SPLIT
        weight: genWeight
        systematics:
          jes: {{kind: shape, column: Jet_pt, up: "Jet_pt * 1.05", down: "Jet_pt * 0.95"}}
        histograms:
          njet: {{axes: [{{expr: nJet, integer: [0, 12]}}, {{expr: MET_pt, bins: 10, range: [0, 200]}}]}}
          ht: {{axes: [{{expr: "Sum(Jet_pt)", name: ht, bins: 20, range: [0, 1000]}}]}}
        """
    whole = run_config(write_config(text.replace("SPLIT", ""), "whole.yaml"))
    split = run_config(
        write_config(
            text.replace(
                "SPLIT", 'split: {two_b: "Sum(Jet_hadronFlavour == 5) >= 2", one_b: "Sum(Jet_hadronFlavour == 5) == 1"}'
            ),
            "split.yaml",
        )
    )
    names = [s.sample.name for s in split.result.samples]
    assert names == ["two_b", "one_b", "ttbar_other"]
    assert len(split.plan.datasets[0].files) == 1  # the input is read once
    parent = whole.result.samples[0]
    assert sum(s.events for s in split.result.samples) == parent.events
    assert all(s.norm == parent.norm for s in split.result.samples)
    for name, h in parent.histograms.items():
        total = sum(s.histograms[name].view(flow=True).value for s in split.result.samples)
        np.testing.assert_allclose(total, h.view(flow=True).value, rtol=1e-12, atol=1e-12)
    assert split.result.samples[0].events > 0 and split.result.samples[1].events > 0


def test_runs_tree_sums_are_used_when_present(generated, tmp_path):
    from framework.engine.rootenv import root

    r = root()
    path = tmp_path / "with_runs.root"
    shutil.copy(generated["zmumu"], path)
    options = r.RDF.RSnapshotOptions()
    options.fMode = "UPDATE"
    runs = r.RDataFrame(2).Define("genEventCount", "(Long64_t)(1000 + rdfentry_)")
    runs = runs.Define("genEventSumw", "1.5 * (rdfentry_ + 1)").Define("genEventSumw2", "2.5 * (rdfentry_ + 1)")
    runs.Snapshot("Runs", str(path), ["genEventCount", "genEventSumw", "genEventSumw2"], options)
    samples = tmp_path / "samples.yaml"
    samples.write_text("samples:\n  dy:\n    files: [with_runs.root]\n    xsec: 1.0\n")
    update_samples_file(samples)
    from ruamel.yaml import YAML

    dy = YAML(typ="safe").load(samples.read_text())["samples"]["dy"]
    assert dy["events"] == 2001 and dy["sum_weights"] == 4.5 and dy["sum_weights2"] == 7.5


def test_text_file_lists(samples_file, tmp_path):
    (tmp_path / "dy_files.txt").write_text("# one file per line\nzmumu.root\n\ndata.root\n")
    samples_file.write_text("samples:\n  dy:\n    files: [dy_files.txt]\n    is_data: true\n")
    update_samples_file(samples_file)
    from ruamel.yaml import YAML

    dy = YAML(typ="safe").load(samples_file.read_text())["samples"]["dy"]
    assert dy["events"] == 30000 + 11000 and list(dy["file_stats"]) == ["zmumu.root", "data.root"]


def test_split_sums_and_fractions(samples_file, tmp_path, generated):
    shutil.copy(generated["ttbar"], tmp_path / "ttbar_1.root")
    samples_file.write_text(
        "samples:\n  ttbar:\n    files: [ttbar_1.root]\n    xsec: 832.0\n"
        "    split: {two_b: 'Sum(Jet_hadronFlavour == 5) >= 2', one_b: 'Sum(Jet_hadronFlavour == 5) == 1'}\n"
    )
    update_samples_file(samples_file)
    first = samples_file.read_bytes()
    assert not update_samples_file(samples_file).changed and samples_file.read_bytes() == first
    from ruamel.yaml import YAML

    ttbar = YAML(typ="safe").load(samples_file.read_text())["samples"]["ttbar"]
    stats = ttbar["split_stats"]
    assert list(stats) == ["two_b", "one_b", "other"]
    e = uproot.open(generated["ttbar"])["Events"].arrays(["Jet_hadronFlavour", "genWeight"])
    nb = ak.to_numpy(ak.sum(e.Jet_hadronFlavour == 5, axis=1))
    w = ak.to_numpy(e.genWeight).astype(np.float64)
    for name, mask in (("two_b", nb >= 2), ("one_b", nb == 1), ("other", nb == 0)):
        assert stats[name]["events"] == int(mask.sum())
        assert stats[name]["sum_weights"] == pytest.approx(float(w[mask].sum()), rel=1e-12)
        assert stats[name]["fraction"] == pytest.approx(float(w[mask].sum() / w.sum()), rel=1e-12)
    assert sum(s["events"] for s in stats.values()) == ttbar["events"]
