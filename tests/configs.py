"""Configurations several test modules share: the generated Z->mumu sample beside collision
data, and the blocks that go with them. Bodies are plain YAML (single braces)."""

from __future__ import annotations

import shutil
import subprocess
import textwrap
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
CLUSTER_SECONDS = 180  # the longest a run on a local Dask or Spark cluster may take before the test fails

# Muons of the generated samples, loosely selected
GOOD_MUON = 'collections:\n  GoodMuon: {from: Muon, where: "Muon_pt > 20 && abs(Muon_eta) < 2.4"}\n'

# Generator weights, one weight variation read from an array and one shape variation
MUON_SYSTEMATICS = """\
weight: genWeight
systematics:
  scale: {kind: weight, from_array: LHEScaleWeight, indices: [0, 8]}
  mu: {kind: shape, column: Muon_pt, up: "Muon_pt * 1.01", down: "Muon_pt * 0.99"}
"""


def zmumu_and_data(analysis: str, lumi: float, zmumu: str | Path, data: str | Path, xsec: float, *body: str) -> str:
    """A config of two samples, `zmumu` (simulation, cross-section `xsec`) and `data` (files or
    globs or URLs), followed by the YAML blocks `body`."""
    head = (
        f"analysis: {analysis}\nlumi: {lumi}\nsamples:\n"
        f'  zmumu: {{files: ["{zmumu}"], xsec: {xsec}}}\n'
        f'  data: {{files: ["{data}"], is_data: true}}\n'
    )
    return head + "".join(textwrap.dedent(b) for b in body)


def two_files_each(generated: dict[str, Path], folder: Path, analysis: str, histograms: str) -> Path:
    """`folder/config.yaml`: generated Z->mumu and data, two copies of each file (so two jobs or tasks
    per sample), the muon selection and systematics, and the YAML blocks `histograms`."""
    return copies_of_each(generated, folder, analysis, histograms, 2)


def copies_of_each(generated: dict[str, Path], folder: Path, analysis: str, histograms: str, copies: int) -> Path:
    """`folder/config.yaml` as `two_files_each` writes it, with `copies` copies of each file."""
    for name in ("zmumu", "data"):
        for i in range(copies):
            shutil.copy(generated[name], folder / f"{name}_{i}.root")
    path = folder / "config.yaml"
    zmumu, data = f"{folder}/zmumu_*.root", f"{folder}/data_*.root"
    path.write_text(zmumu_and_data(analysis, 10.0, zmumu, data, 2000.0, GOOD_MUON, MUON_SYSTEMATICS, histograms))
    return path


def threaded_histograms(config: Path, output: Path) -> dict[str, dict[str, Any]]:
    """{sample: {histogram: hist.Hist}} of one threaded run of `config` into `output`."""
    from framework.execute.pipeline import RunOptions, execute

    report = execute(RunOptions(config=config, output=output, threads=2))
    return {s.sample.name: s.histograms for s in report.result.samples}


def run_jobs_at_once(folder: Path, count: int, timeout: float = 300) -> None:
    """`run_job.sh K` of a job folder for K = 0..count-1, all at once (as a batch system would; the
    folder's outputs and samples YAML must bear it), each ending with exit code 0."""
    procs = [
        subprocess.Popen(["bash", str(folder / "run_job.sh"), str(k)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for k in range(count)
    ]
    failed = []
    for k, proc in enumerate(procs):
        _, err = proc.communicate(timeout=timeout)
        if proc.returncode != 0:
            failed.append(f"job {k}: exit code {proc.returncode}\n{err.decode(errors='replace')[-2000:]}")
    assert not failed, "\n".join(failed)


def bounded(run: Callable[[], T]) -> T:
    """`run()`, failing the test after CLUSTER_SECONDS instead of waiting for ever on a lost cluster."""
    pool = ThreadPoolExecutor(1)
    try:
        return pool.submit(run).result(timeout=CLUSTER_SECONDS)
    finally:
        pool.shutdown(wait=False)
