"""The output format is versioned: files of another format version are refused, by name, with
the versions on both sides and what to do, never misread and never with a traceback."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from configs import zmumu_and_data  # tests/ is on the path

from framework.execute.pipeline import RunOptions, execute
from framework.output.format import FORMAT_VERSION, CutflowRow, Provenance, RunSummary, read_records

BODY = """
weight: genWeight
selection:
  - {name: two_muons, cut: "nMuon >= 2"}
histograms:
  n_muon: {axes: [{expr: nMuon, bins: 5, range: [0, 5]}]}
"""


def config_text(zmumu: object, data: object) -> str:
    return zmumu_and_data("versioned", 10.0, str(zmumu), str(data), 2000.0, BODY)


NEWER = {"format_version": 999}
OLDER: dict[str, int] = {}  # before versioning: no format_version


@pytest.fixture(scope="module")
def run(generated, tmp_path_factory):
    """A config and the output folder of one run of it."""
    folder = tmp_path_factory.mktemp("versioned")
    config = folder / "config.yaml"
    config.write_text(config_text(zmumu=generated["zmumu"], data=generated["data"]))
    execute(RunOptions(config=config, output=folder / "out"))
    return config, folder / "out"


def _rewrite(source: Path, target: Path, version: dict[str, int]) -> None:
    """Copy an output file with its provenance's format version replaced (or removed, for `OLDER`)."""
    with zipfile.ZipFile(source) as z:
        members = {name: z.read(name) for name in z.namelist()}
    provenance = json.loads(members["provenance.json"])
    provenance.pop("format_version")
    members["provenance.json"] = json.dumps({**provenance, **version}).encode()
    target.unlink(missing_ok=True)
    with zipfile.ZipFile(target, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)


def _cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "framework", *map(str, args)], check=False, capture_output=True, text=True
    )


def _refused(proc: subprocess.CompletedProcess[str], path: Path, version: dict[str, int]) -> None:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    has = "format version 999" if version else "no format version"
    assert (
        f"error: {path}: its provenance.json has {has}, this framework reads format version {FORMAT_VERSION}"
        in proc.stderr
    )
    assert ("written by a newer framework" if version else "written by an older framework") in proc.stderr
    assert "re-run the analysis with --force" in proc.stderr


def test_files_carry_the_format_version_and_read_back_as_models(run):
    _, out = run
    summary = RunSummary.model_validate_json((out / "run.json").read_text())
    assert summary.format_version == FORMAT_VERSION and summary.outputs == ["zmumu.hist.zip", "data.hist.zip"]
    provenance, cutflow = read_records(out / "zmumu.hist.zip")
    assert isinstance(provenance, Provenance) and provenance.format_version == FORMAT_VERSION
    assert [row.cut for row in cutflow] == ["all", "two_muons"] and isinstance(cutflow[0], CutflowRow)
    with zipfile.ZipFile(out / "zmumu.hist.zip") as z:  # the cutflow stays a plain list of rows, unversioned
        assert json.loads(z.read("cutflow.json")) == [row.model_dump() for row in cutflow]


@pytest.mark.parametrize("version", [NEWER, OLDER], ids=["newer", "older"])
def test_plot_refuses_another_format_version(run, tmp_path, version):
    config, out = run
    folder = tmp_path / "out"
    shutil.copytree(out, folder)
    _rewrite(out / "zmumu.hist.zip", folder / "zmumu.hist.zip", version)
    proc = _cli("plot", config, "-i", folder, "-o", tmp_path / "report")
    _refused(proc, folder / "zmumu.hist.zip", version)
    assert not (tmp_path / "report").exists()


@pytest.mark.parametrize("version", [NEWER, OLDER], ids=["newer", "older"])
def test_merge_refuses_another_format_version(run, tmp_path, version):
    _, out = run
    part = tmp_path / "zmumu.part-1-of-1.hist.zip"
    _rewrite(out / "zmumu.hist.zip", part, version)
    proc = _cli("merge", tmp_path, "-o", tmp_path / "merged")
    _refused(proc, part, version)
    assert not (tmp_path / "merged").exists()


def test_run_refuses_to_judge_an_output_of_another_version_until_forced(run, tmp_path):
    config, out = run
    folder = tmp_path / "out"
    shutil.copytree(out, folder)
    _rewrite(out / "data.hist.zip", folder / "data.hist.zip", NEWER)
    _refused(_cli(config, "-o", folder, "--no-progress"), folder / "data.hist.zip", NEWER)
    forced = _cli(config, "-o", folder, "--no-progress", "--force")
    assert forced.returncode == 0, forced.stderr
    assert read_records(folder / "data.hist.zip")[0].format_version == FORMAT_VERSION
