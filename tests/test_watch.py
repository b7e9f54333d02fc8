"""`run-analysis CONFIG --watch`: reruns on a save, keeps good outputs through a bad edit,
recovers when the edit is fixed, and gives the same histograms as a plain run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO

from framework.present.results import differences

CONFIG = """
schema: 1
analysis: watched
cpp: [{header}]
lumi: 10.0
samples:
  ttbar: {{files: [{ttbar}], xsec: 832.0}}
collections:
  GoodJet: {{from: Jet, where: "Jet_pt > 30", sort_by: pt}}
defines:
  HT: kin::scalar_sum(GoodJet_pt)
selection:
  - {{name: jets, cut: "{cut}"}}
systematics:
  jes: {{kind: shape, column: Jet_pt, up: "Jet_pt * 1.03", down: "Jet_pt * 0.97"}}
histograms:
  ht: {{axes: [{{expr: HT, bins: 20, range: [0, 800]}}]}}
"""


class Watcher:
    """A `run-analysis --watch` process and its output, read as it comes."""

    def __init__(self, config: Path, out: Path) -> None:
        self.log = config.with_suffix(".log")
        self.stream = open(self.log, "w")  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-m", "framework", str(config), "-o", str(out), "-j", "1", "--no-progress", "--watch"],
            cwd=REPO,
            stdout=self.stream,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def text(self) -> str:
        return self.log.read_text()

    def wait_for(self, count: int, marker: str = "[watch] ", timeout: float = 180.0) -> str:
        """Wait until `marker` ... lines ending a run have appeared `count` times; bounded."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.text()
            if text.count("[watch] done") + text.count("[watch] failed") >= count:
                return text
            if self.process.poll() is not None:
                pytest.fail(f"the watcher ended:\n{text}")
            time.sleep(0.1)
        pytest.fail(f"no run finished in {timeout} s:\n{self.text()}")

    def stop(self) -> int:
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            return self.process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            return self.process.wait(30)
        finally:
            self.stream.close()


def test_watch_reruns_on_saves_and_survives_a_bad_edit(generated, kinematics_header, tmp_path):
    config = tmp_path / "config.yaml"
    write = lambda cut: config.write_text(CONFIG.format(header=kinematics_header, ttbar=generated["ttbar"], cut=cut))
    write("nGoodJet >= 2")
    out = tmp_path / "out"
    watcher = Watcher(config, out)
    try:
        watcher.wait_for(1)
        first = (out / "ttbar.hist.zip").read_bytes()

        write("nGoodJet >= 3")  # an edited cut: new outputs
        watcher.wait_for(2)
        assert (out / "ttbar.hist.zip").read_bytes() != first
        edited = (out / "ttbar.hist.zip").stat().st_mtime_ns

        write("nGoodJett >= 3")  # a mistake: the usual message, outputs untouched
        text = watcher.wait_for(3)
        assert "config.yaml:" in text and "unknown column 'nGoodJett'" in text and "did you mean 'nGoodJet'" in text
        assert "[watch] failed (exit code 2;" in text
        assert (out / "ttbar.hist.zip").stat().st_mtime_ns == edited

        write("nGoodJet >= 2")  # fixed: back to the first histograms
        watcher.wait_for(4)
    finally:
        code = watcher.stop()
    assert code == 0 and "[watch] stopped" in watcher.text()
    plain = tmp_path / "plain"
    subprocess.run(
        [sys.executable, "-m", "framework", str(config), "-o", str(plain), "-j", "1", "--no-progress"],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    assert differences(out, plain) == []


def test_watch_restarts_its_worker_when_a_cpp_helper_changes(generated, kinematics_header, tmp_path):
    header = tmp_path / "kinematics.h"
    header.write_text(kinematics_header.read_text())
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG.format(header=header, ttbar=generated["ttbar"], cut="nGoodJet >= 2"))
    out = tmp_path / "out"
    watcher = Watcher(config, out)
    try:
        watcher.wait_for(1)
        header.write_text(header.read_text().replace("double scalar_sum(", "double scalar_sum_renamed(", 1))
        text = watcher.wait_for(2)
        assert "C++ changed: restarting the worker" in text
        assert "does not compile" in text or "no member named 'scalar_sum'" in text or "scalar_sum" in text
        header.write_text(kinematics_header.read_text())
        text = watcher.wait_for(3)
        assert text.count("[watch] done") == 2
    finally:
        watcher.stop()
