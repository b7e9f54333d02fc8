"""Lumi masks: collision data keep the events of certified luminosity sections, before any cut.

Checked against an independent implementation (every range compared with every event, in numpy,
on uproot reads): on generated runs and luminosity sections with the edge cases (first and last
section of a range, adjacent ranges, runs absent from the JSON or from the data), and, in
tests/test_examples.py, on the real open-data file. Bad masks are reported at their YAML key.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import uproot

from framework.config.load import load_config
from framework.errors import ConfigError
from framework.execute.pipeline import RunOptions, execute
from framework.plan.model import Plan
from framework.plan.steps import LumiMask

# Runs 100..110 of 1000 events, each of luminosity sections 1..20 of 50 events (see `runs`).
GOLDEN_A = {  # era A; runs not in increasing order, as JSON objects may be written
    "103": [[1, 1], [10, 12]],  # the first section of the run; a range of three
    "100": [[1, 3], [4, 6]],  # adjacent ranges
    "101": [[5, 5], [20, 20]],  # single sections; the run's last section
    "999": [[1, 100]],  # a run the data do not have
}  # run 102: absent, all of its events removed
GOLDEN_B_ERA = {"104": [[1, 20]], "105": [[1, 20]], "106": [[1, 20]], "107": [[1, 20]]}  # replaced by the sample's
GOLDEN_B = {"104": [[2, 19]], "105": [[1, 20]], "107": [[7, 8], [15, 21]]}  # a range past the last section
FILES = {"A": (1, 4000), "B": (4001, 8000), "C": (8001, 11000)}  # by the generated `event` number
COLUMNS = ["run", "luminosityBlock", "event", "nMuon", "Muon_pt"]


def certified(runs: np.ndarray, lumis: np.ndarray, golden: dict[str, list[list[int]]]) -> np.ndarray:
    """Which events a golden JSON certifies: every range compared with every event (no sorting, no search)."""
    keep = np.zeros(len(runs), dtype=bool)
    for run, ranges in golden.items():
        for first, last in ranges:
            keep |= (runs == int(run)) & (lumis >= first) & (lumis <= last)
    return keep


@pytest.fixture(scope="module")
def runs(generated, tmp_path_factory) -> dict[str, Path]:
    """The generated collision data (11000 events) with 11 runs of 20 luminosity sections each, as
    three files of consecutive runs."""
    from framework.engine.rootenv import root

    folder = tmp_path_factory.mktemp("runs")
    df = root().RDataFrame("Events", str(generated["data"]))
    df = df.Redefine("run", "UInt_t(100 + (event - 1) / 1000)")
    df = df.Redefine("luminosityBlock", "UInt_t(1 + (event - 1) % 1000 / 50)")
    files = {}
    for name, (first, last) in FILES.items():
        files[name] = folder / f"data_{name}.root"
        df.Filter(f"event >= {first} && event <= {last}").Snapshot("Events", str(files[name]), COLUMNS)
    return files


def _write_masks(folder: Path) -> dict[str, Path]:
    masks = {"A": GOLDEN_A, "B_era": GOLDEN_B_ERA, "B": GOLDEN_B}
    paths = {}
    for name, golden in masks.items():
        paths[name] = folder / "masks" / f"golden_{name}.json"
        paths[name].parent.mkdir(exist_ok=True)
        paths[name].write_text(json.dumps(golden))
    return paths


def test_masks_keep_the_certified_sections_of_data_only(runs, generated, tmp_path):
    masks = _write_masks(tmp_path)
    config = tmp_path / "config.yaml"
    config.write_text(
        f"""analysis: lumimask
eras:
  A: {{lumi: 10.0, lumi_mask: masks/golden_A.json}}
  B: {{lumi: 10.0, lumi_mask: masks/golden_B_era.json}}
  C: {{lumi: 10.0}}
samples:
  zmumu: {{files: ["{generated["zmumu"]}"], xsec: 100.0, era: A}}
  data_A: {{files: ["{runs["A"]}"], is_data: true, era: A}}
  data_B: {{files: ["{runs["B"]}"], is_data: true, era: B, lumi_mask: masks/golden_B.json}}
  data_C: {{files: ["{runs["C"]}"], is_data: true, era: C}}
selection:
  - {{name: two_muons, cut: "nMuon >= 2"}}
histograms:
  mu_pt: {{axes: [{{expr: Muon_pt, bins: 20, range: [0, 100]}}]}}
"""
    )
    report = execute(RunOptions(config=config, output=tmp_path / "out"))
    assert report is not None
    results = {s.sample.name: s for s in report.result.samples}
    (step,) = [s for d in report.plan.datasets if d.is_data for s in d.steps if isinstance(s, LumiMask)]
    assert step.by_sample == (0, 1, -1) and [Path(m.file) for m in step.masks] == [masks["A"], masks["B"]]
    assert Plan.from_dict(json.loads(report.plan.to_json())) == report.plan  # as Dask and Spark tasks get it

    kept = {}
    for name, golden in (("A", GOLDEN_A), ("B", GOLDEN_B), ("C", None)):
        e = uproot.open(runs[name])["Events"].arrays(["run", "luminosityBlock", "nMuon", "Muon_pt"])
        r, lumi = e["run"].to_numpy(), e["luminosityBlock"].to_numpy()
        keep = certified(r, lumi, golden) if golden is not None else np.ones(len(r), dtype=bool)
        selected = keep & (e["nMuon"].to_numpy() >= 2)
        rows = [(row.cut, row.events) for row in results[f"data_{name}"].cutflow]
        assert rows == [("all", len(r)), ("lumi_mask", keep.sum()), ("two_muons", selected.sum())]
        kept[name] = int(keep.sum())
        pt = np.concatenate(e["Muon_pt"][selected].to_list() or [[]]).astype(np.float64)
        expected = np.histogram(pt, bins=[-np.inf, *np.linspace(0, 100, 21), np.inf])[0]
        h = results[f"data_{name}"].histograms["mu_pt"][{"systematic": "nominal"}]
        assert h.values(flow=True).tolist() == expected.tolist()
    # the same numbers counted by hand from the masks: 50 events per section
    assert kept == {"A": 50 * (6 + 2 + 4), "B": 50 * (18 + 20 + 2 + 6), "C": 3000}
    # simulation is never masked, though its era's mask has no run 1
    assert [(row.cut, row.events) for row in results["zmumu"].cutflow][:1] == [("all", 30000)]
    assert "lumi_mask" not in [row.cut for row in results["zmumu"].cutflow]

    records = {}
    for name in ("zmumu", "data_A", "data_B", "data_C"):
        with zipfile.ZipFile(tmp_path / "out" / f"{name}.hist.zip") as z:
            records[name] = json.loads(z.read("provenance.json"))["lumi_mask"]
    assert records["zmumu"] is None and records["data_C"] is None
    for name, mask in (("data_A", masks["A"]), ("data_B", masks["B"])):
        assert records[name] == {"file": str(mask), "sha256": hashlib.sha256(mask.read_bytes()).hexdigest()}


def test_the_lookup_equals_a_scan_of_every_range():
    """fw::LumiMask (one binary search) against the scan, on random masks and events around their edges."""
    from framework.engine.rootenv import FRAMEWORK_HEADER, declare_file, root

    declare_file(FRAMEWORK_HEADER)
    rng = np.random.default_rng(18)
    golden: dict[str, list[list[int]]] = {}
    for run in sorted(rng.choice(np.arange(1, 400), size=60, replace=False).tolist()):
        edge, ranges = 0, []
        for _ in range(int(rng.integers(1, 6))):
            first = edge + 1 + int(rng.integers(0, 4))  # 0: adjacent to the range before
            ranges.append([first, first + int(rng.integers(0, 5))])
            edge = ranges[-1][1]
        golden[str(run)] = ranges
    flat = np.array([[int(run), f, lst] for run, rs in golden.items() for f, lst in rs], dtype=np.uint32).ravel()
    mask = root().fw.LumiMask(flat, flat.size)
    assert mask.Size() == flat.size // 3
    runs = rng.integers(0, 401, size=20000).astype(np.uint32)
    lumis = rng.integers(0, 30, size=20000).astype(np.uint32)
    found = np.array([mask.Contains(int(r), int(lu)) for r, lu in zip(runs, lumis)])
    expected = certified(runs, lumis, golden)
    assert 1000 < expected.sum() < 19000 and (found == expected).all()


MASK_LINE = 3  # the line of `lumi_mask:` in the config `_bad` writes


def _bad(tmp_path: Path, mask: object, *, on: str = "era", cut: str = "met") -> Path:
    """A config whose era (or data sample) names mask.json, holding `mask` (JSON, or text as it is).
    (A missing file and a mask on simulation: tests/bad_configs/lumi_mask_*.yaml.)"""
    (tmp_path / "mask.json").write_text(mask if isinstance(mask, str) else json.dumps(mask))
    era = "{lumi: 1.0, lumi_mask: mask.json}" if on == "era" else "{lumi: 1.0}"
    sample = "{files: [x.root], era: A, is_data: true" + (", lumi_mask: mask.json}" if on == "sample" else "}")
    config = tmp_path / "config.yaml"
    config.write_text(
        f"analysis: bad\neras:\n  A: {era}\nsamples:\n  s: {sample}\n"
        f'selection:\n  - {{name: {cut}, cut: "MET_pt > 10"}}\n'
        "histograms:\n  h: {axes: [{expr: MET_pt, bins: 2, range: [0, 1]}]}\n"
    )
    return config


ERA_KEY, SAMPLE_KEY = (MASK_LINE, "eras.A.lumi_mask"), (MASK_LINE + 2, "samples.s.lumi_mask")
BAD_MASKS = {
    "not_json": ('{"1": [[1, 2]],}', {}, r"not valid JSON: .*line 1, column 16 of the JSON", ERA_KEY),
    "not_an_object": ([[1, 2]], {}, r"the top level is a list, not an object of runs", ERA_KEY),
    "run_key_not_a_number": ({"run1": [[1, 2]]}, {}, r"run key 'run1' is not a run number", ERA_KEY),
    "run_key_negative": ({"-3": [[1, 2]]}, {}, r"run key '-3' is not a run number", ERA_KEY),
    "range_not_a_pair": ({"1": [[1, 2, 3]]}, {}, r"run 1, range 0: \[1, 2, 3\] is not a \[first, last\]", ERA_KEY),
    "section_not_an_integer": ({"1": [[1.5, 2]]}, {}, r"run 1, range 0: \[1.5, 2\] is not a \[first", ERA_KEY),
    "first_after_last": ({"1": [[1, 2], [9, 4]]}, {}, r"run 1, range 1: \[9, 4\] has its first .* after", ERA_KEY),
    "overlapping": ({"7": [[1, 5], [5, 8]]}, {}, r"run 7, range 1: \[5, 8\] overlaps the range before it", ERA_KEY),
    "unsorted": ({"7": [[10, 12], [1, 3]]}, {}, r"run 7, range 1: \[1, 3\] comes before the range before", ERA_KEY),
    "duplicate_run": ('{"7": [[1, 2]], "7": [[4, 5]]}', {}, r"run '7' appears twice", ERA_KEY),
    "same_run_twice": ({"7": [[1, 2]], "07": [[4, 5]]}, {}, r"run 7 appears twice \(as '7' and '07'\)", ERA_KEY),
    "sample_mask_bad": ({"1": [[2, 1]]}, {"on": "sample"}, r"run 1, range 0: \[2, 1\] has its first", SAMPLE_KEY),
    "cut_named_lumi_mask": ({"1": [[1, 2]]}, {"cut": "lumi_mask"}, r"cut name 'lumi_mask' is the cutflow row", None),
}


@pytest.mark.parametrize("case", list(BAD_MASKS), ids=str)
def test_bad_masks_are_reported_at_their_yaml_key(case, tmp_path):
    mask, options, message, place = BAD_MASKS[case]
    config = _bad(tmp_path, mask, **options)
    with pytest.raises(ConfigError, match=message) as info:
        load_config(config)
    line, key = place or (7, "selection[0].name")
    location = info.value.location
    assert location is not None and (location.file, location.line, location.key) == (str(config), line, key)


def test_a_bad_mask_stops_the_command_before_any_output(tmp_path):
    config = _bad(tmp_path, {"5": [[3, 8], [6, 9]]})
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "framework", str(config), "-o", str(out)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 2
    assert f"{config}:{MASK_LINE}: eras.A.lumi_mask: lumi mask {tmp_path / 'mask.json'}: run 5, range 1" in proc.stderr
    assert "Traceback" not in proc.stderr and not out.exists()


def test_data_without_run_columns_are_refused_before_the_loop(shared_data, tmp_path):
    """The real 2012 RNTuple holds muons only: no run, no luminosityBlock."""
    (tmp_path / "mask.json").write_text(json.dumps({"195013": [[1, 100]]}))
    config = tmp_path / "config.yaml"
    rntuple = shared_data / "Run2012BC_DoubleMuParked_Muons_1000evts_rntuple_v1-0-0-0.root"
    config.write_text(
        'analysis: bad\neras:\n  "2012": {lumi: 1.0, lumi_mask: mask.json}\n'
        f'samples:\n  doublemu: {{files: ["{rntuple}"], is_data: true, era: "2012"}}\n'
        "histograms:\n  n: {axes: [{expr: nMuon, integer: [0, 5]}]}\n"
    )
    with pytest.raises(ConfigError, match=r"data sample 'doublemu' has no column 'run': the lumi mask mask\.json") as e:
        execute(RunOptions(config=config, output=tmp_path / "out"))
    assert e.value.location is not None and (e.value.location.line, e.value.location.key) == (3, "eras.2012.lumi_mask")
    assert not (tmp_path / "out").exists()


def test_a_skim_of_masked_data_keeps_the_mask_and_the_histograms(runs, tmp_path):
    """Data are skimmed through their lumi mask; the skim's samples YAML names the same mask (from the
    skim's folder), so a run on the skim masks again and records it, with the original's histograms."""
    from framework.execute.skim import execute_skim

    masks = _write_masks(tmp_path)
    body = """selection:
  - {name: two_muons, cut: "nMuon >= 2"}
histograms:
  mu_pt: {axes: [{expr: Muon_pt, bins: 20, range: [0, 100]}]}
skim: {selection: [two_muons], keep: [nMuon, Muon_pt]}
"""
    (tmp_path / "samples.yaml").write_text(
        f"""eras:
  A: {{lumi: 10.0, lumi_mask: masks/golden_A.json}}
samples:
  data_A: {{files: ["{runs["A"]}"], is_data: true, era: A}}
  data_B: {{files: ["{runs["B"]}"], is_data: true, era: A, lumi_mask: masks/golden_B.json}}
"""
    )
    original = tmp_path / "config.yaml"
    original.write_text(f"analysis: lumiskim\ninclude: [samples.yaml]\n{body}")
    execute_skim(RunOptions(config=original, output=tmp_path / "skims" / "lumi"))
    on_skim = tmp_path / "on_skim.yaml"
    on_skim.write_text(f"analysis: lumiskim\ninclude: [skims/lumi/samples.yaml]\n{body}")
    report = execute(RunOptions(config=on_skim, output=tmp_path / "out_skim"))
    reference = execute(RunOptions(config=original, output=tmp_path / "out"))
    assert report is not None and reference is not None
    for skimmed, full in zip(report.result.samples, reference.result.samples, strict=True):
        # the skim holds the certified events passing the cut: the mask, applied again, keeps them all
        passed = full.cutflow[-1].events
        assert [(r.cut, r.events) for r in skimmed.cutflow] == [
            ("all", passed),
            ("lumi_mask", passed),
            ("two_muons", passed),
        ]
        assert [r.cut for r in full.cutflow] == ["all", "lumi_mask", "two_muons"] and passed < full.cutflow[1].events
        h, expected = skimmed.histograms["mu_pt"], full.histograms["mu_pt"]
        assert h.values(flow=True).tolist() == expected.values(flow=True).tolist()
    for name, mask in (("data_A", masks["A"]), ("data_B", masks["B"])):
        with zipfile.ZipFile(tmp_path / "out_skim" / f"{name}.hist.zip") as z:
            assert json.loads(z.read("provenance.json"))["lumi_mask"]["file"] == str(mask)
