"""The demo analysis on its files as Parquet copies, served over HTTP on loopback, and on a
local Spark master: every histogram identical to the local threaded run."""

from __future__ import annotations

import numpy as np
import pytest
from http_files import serve  # tests/ is on the path

from framework.config.load import load_config
from framework.execute.executors import execute_on_spark
from framework.execute.pipeline import RunOptions, execute
from framework.inputs import parquet
from framework.output.write import read_histograms

REPO = __import__("pathlib").Path(__file__).resolve().parent.parent
DEMO = REPO / "analyses" / "demo" / "config.yaml"


def _config(tmp_path, name: str, files: dict[str, str]):
    """The demo's analysis with its samples' files replaced."""
    text = DEMO.read_text().replace(
        "include: [../../samples/demo.yaml, ../../systematics/demo.yaml]",
        f"include: [{REPO / 'systematics' / 'demo.yaml'}]",
    )
    text = text.replace("cpp: [../../cpp/kinematics.h]", f"cpp: [{REPO / 'cpp' / 'kinematics.h'}]")
    samples = load_config(DEMO).spec.samples
    lines = ['eras: {"2016": {lumi: 10.0}}', "samples:"]
    for sample, spec in samples.items():
        kind = "is_data: true" if spec.is_data else f"xsec: {spec.xsec}, process: {spec.process}"
        lines.append(f'  {sample}: {{files: ["{files[sample]}"], era: "2016", {kind}}}')
    path = tmp_path / f"{name}.yaml"
    path.write_text(text.replace("plots:", "\n".join(lines) + "\n\nplots:", 1))
    return path


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo_local")
    execute(RunOptions(config=DEMO, output=folder / "out"))  # makes the demo's files on first use
    files = {s: str(REPO / "data" / "demo" / f"{s}.root") for s in ("zmumu", "ttbar", "data")}
    execute(RunOptions(config=_config(folder, "local", files), output=folder / "local"))
    return folder / "local"


def _same(a, b):
    """Equal bins: sums of weights to 1e-12 (threads add in another order when the files' clusters differ)."""
    for sample in ("zmumu", "ttbar", "data"):
        ours, theirs = read_histograms(a / f"{sample}.hist.zip"), read_histograms(b / f"{sample}.hist.zip")
        assert set(ours) == set(theirs)
        for name in ours:
            np.testing.assert_allclose(
                ours[name].view(flow=True).value,
                theirs[name].view(flow=True).value,
                rtol=1e-12,
                atol=1e-12,
                err_msg=name,
            )


def test_demo_on_parquet_copies(local, tmp_path, monkeypatch):
    monkeypatch.setenv("RDF_ANALYSIS_CACHE", str(tmp_path / "cache"))
    files = {}
    for sample in ("zmumu", "ttbar", "data"):
        files[sample] = str(tmp_path / f"{sample}.parquet")
        parquet.export(REPO / "data" / "demo" / f"{sample}.root", "Events", tmp_path / f"{sample}.parquet")
    execute(RunOptions(config=_config(tmp_path, "parquet", files), output=tmp_path / "out"))
    _same(local, tmp_path / "out")


def test_demo_over_http(local, tmp_path):
    with serve(REPO / "data" / "demo") as url:
        files = {s: f"{url}/{s}.root" for s in ("zmumu", "ttbar", "data")}
        execute(RunOptions(config=_config(tmp_path, "http", files), output=tmp_path / "out"))
    _same(local, tmp_path / "out")


def test_demo_on_spark(local, tmp_path):
    files = {s: str(REPO / "data" / "demo" / f"{s}.root") for s in ("zmumu", "ttbar", "data")}
    execute_on_spark(
        RunOptions(config=_config(tmp_path, "spark", files), output=tmp_path / "out"), workers=2, task_retries=0
    )
    _same(local, tmp_path / "out")
