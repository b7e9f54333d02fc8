"""The Python API behind notebooks, and the tutorial notebook executed end to end (nbclient)."""

from __future__ import annotations

import base64
import json
import re
import time
from pathlib import Path

import matplotlib
import nbformat
import numpy as np
import pytest
from nbclient import NotebookClient

from framework.app.fit_result import FitResult
from framework.app.notebook import Analysis
from framework.errors import ConfigError, FrameworkError, InputError
from framework.present.results import load_histograms

REPO = Path(__file__).resolve().parent.parent
HIGGS = REPO / "analyses" / "higgs_4l" / "config.yaml"


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


def test_api_runs_on_the_callers_dask_client_with_progress(generated, write_config, tmp_path):
    config = write_config(
        f"""
        analysis: api_dask
        samples:
          data: {{files: ["{generated["data"]}"], is_data: true}}
        histograms:
          met: {{axes: [{{expr: MET_pt, bins: 20, range: [0, 200]}}]}}
        """
    )
    from dask.distributed import Client, LocalCluster

    # a client the user made (a facility's cluster, a notebook's LocalCluster): its workers run the tasks
    with (
        LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        run = Analysis.from_yaml(config).run(tmp_path / "out", client=client)
        assert run.wait(timeout=300) == "done", run.log("INFO")
        executed = client.run(lambda dask_worker: dask_worker.state.executed_count)
        assert sum(executed.values()) >= 1 and client.status == "running"
    progress = run.progress()
    assert progress["stage"] == "done" and progress["events"] == 11000 and progress["tasks"] == 1
    assert run.result(by="sample")["data"]["met"].sum(flow=True).value == 11000


@pytest.fixture(scope="module")
def higgs(tmp_path_factory) -> tuple[Path, Path]:
    """The Higgs example run once (configuration, output folder), written elsewhere with absolute paths;
    its model without per-bin MC-statistics parameters (a quick fit), no report after the run."""
    folder = tmp_path_factory.mktemp("higgs_notebook")
    config = folder / "config.yaml"
    text = HIGGS.read_text().replace("../../", f"{REPO}/")
    config.write_text(text.replace("report: true", "report: false", 1).replace("mc_stat: true", "mc_stat: false"))
    run = Analysis.from_yaml(config).run(folder / "out", wait=True)
    assert run.status() == "done", run.log("WARNING")
    return config, folder / "out"


def test_fit_returns_the_result_with_its_display(higgs, tmp_path):
    config, out = higgs
    result = Analysis.from_yaml(config).fit(out)
    assert result.folder == out / "fit"
    written = json.loads((out / "fit" / "fit.json").read_text())
    # every number, pull, impact, yield and distribution as in fit.json
    assert result.to_dict() == written
    assert result.mu == written["mu"] and result.impacts[0].up == written["impacts"][0]["up"]
    assert 0.5 < result.mu < 1.5 and 0 < result.mu_err < 0.5 and 5 < result.z_obs < result.z_obs_stat_only
    assert result.cls_limit_obs > result.mu > result.cls_limit_exp == result.cls_limit_exp_band[2] > 0
    parameters = {"lumi", "lepton_sf", "lepton_scale"}
    assert {p.parameter for p in result.pulls} == {i.parameter for i in result.impacts} == parameters
    assert FitResult.load(out / "fit") == result

    assert repr(result) == (
        f"mu = {result.mu:.3f} -{result.mu_err_down:.3f}/+{result.mu_err_up:.3f}, "
        f"Z = {result.z_obs:.2f} (exp {result.z_exp:.2f}), "
        f"CLs 95% limit on mu {result.cls_limit_obs:.3f} (exp {result.cls_limit_exp:.3f})"
    )
    backend = matplotlib.get_backend()
    matplotlib.use("pdf")  # as a kernel's inline backend: drawing the pulls plot must not take it away
    try:
        page = result._repr_html_()
        assert matplotlib.get_backend() == "pdf"
    finally:
        matplotlib.use(backend)
    assert f"{result.mu:.3f} -{result.mu_err_down:.3f}/+{result.mu_err_up:.3f}" in page
    image = re.search(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", page)
    assert image and base64.b64decode(image.group(1)).startswith(b"\x89PNG")
    for pull in result.pulls:
        assert f"<td>{pull.parameter}</td><td>{pull.type}</td><td>{pull.value:.4g}</td>" in page
    assert all(f"<td>{i.parameter}</td><td>{i.up:.4g}</td>" in page for i in result.impacts)

    without_model = tmp_path / "config.yaml"
    without_model.write_text(config.read_text().split("\nmodel:")[0] + "\n")
    with pytest.raises(ConfigError, match="declares no statistical model"):
        Analysis.from_yaml(without_model).fit(out, tmp_path / "fit")


def test_fit_result_load_names_the_missing_or_unreadable_file(tmp_path):
    with pytest.raises(InputError, match=re.escape(f"no fit result {tmp_path / 'fit.json'}")):
        FitResult.load(tmp_path)
    (tmp_path / "fit.json").write_text('{"mu": 1.0}')
    with pytest.raises(InputError, match=re.escape(f"unreadable fit result {tmp_path / 'fit.json'}")):
        FitResult.load(tmp_path)
