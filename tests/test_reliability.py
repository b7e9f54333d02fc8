"""What a careless or hostile input must not do: write outside the output folder, crash with a
traceback, leave half-written files, or pass silently. (Configuration mistakes that stop before
the event loop are files in bad_configs/, checked by test_errors.py.)"""

from __future__ import annotations

import errno
import os
import shutil
import socket
import stat
import subprocess
import sys
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot
from conftest import REPO

from framework.errors import ConfigError, ExecutionError, InputError
from framework.execute.pipeline import RunOptions, execute
from framework.output import write
from framework.output.merge import merge_outputs
from framework.plan.model import RunSelection
from framework.present.results import differences

SMALL = """
analysis: small
lumi: 10.0
samples:
  ttbar: {{files: [{ttbar}], xsec: 832.0}}
  data: {{files: [{data}], is_data: true}}
collections:
  GoodJet: {{from: Jet, where: "Jet_pt > 30", sort_by: pt}}
selection:
  - {{name: jets, cut: "nGoodJet >= 1"}}
histograms:
  ht: {{axes: [{{expr: "{expr}", name: x, bins: 20, range: [0, 400]}}]}}
"""


def _config(write_config, generated, expr: str = "GoodJet_pt[0]", name: str = "config.yaml") -> Path:
    return write_config(SMALL.format(ttbar=generated["ttbar"], data=generated["data"], expr=expr), name)


def _cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "framework", *args], cwd=cwd, capture_output=True, text=True, check=False
    )


def test_an_index_past_the_end_stops_the_loop_at_its_place(write_config, generated, tmp_path):
    """An unguarded subscript is checked in the loop: the error names it as written, its YAML
    line, the sample and the entry (no segfault, no reading past the array)."""
    config = _config(write_config, generated, expr="GoodJet_pt[3]")
    result = _cli(str(config), "-o", str(tmp_path / "out"), "-j", "1", "--no-progress")
    assert result.returncode == 3, result.stderr
    first = result.stderr.splitlines()[0]
    assert "config.yaml:11: histograms.ht.axes[0]" in first
    assert "index 3 is out of range in 'GoodJet_pt[3]'" in first
    # the place named is one where the index is past the end, found independently
    places = []
    for sample in ("ttbar", "data"):
        good_jets = ak.sum(uproot.open(generated[sample])["Events"]["Jet_pt"].array() > 30, axis=1)
        entry = int(np.flatnonzero((good_jets >= 1) & (good_jets <= 3))[0])
        places.append(f"(sample {sample!r}, file {generated[sample]}, entry {entry})")
    assert any(first.endswith(place) for place in places), (first, places)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_guarded_index_runs(write_config, generated, run_config):
    config = _config(write_config, generated, expr="nGoodJet > 1 ? GoodJet_pt[1] : -1.")
    report = run_config(config)
    assert report.result.samples[0].histograms["ht"].sum(flow=True).value > 0


def test_an_output_folder_that_cannot_be_written_stops_before_the_loop(write_config, generated, tmp_path):
    config = _config(write_config, generated)
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    result = _cli(str(config), "-o", str(blocker / "out"), "--no-progress")
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: cannot write to the output folder {blocker / 'out'}")
    assert "event loop" not in result.stdout


def test_a_full_disk_leaves_nothing_half_written(write_config, generated, tmp_path, monkeypatch):
    config = _config(write_config, generated)
    out = tmp_path / "out"
    written = write._write_zip_temp

    def fills_the_disk(path, members, histograms):
        if path.name.startswith("data"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return written(path, members, histograms)

    monkeypatch.setattr(write, "_write_zip_temp", fills_the_disk)
    with pytest.raises(
        ExecutionError, match=r"cannot write the outputs in .*No space left on device; nothing was written"
    ):
        execute(RunOptions(config=config, output=out, threads=1))
    assert list(out.iterdir()) == []


def test_temporaries_of_a_killed_run_are_removed_by_the_next(write_config, generated, tmp_path):
    config = _config(write_config, generated)
    out = tmp_path / "out"
    out.mkdir()
    ended = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=False
    )
    dead = out / f".ttbar.hist.zip.{int(ended.stdout)}.x1y2.tmp"
    alive = out / f".data.hist.zip.{os.getpid()}.x3y4.tmp"  # a run of this process: not touched
    dead.write_bytes(b"")
    alive.write_bytes(b"")
    execute(RunOptions(config=config, output=out, threads=1))
    assert not dead.exists() and alive.exists()


def test_dask_runs_while_another_process_holds_the_dashboard_port(write_config, generated, tmp_path, run_config):
    config = _config(write_config, generated)
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        holder.bind(("127.0.0.1", 8787))
        holder.listen(1)
    except OSError:
        pass  # something holds it already: the same situation
    try:
        result = _cli(
            str(config), "-o", str(tmp_path / "dask"), "--executor", "dask", "--workers", "1", "--no-progress"
        )
    finally:
        holder.close()
    assert result.returncode == 0, result.stderr
    threads = run_config(config, threads=1)
    assert differences(threads.outputs[0].parent, tmp_path / "dask", rel=1e-12) == []


def test_a_column_missing_in_a_later_file_is_found_before_the_loop(write_config, generated, tmp_path):
    import ROOT

    lacking = tmp_path / "lacking.root"
    frame = ROOT.RDataFrame("Events", str(generated["ttbar"]))
    frame.Snapshot("Events", str(lacking), [c for c in frame.GetColumnNames() if not str(c).startswith("Jet_")])
    config = write_config(
        SMALL.format(ttbar=f"{generated['ttbar']}, {lacking}", data=generated["data"], expr="GoodJet_pt[0]").replace(
            'cut: "nGoodJet >= 1"', 'cut: "nGoodJet >= 1 && GoodJet_pt[0] > 0"'
        )
    )
    with pytest.raises(ConfigError) as info:
        execute(RunOptions(config=config, output=tmp_path / "out", threads=1))
    err = info.value
    assert f"sample 'ttbar': file {lacking} lacks" in err.message and "Jet_pt" in err.message
    assert err.location is not None and (err.location.line, err.location.key) == (4, "samples.ttbar.files")


def _demo_copy(folder: Path) -> Path:
    text = (REPO / "analyses" / "demo" / "config.yaml").read_text().replace("../../", f"{REPO}/")
    path = folder / "demo.yaml"
    path.write_text(text)
    return path


def test_parts_split_a_single_file_by_entries_and_merge_to_the_whole(tmp_path):
    """The README's `--part 1/2` on the demo (one file per sample): each part reads half of the
    entries; merged, the parts equal one run of the whole (counts exactly)."""
    config = _demo_copy(tmp_path)
    for i in (1, 2):
        result = _cli(
            str(config),
            "-o",
            str(tmp_path / "parts"),
            "--part",
            f"{i}/2",
            "-j",
            "1",
            "--no-progress",
            "--systematics",
            "none",
        )
        assert result.returncode == 0, result.stderr
    report = merge_outputs(tmp_path / "parts", tmp_path / "merged")
    assert not report.missing and len(report.merged) == 3
    whole = _cli(str(config), "-o", str(tmp_path / "whole"), "-j", "1", "--no-progress", "--systematics", "none")
    assert whole.returncode == 0, whole.stderr
    assert differences(tmp_path / "whole", tmp_path / "merged", rel=1e-12) == []


def test_merge_refuses_parts_made_differently_and_damaged_parts(write_config, generated, tmp_path):
    config = _config(write_config, generated)
    parts = tmp_path / "parts"
    run = lambda i, **extra: execute(
        RunOptions(config=config, output=parts, threads=1, selection=RunSelection(part=(i, 2), **extra))
    )
    run(1, max_events=3000)
    run(2)
    with pytest.raises(
        InputError,
        match=r"sample '(data|ttbar)': its parts were made with different --max-events .*part-1-of-2.hist.zip: 3000",
    ):
        merge_outputs(parts)
    run(1)
    first = parts / "ttbar.part-1-of-2.hist.zip"
    first.write_bytes(first.read_bytes()[:100])  # truncated
    with pytest.raises(InputError, match=r"ttbar.part-1-of-2.hist.zip is not a complete output file"):
        merge_outputs(parts)


# ---------------------------------------------------------------- samples update


SAMPLES = """# samples of a test
samples:
  ttbar:
    files: [{ttbar}]
    xsec: 832.0
"""


@pytest.fixture
def no_scanning(monkeypatch):
    """`samples update` without ROOT: fixed figures per file."""
    from framework.app import samples

    monkeypatch.setattr(samples, "_scan", lambda *args: (100, 50.0, 30.0))
    monkeypatch.setattr(samples, "_scan_splits", lambda *args: {})


@pytest.mark.parametrize("layout", ["alias", "merge_key"])
def test_samples_update_refuses_shared_nodes_and_leaves_the_file(no_scanning, generated, tmp_path, layout):
    from framework.app.samples import update_samples_file

    text = SAMPLES.format(ttbar=generated["ttbar"]).replace("  ttbar:\n", "  ttbar: &common\n")
    text += "  ttbar_again: *common\n" if layout == "alias" else "  ttbar_more:\n    <<: *common\n    xsec: 1.0\n"
    path = tmp_path / "samples.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=r"uses a YAML anchor or merge key|is an alias of sample 'ttbar'") as info:
        update_samples_file(path)
    assert info.value.location is not None and info.value.location.line == 3
    assert path.read_text() == text


def test_samples_update_keeps_line_endings_mode_and_links(no_scanning, generated, tmp_path):
    from framework.app.samples import update_samples_file

    target = tmp_path / "real.yaml"
    target.write_bytes(SAMPLES.format(ttbar=generated["ttbar"]).replace("\n", "\r\n").encode())
    os.chmod(target, 0o644)
    link = tmp_path / "samples.yaml"
    link.symlink_to(target)
    assert update_samples_file(link).changed
    assert link.is_symlink() and link.resolve() == target
    raw = target.read_bytes()
    assert b"events: 100\r\n" in raw and raw.count(b"\r\n") == raw.count(b"\n")
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert not update_samples_file(link).changed  # a second run changes nothing
    assert target.read_bytes() == raw


def test_dry_run_says_what_it_executes(write_config, generated):
    """--dry-run reads the inputs' metadata and declares the cpp: files (their static initialisers
    run, as the README says), but compiles no expression and runs no event loop."""
    config = _config(write_config, generated)
    result = _cli(str(config), "--dry-run")
    assert result.returncode == 0 and "histogram ht" in result.stdout and "event loop" not in result.stdout


def test_no_output_outside_the_output_folder(write_config, generated, tmp_path):
    """A run writes only into -o (and the cache): the folder's parent holds nothing new."""
    config = _config(write_config, generated)
    before = set(tmp_path.iterdir())
    out = tmp_path / "out"
    assert _cli(str(config), "-o", str(out), "-j", "1", "--no-progress").returncode == 0
    assert set(tmp_path.iterdir()) - before == {out}
    assert sorted(p.name for p in out.iterdir()) == ["data.hist.zip", "run.json", "ttbar.hist.zip"]
    shutil.rmtree(out)


BASE = {
    "analysis": "names",
    "lumi": 1.0,
    "samples": {"zmumu": {"files": ["zmumu.root"], "xsec": 1.0}},
    "categories": {"channel": {"cases": {"mumu": "nMuon >= 2"}}},
    "histograms": {"h": {"axes": [{"expr": "MET_pt", "bins": 10, "range": [0, 100]}, "channel"]}},
}
EVIL = "../../evil"


@pytest.mark.parametrize(
    ("where", "change"),
    [
        ("analysis", {"analysis": EVIL}),
        (f"samples.{EVIL}", {"samples": {EVIL: {"files": ["zmumu.root"], "xsec": 1.0}}}),
        (
            f"samples.zmumu.split.{EVIL}",
            {"samples": {"zmumu": {"files": ["zmumu.root"], "xsec": 1.0, "split": {EVIL: "nJet > 3"}}}},
        ),
        (f"histograms.{EVIL}", {"histograms": {EVIL: {"axes": [{"expr": "MET_pt", "bins": 10, "range": [0, 100]}]}}}),
        (f"plots.{EVIL}", {"plots": {EVIL: {"histogram": "h"}}}),
        (f"exports.combine.{EVIL}", {"exports": {"combine": {EVIL: {"histogram": "h"}}}}),
        (f"exports.corrections.{EVIL}", {"exports": {"corrections": {EVIL: {"histogram": "h", "axes": ["MET_pt"]}}}}),
        (f"significance.{EVIL}", {"significance": {EVIL: {"histogram": "h", "signal": ["DY"]}}}),
        ("categories.channel.cases.a/b", {"categories": {"channel": {"cases": {"a/b": "nMuon >= 2"}}}}),
    ],
)
def test_every_name_that_becomes_a_path_is_checked(tmp_path, where, change):
    """Names become file and folder names (outputs, plots, exports): a name with '/' or '..' is
    refused at its key before anything is written."""
    from ruamel.yaml import YAML

    from framework.config.load import load_config

    path = tmp_path / "config.yaml"
    with path.open("w") as stream:
        YAML().dump({**BASE, **change}, stream)
    with pytest.raises(ConfigError, match=r"is not a valid name|cannot be used") as info:
        load_config(path)
    assert info.value.location is not None and info.value.location.key == where
