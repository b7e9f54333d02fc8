"""The Python API behind notebooks, and the tutorial notebook executed end to end (nbclient)."""

from __future__ import annotations

import time
from pathlib import Path

import nbformat
import numpy as np
import pytest
from nbclient import NotebookClient

from framework.app.notebook import Analysis
from framework.errors import ConfigError, FrameworkError
from framework.present.results import load_histograms

REPO = Path(__file__).resolve().parent.parent


def test_tutorial_notebook_executes(tmp_path, monkeypatch):
    monkeypatch.setenv("TUTORIAL_OUTPUT", str(tmp_path / "out"))
    notebook = nbformat.read(REPO / "docs" / "tutorial.ipynb", as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(REPO)}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the plots were drawn
    assert (tmp_path / "out" / "ttbar.hist.zip").is_file()


def test_api_runs_in_the_background_and_reports(generated, write_config, tmp_path):
    config = write_config(
        f"""
        analysis: api
        lumi: 1.0
        samples:
          zmumu: {{files: ["{generated["zmumu"]}"], xsec: 1.0}}
          data: {{files: ["{generated["data"]}"], is_data: true}}
        weight: genWeight
        histograms:
          met: {{axes: [{{expr: MET_pt, bins: 20, range: [0, 200]}}]}}
        """
    )
    analysis = Analysis.from_yaml(config)
    assert "<table>" in analysis._repr_html_() and "zmumu" in analysis._repr_html_()
    run = analysis.run(tmp_path / "out", threads=2)
    assert run.status() in ("running", "done")
    assert run.wait(timeout=300) == "done"
    progress = run.progress()
    assert progress["stage"] == "done" and progress["events"] == progress["total"] == 30000 + 11000
    hists = run.result(by="sample")
    assert hists["zmumu"]["met"][{"systematic": "nominal"}].sum(flow=True).value == pytest.approx(1.0, rel=1e-9)
    assert any("wrote" in line for line in run.log("INFO")) and run.log("ERROR") == []
    np.testing.assert_array_equal(
        hists["data"]["met"].values(), load_histograms(tmp_path / "out")["data"]["met"].values()
    )

    again = analysis.run(tmp_path / "again", threads=2, wait=True)  # the same warm worker: ROOT already started
    assert again.status() == "done"
    setup = next(line for line in again.log("INFO") if "set-up" in line)
    assert "imports 0.00, root 0.00" in setup and "inputs 0.00" in setup, setup
    np.testing.assert_array_equal(again.result(by="sample")["data"]["met"].values(), hists["data"]["met"].values())


def test_api_from_dict_validates_and_cancel_stops(generated, tmp_path):
    data = {
        "analysis": "from_dict",
        "lumi": 1.0,
        "samples": {"zmumu": {"files": [str(generated["zmumu"])], "xsec": 1.0}},
        "histograms": {"met": {"axes": [{"expr": "MET_pt", "bins": 20, "range": [0, 200]}]}},
    }
    analysis = Analysis.from_dict(data, tmp_path)
    assert analysis.to_dict()["histograms"]["met"]["axes"][0]["bins"] == 20
    with pytest.raises(ConfigError, match=r"unknown key 'bns'"):
        Analysis.from_dict({**data, "histograms": {"met": {"axes": [{"expr": "MET_pt", "bns": 20}]}}}, tmp_path)
    run = analysis.run(tmp_path / "out")
    time.sleep(1.0)
    run.cancel()
    assert run.status() in ("cancelled", "done")
    broken = analysis.modified(histograms={"met": {"axes": [{"expr": "MET_ptt", "bins": 2, "range": [0, 1]}]}})
    failed = broken.run(tmp_path / "bad")
    with pytest.raises(FrameworkError, match="unknown column 'MET_ptt'"):
        failed.result()
    assert failed.status() == "failed" and failed.log("ERROR")


def test_api_runs_on_dask_with_progress(generated, write_config, tmp_path):
    config = write_config(
        f"""
        analysis: api_dask
        samples:
          data: {{files: ["{generated["data"]}"], is_data: true}}
        histograms:
          met: {{axes: [{{expr: MET_pt, bins: 20, range: [0, 200]}}]}}
        """
    )
    run = Analysis.from_yaml(config).run(tmp_path / "out", executor="dask", threads=2)
    assert run.wait(timeout=300) == "done", run.log("INFO")
    progress = run.progress()
    assert progress["stage"] == "done" and progress["events"] == 11000 and progress["tasks"] == 1
    assert run.result(by="sample")["data"]["met"].sum(flow=True).value == 11000
