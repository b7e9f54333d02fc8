"""The Dask and Spark executors: a local cluster of 2 worker processes gives the threaded run's histograms."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from configs import GOOD_MUON, MUON_SYSTEMATICS, zmumu_and_data  # tests/ is on the path

from framework.execute.executors import execute_on_dask, execute_on_spark
from framework.execute.pipeline import RunOptions, execute
from framework.output.write import read_histograms, read_member

HISTOGRAMS = """
histograms:
  pt: {axes: [{expr: GoodMuon_pt, bins: 20, range: [0, 200]}]}
"""


@pytest.mark.parametrize("engine", ["dask", "spark"])
def test_local_cluster_equals_threads(engine, generated, tmp_path):
    for i in range(2):
        shutil.copy(generated["zmumu"], tmp_path / f"zmumu_{i}.root")
    shutil.copy(generated["data"], tmp_path / "data.root")
    config = tmp_path / "config.yaml"
    config.write_text(
        zmumu_and_data(
            "on_dask",
            10.0,
            f"{tmp_path}/zmumu_*.root",
            f"{tmp_path}/data.root",
            2000.0,
            GOOD_MUON,
            MUON_SYSTEMATICS,
            HISTOGRAMS,
        )
    )
    threads = execute(RunOptions(config=config, output=tmp_path / "threads"))
    run = execute_on_dask if engine == "dask" else execute_on_spark
    done = run(RunOptions(config=config, output=tmp_path / engine), workers=2, task_retries=0)
    assert sorted(p.name for p in done["outputs"]) == ["data.hist.zip", "zmumu.hist.zip"]
    assert done["events"] == 2 * 30000 + 11000
    for sample in threads.result.samples:
        path = tmp_path / engine / f"{sample.sample.name}.hist.zip"
        theirs = read_histograms(path)["pt"]
        np.testing.assert_allclose(
            theirs.view(flow=True).value, sample.histograms["pt"].view(flow=True).value, rtol=1e-12
        )
        np.testing.assert_allclose(
            theirs.view(flow=True).variance, sample.histograms["pt"].view(flow=True).variance, rtol=1e-12
        )
        assert read_member(path, "provenance.json")["normalisation"] == pytest.approx(sample.norm, rel=1e-12)
    assert not list((tmp_path / engine).glob(".parts-*"))
