"""Skims (`run-analysis skim`): a run on the skim equals the run on the original samples, bin for bin,
for every histogram and variation (a Jet_pt shape variation that moves events across the skim's cuts,
and a weight array); the skim file checked with uproot; parts, RNTuple, resuming; what is refused.

Each file in bad_skims/ states the message (regex), line and key `run-analysis skim` must stop with.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot
from configs import bounded  # tests/ is on the path
from ruamel.yaml import YAML

from framework.app.samples import update_samples_file
from framework.config.load import load_config
from framework.errors import ConfigError, ExecutionError, FrameworkError
from framework.execute.executors import DaskExecutor, run_task
from framework.execute.pipeline import RunOptions, execute, prepare
from framework.execute.skim import _skim_tasks, execute_skim, execute_skim_in_tasks
from framework.output.skim import read_record, record_path
from framework.plan.model import RunSelection
from framework.timing import Timer

BAD = Path(__file__).parent / "bad_skims"
JES = 1.05

CONFIG = """\
schema: 1
analysis: skimmed
lumi: 10.0
cpp: [{kinematics}]
samples:
  ttbar:            # its sum of generator weights is summed while skimming
    files: [{ttbar}]
    xsec: 832.0
    process: ttbar
  zmumu:
    files: [{zmumu}]
    xsec: 2000.0
    sum_weights: 30000.0   # declared: the skim carries it over
  data: {{files: [{data}], is_data: true}}
collections:
  GoodMuon: {{from: Muon, where: "Muon_pt > 20 && abs(Muon_eta) < 2.4"}}
  GoodJet: {{from: Jet, where: "Jet_pt > 30 && abs(Jet_eta) < 2.4", sort_by: pt}}
defines:
  HT: kin::scalar_sum(GoodJet_pt)
selection:
  - {{name: one_muon, cut: "nGoodMuon >= 1"}}
  - {{name: two_jets, cut: "nGoodJet >= 2"}}
  - {{name: high_ht, cut: "HT > 100"}}
categories:
  njet: {{expr: nGoodJet, integer: [2, 6]}}
weight: genWeight
systematics:
  scale: {{kind: weight, from_array: LHEScaleWeight, indices: [0, 1, 3, 5, 7, 8], combine: envelope}}
  jes: {{kind: shape, column: Jet_pt, up: "Jet_pt * {jes}", down: "Jet_pt * {jes_down}"}}
histograms:
  ht: {{axes: [{{expr: HT, bins: 20, range: [0, 1000]}}, njet]}}
  jet_pt: {{axes: [{{expr: GoodJet_pt, bins: 20, range: [0, 400]}}]}}
  muon_pt: {{axes: [{{expr: GoodMuon_pt, bins: 20, range: [0, 200]}}], where: "nGoodJet >= 3"}}
skim:
  selection: [one_muon, "nGoodJet >= 2"]
  keep: [Jet_pt, Jet_eta, GoodMuon, HT, genWeight, LHEScaleWeight]
"""


def _config(
    folder: Path, generated: dict[str, Path], kinematics: Path, samples: Path | None = None, **edits: str
) -> Path:
    """The analysis; on the skim whose samples YAML is `samples` when given (included instead of the
    samples block); `edits` replace text."""
    text = CONFIG.format(kinematics=kinematics, jes=JES, jes_down=2 - JES, **{k: generated[k] for k in generated})
    if samples is not None:
        text = re.sub(r"samples:\n(  .*\n)+", f"include: [{samples}]\n", text, count=1).replace("lumi: 10.0\n", "")
    for old, new in edits.items():
        text = text.replace(old, new)
    path = folder / f"config{len(list(folder.glob('config*.yaml')))}.yaml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def original(generated, kinematics_header, tmp_path_factory):
    """The analysis on the original samples: its config and histograms."""
    folder = tmp_path_factory.mktemp("skim")
    config = _config(folder, generated, kinematics_header)
    report = execute(RunOptions(config=config, output=folder / "original"))
    return config, {s.sample.name: s for s in report.result.samples}


@pytest.fixture(scope="module")
def skim(original):
    """The skim of every sample with every systematic (a TTree: it holds jes)."""
    config, _ = original
    return execute_skim(RunOptions(config=config, output=config.parent / "skim"))


def _assert_equal(run, original, entries: list[str] | None = None) -> None:
    """Every histogram of every sample, in the entries `entries` of the systematic axis (all by default)."""
    for sample in run.result.samples:
        reference = original[sample.sample.name]
        assert sample.histograms.keys() == reference.histograms.keys()
        for name, h in sample.histograms.items():
            ref = reference.histograms[name]
            for entry in [e for e in ref.axes["systematic"] if entries is None or e in entries]:
                got, want = h[..., entry].view(flow=True), ref[..., entry].view(flow=True)
                np.testing.assert_allclose(got.value, want.value, rtol=1e-12, err_msg=f"{sample.sample.name} {name}")
                np.testing.assert_allclose(got.variance, want.variance, rtol=1e-12, err_msg=entry)


def test_run_on_skim_equals_run_on_original(original, skim, generated, kinematics_header):
    config, histograms = original
    samples = skim.folder / "samples.yaml"
    assert skim.samples.complete == ["ttbar", "zmumu", "data"]
    run = execute(
        RunOptions(config=_config(config.parent, generated, kinematics_header, samples), output=skim.folder / "run")
    )
    _assert_equal(run, histograms)
    assert "jesUp" in list(histograms["ttbar"].histograms["ht"].axes["systematic"])
    # the skim holds fewer events than the original (the variations' too), and the run read only those
    assert run.result.samples[0].cutflow[0].events < histograms["ttbar"].cutflow[0].events


def test_skim_file_read_with_uproot(original, skim, generated):
    """The events the skim stored, and the bits of its mask, against the cuts computed here from the original."""
    described = YAML(typ="safe").load((skim.folder / "samples.yaml").read_text())["samples"]
    ttbar = described["ttbar"]
    assert ttbar["skim"]["format"] == "ttree" and set(ttbar["skim"]["variations"]) == {"jes"}
    assert set(ttbar["skim"]["columns"]) >= {"HT", "nGoodMuon", "GoodMuon_pt"}
    e = uproot.open(generated["ttbar"])["Events"].arrays(["Muon_pt", "Muon_eta", "Jet_pt", "Jet_eta", "genWeight"])
    assert ttbar["sum_weights"] == pytest.approx(ak.to_numpy(e.genWeight).astype(np.float64).sum(), rel=1e-12)
    assert described["zmumu"]["sum_weights"] == 30000.0
    assert ttbar["skim"]["events"] == len(e)

    def passes(factor: float) -> np.ndarray:
        pt = ak.values_astype(ak.values_astype(e.Jet_pt, np.float64) * factor, np.float32)
        jets = ak.sum((pt > 30) & (abs(e.Jet_eta) < 2.4), axis=1) >= 2
        return ak.to_numpy((ak.sum((e.Muon_pt > 20) & (abs(e.Muon_eta) < 2.4), axis=1) >= 1) & jets)

    nominal, up, down = passes(1.0), passes(JES), passes(2 - JES)
    stored = uproot.open(skim.folder / "ttbar.root")["Events"].arrays()
    mask = stored["R_rdf_mask_Events_0"].to_numpy()
    bits = ttbar["skim"]["variations"]["jes"]
    assert len(stored) == np.sum(nominal | up | down)  # an event any variation keeps is stored
    assert np.sum(mask & 1) == np.sum(nominal)
    assert np.sum((mask >> bits["up"]) & 1) == np.sum(up) > np.sum(nominal)  # events move across the cuts
    assert np.sum((mask >> bits["down"]) & 1) == np.sum(down)
    keep = (mask >> bits["up"]) & 1 == 1
    expected = ak.values_astype(ak.values_astype(e.Jet_pt[nominal | up | down][keep], np.float64) * JES, np.float32)
    assert ak.all(stored["Jet_pt__jes_up"][keep] == expected)


def test_parts_in_rntuple_equal_the_original(original, generated, kinematics_header, tmp_path):
    """Batch parts, without shape systematics (RNTuple files): the samples YAML lists a sample once all
    its parts are there."""
    config, histograms = original
    options = RunOptions(
        config=config, output=tmp_path / "skim", selection=RunSelection(systematics="scale", part=(1, 2))
    )
    first = execute_skim(options)
    assert first.samples.complete == [] and first.samples.waiting["ttbar"] == "parts 2/2 missing"
    last = execute_skim(
        RunOptions(config=config, output=tmp_path / "skim", selection=RunSelection(systematics="scale", part=(2, 2)))
    )
    assert last.samples.complete == ["ttbar", "zmumu", "data"]
    described = YAML(typ="safe").load((tmp_path / "skim" / "samples.yaml").read_text())["samples"]
    assert described["ttbar"]["files"] == ["ttbar.part-1-of-2.root", "ttbar.part-2-of-2.root"]
    assert described["ttbar"]["skim"]["format"] == "rntuple"
    assert uproot.open(tmp_path / "skim" / "ttbar.part-1-of-2.root")["Events"].classname == "ROOT::RNTuple"
    skimmed = _config(tmp_path, generated, kinematics_header, tmp_path / "skim" / "samples.yaml")
    run = execute(RunOptions(config=skimmed, output=tmp_path / "run", selection=RunSelection(systematics="scale")))
    entries = list(run.result.samples[0].histograms["ht"].axes["systematic"])
    assert "jesUp" not in entries and "scaleUp" in entries
    _assert_equal(run, histograms, entries)

    # resumable: what is up to date is not made again, --force makes it again
    made = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "skim").glob("*.root")}
    again = execute_skim(options)
    assert again.written == [] and again.up_to_date == [
        "ttbar.part-1-of-2.root",
        "zmumu.part-1-of-2.root",
        "data.part-1-of-2.root",
    ]
    assert made == {p.name: p.stat().st_mtime_ns for p in (tmp_path / "skim").glob("*.root")}
    with pytest.raises(
        ConfigError, match=r"shape systematic 'jes' is not in the skim of sample 'ttbar' \(.*samples.yaml\)"
    ):
        prepare(RunOptions(config=skimmed, output=tmp_path / "out"))


def test_skim_in_dask_tasks_equals_threaded_skim(original, skim, tmp_path):
    """The skim as tasks on a local Dask cluster of two workers, each writing its file into the skim
    folder: the threaded skim's events, variations, records (so either one's files are up to date for
    the other) and samples YAML."""
    config, _ = original
    out = tmp_path / "skim"
    report = bounded(lambda: execute_skim_in_tasks(RunOptions(config=config, output=out), 1, DaskExecutor(None, 2, 0)))
    assert sorted(p.name for p in report.written) == ["data.root", "ttbar.root", "zmumu.root"]
    assert (report.events, report.passed) == (skim.events, skim.passed)
    assert len({t.worker for t in report.tasks}) == 2
    for name in ("ttbar", "zmumu", "data"):
        assert read_record(record_path(out, f"{name}.root")) == read_record(record_path(skim.folder, f"{name}.root"))
        ours, theirs = (uproot.open(f / f"{name}.root")["Events"].arrays() for f in (out, skim.folder))
        assert ours.fields == theirs.fields and ak.all([ak.all(ours[f] == theirs[f]) for f in ours.fields])
    assert YAML(typ="safe").load((out / "samples.yaml").read_text()) == YAML(typ="safe").load(
        (skim.folder / "samples.yaml").read_text()
    )
    assert not list(out.glob(".*.tmp"))


def test_skim_task_needs_the_skim_folder_on_its_worker(original, tmp_path):
    """A worker that does not see the skim folder (no shared file system) fails the task, saying so."""
    config, _ = original
    options = RunOptions(config=config, output=tmp_path, selection=RunSelection(samples=("zmumu",)))
    (task,), _ = _skim_tasks(options, load_config(config), 1, tmp_path / "elsewhere", Timer())
    err = run_task(task)
    assert isinstance(err, ExecutionError) and "skim folder" in str(err) and "share" in err.hint
    assert not (tmp_path / "elsewhere").exists()


def test_force_makes_the_skim_again(original, tmp_path):
    config, _ = original
    options = RunOptions(
        config=config, output=tmp_path, selection=RunSelection(samples=("zmumu",), systematics="none", max_events=2000)
    )
    execute_skim(options)
    made = (tmp_path / "zmumu.root").stat().st_mtime_ns
    report = execute_skim(RunOptions(**{**options.__dict__, "force": True}))
    assert report.written == [tmp_path / "zmumu.root"] and (tmp_path / "zmumu.root").stat().st_mtime_ns > made
    assert not list(tmp_path.glob(".*.tmp")), "no temporary left behind"


@pytest.mark.parametrize(
    ("edit", "message", "key"),
    [
        (
            {"HT: kin::scalar_sum(GoodJet_pt)": "HT: kin::scalar_sum(GoodJet_pt) * 2"},
            "'HT' is read from the skim of sample 'ttbar'",
            "defines.HT",
        ),
        ({f"Jet_pt * {JES}": "Jet_pt * 1.06"}, "shape systematic 'jes' changed since the skim", "systematics.jes"),
    ],
    ids=["define_changed", "variation_changed"],
)
def test_skim_refuses_what_changed_since(original, skim, generated, kinematics_header, edit, message, key):
    config = _config(original[0].parent, generated, kinematics_header, skim.folder / "samples.yaml", **edit)
    with pytest.raises(ConfigError, match=re.escape(message)) as info:
        prepare(RunOptions(config=config, output=config.parent / "never"))
    assert info.value.location is not None and info.value.location.key == key


def test_agc_runs_from_its_skim(generated, tmp_path):
    """The AGC analysis with its own skim: block (its selection; jets, lepton counts; pt_scale and pt_res held)."""
    agc = Path(__file__).resolve().parent.parent / "analyses" / "agc_ttbar" / "analysis.yaml"
    (tmp_path / "samples.yaml").write_text(
        f"lumi: 3378.0\nsamples:\n  ttbar: {{files: [{generated['ttbar']}], xsec: 729.84}}\n"
    )
    configs = {}
    for name, samples in (("original", tmp_path / "samples.yaml"), ("on_skim", tmp_path / "skim" / "samples.yaml")):
        configs[name] = tmp_path / f"{name}.yaml"
        configs[name].write_text(f"schema: 1\nanalysis: agc\ninclude: [{agc}, {samples}]\n")
    original = execute(RunOptions(config=configs["original"], output=tmp_path / "original"))
    skim = execute_skim(RunOptions(config=configs["original"], output=tmp_path / "skim"))
    assert skim.passed < 0.1 * skim.events
    on_skim = execute(RunOptions(config=configs["on_skim"], output=tmp_path / "on_skim"))
    assert "pt_resUp" in list(on_skim.result.samples[0].histograms["ht_4j1b"].axes["systematic"])
    _assert_equal(on_skim, {s.sample.name: s for s in original.result.samples})


def test_samples_update_leaves_skims_as_they_are(skim, tmp_path):
    copy = tmp_path / "samples.yaml"
    shutil.copy(skim.folder / "samples.yaml", copy)
    report = update_samples_file(copy)
    assert not report.changed and report.skims == ["ttbar", "zmumu", "data"]
    assert copy.read_bytes() == (skim.folder / "samples.yaml").read_bytes()


def _expectations(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        m = re.match(r"# (error|line|key):\s?(.*)", line)
        if not m:
            break
        found[m.group(1)] = m.group(2)
    return found


@pytest.mark.parametrize("bad", sorted(BAD.glob("*.yaml")), ids=lambda p: p.stem)
def test_bad_skim_is_reported_at_its_place(bad, tmp_path, generated):
    expect = _expectations(bad)
    text = bad.read_text()
    for name, file in generated.items():
        text = text.replace(f"@{name}@", str(file))
    config = tmp_path / bad.name
    config.write_text(text)
    out = tmp_path / "skim"
    with pytest.raises(FrameworkError) as info:
        execute_skim(RunOptions(config=config, output=out))
    err = info.value
    assert re.search(expect["error"], str(err)), str(err)
    assert err.location is not None and err.location.file.endswith(bad.name), str(err)
    assert err.location.line == int(expect["line"]), str(err)
    assert err.location.key == expect["key"], str(err)
    assert not out.exists(), "nothing may be written"


def test_cli_bad_skim_exits_nonzero_with_place(tmp_path, generated):
    text = (BAD / "unknown_key.yaml").read_text().replace("@zmumu@", str(generated["zmumu"]))
    config = tmp_path / "config.yaml"
    config.write_text(text)
    proc = subprocess.run(
        [sys.executable, "-m", "framework", "skim", str(config), "-o", str(tmp_path / "skim")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert f"{config}:{_expectations(BAD / 'unknown_key.yaml')['line']}: skim.formt: unknown key 'formt'" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "skim").exists()
