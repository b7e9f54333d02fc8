"""The command line as a user meets it: the demo on a fresh checkout, --dry-run, --help, schema."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import hist
import pytest
import uhi.io.zip

from framework.app.cli import main
from framework.config.schema.analysis import json_schema_text

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "analyses" / "demo" / "config.yaml"


def run_cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "framework", *args], capture_output=True, text=True, cwd=cwd, check=False
    )


def test_demo_runs_and_writes_one_file_per_sample(tmp_path):
    out = tmp_path / "OUT"
    proc = run_cli(str(DEMO), "-o", str(out), "--max-events", "5000")
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["data.hist.zip", "run.json", "ttbar.hist.zip", "zmumu.hist.zip"]
    assert "events/s" in proc.stdout and "set-up" in proc.stdout
    with zipfile.ZipFile(out / "ttbar.hist.zip") as z:
        h = hist.Hist(uhi.io.zip.read(z, "ht"))
    assert h[{"systematic": "jesUp", "nbtag": 2j}].project("HT").sum().value > 0
    summary = json.loads((out / "run.json").read_text())
    assert summary["events"] == 15000


def test_dry_run_prints_the_plan_without_outputs(tmp_path):
    proc = run_cli(str(DEMO), "--dry-run", "-o", str(tmp_path / "never"))
    assert proc.returncode == 0, proc.stderr
    for text in (
        "samples:",
        "dataset 0: MC",
        "vary    Jet_pt [jes]",
        "filter  one_lepton",
        "histogram ht:",
        "systematic axis",
    ):
        assert text in proc.stdout
    assert not (tmp_path / "never").exists()


def test_help_lists_every_command():
    proc = run_cli("--help")
    assert proc.returncode == 0
    for text in ("--dry-run", "--systematics", "--samples", "--max-events", "run-analysis schema"):
        assert text in proc.stdout


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["skim", "--executor", "dask", "--part", "1/2"], "--part goes with batch jobs, not --executor dask"),
        (["--executor", "spark", "--part", "2/2"], "--part goes with batch jobs, not --executor spark"),
        (["skim", "--executor", "dask", "--files-per-task", "0"], "--files-per-task 0: must be at least 1"),
        (["skim", "--cluster", "slurm"], "--cluster starts Dask workers as batch jobs"),
    ],
    ids=["skim_part", "run_part", "files_per_task", "cluster_without_dask"],
)
def test_task_arguments_that_do_not_go_together(argv, message, tmp_path, caplog):
    """Refused before the configuration is read or a worker started: exit 2, nothing written."""
    if argv[0] == "skim":
        argv = ["skim", str(DEMO), *argv[1:]]
    else:
        argv = [str(DEMO), *argv]
    assert main([*argv, "-o", str(tmp_path / "out")]) == 2
    assert message in caplog.text
    assert not (tmp_path / "out").exists()


def test_missing_config_is_an_error(tmp_path):
    proc = run_cli(str(tmp_path / "absent.yaml"))
    assert proc.returncode != 0 and "does not exist" in proc.stderr


def test_shipped_json_schema_is_generated_from_the_models():
    shipped = (REPO / "framework" / "config" / "schema" / "analysis-v1.schema.json").read_text()
    assert shipped == json_schema_text(), "run: run-analysis schema -o framework/config/schema/analysis-v1.schema.json"
    proc = run_cli("schema")
    assert proc.returncode == 0 and json.loads(proc.stdout)["title"] == "AnalysisSpec"
