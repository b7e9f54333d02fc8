"""Cosmic muons in drift tubes: decoding against hand-made words, the reconstructed angles
against the generator's truth, and the same histograms with threads and with Dask."""

from __future__ import annotations

import zipfile
from pathlib import Path

import hist
import numpy as np
import pytest
import uhi.io.zip
import uproot

from framework.app.cli import main
from framework.engine.rootenv import declare_file, root

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "analyses" / "cosmic_dt" / "config.yaml"
HEADER = REPO / "analyses" / "cosmic_dt" / "dt.h"
DATA = REPO / "data" / "cosmic_dt"


def _word(tdc: int, bx: int, orbit: int, channel: int, fpga: int, head: int) -> int:
    return tdc | bx << 5 | orbit << 17 | channel << 49 | fpga << 58 | head << 61


@pytest.fixture(scope="module")
def threads_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dt") / "out"
    assert main([str(CONFIG), "-o", str(out)]) == 0
    return out


def _hist(out: Path, name: str) -> hist.Hist:
    with zipfile.ZipFile(out / "cosmics.hist.zip") as z:
        return hist.Hist(uhi.io.zip.read(z, name))[{"systematic": "nominal"}]


def test_decoding_of_hand_made_words():
    declare_file(HEADER)
    dt = root().dt
    for fields in (
        (29, 4095, 2**32 - 1, 127, 1, 2),
        (0, 0, 0, 0, 0, 2),
        (17, 1234, 987654, 128, 1, 2),
        (3, 5, 7, 64, 0, 1),
    ):
        w = dt.decode(_word(*fields))
        assert (w.tdc, w.bx, w.orbit, w.channel, w.fpga, w.head) == fields
    assert dt.time_of(dt.decode(_word(15, 100, 1, 0, 0, 2))) == pytest.approx(25 * (100 + 15 / 30))
    assert [dt.chamber_of(f, c) for f, c in ((0, 0), (0, 64), (1, 63), (1, 127), (1, 128))] == [0, 1, 2, 3, -1]


def test_angles_against_the_truth(threads_run):
    """Local fits of chamber 0 per orbit against the true track slope: the residual's width is
    what 3 ns of time smearing (0.16 mm) gives over four layers 13 mm apart (about 5.5 mrad)."""
    declare_file(HEADER)
    r = root()
    frame = r.RDataFrame("orbits", str(DATA / "orbits.root"))
    frame = frame.Filter("has_t0").Define(
        "drift", "dt::drift_distance(hit_time, hit_chamber, ROOT::RVecD{-5., -10., 3., 0.})"
    )
    frame = frame.Define("fit", "dt::local_fit(hit_chamber, hit_layer, hit_cell, drift, 0, 0.17)")
    frame = frame.Filter("fit.ok && fit.x.size() == 4 && dt::hits_in(hit_chamber, 0) == 4").Define(
        "angle", "fit.Angle()"
    )
    found = frame.AsNumpy(["orbit", "angle"])
    truth = uproot.open(DATA / "raw.root")["truth"].arrays(["orbit", "slope_x"], library="np")
    true_angle = dict(zip(truth["orbit"].tolist(), np.arctan(truth["slope_x"]).tolist()))
    residual = 1000 * (found["angle"] - np.array([true_angle[int(o)] for o in found["orbit"]]))
    core = residual[np.abs(residual) < 50]  # left/right mistakes and noise hits make a small tail
    assert len(core) > 0.95 * len(residual) > 5000
    expected = 1000 * 3.0 * 0.0538 / np.sqrt(13.0**2 * 5)
    assert abs(core.mean()) < 0.5 and 0.8 * expected < core.std() < 1.3 * expected
    # the framework's global-minus-local histograms have that width too (plus the global fit's)
    h = _hist(threads_run, "dtheta0")
    centres, counts = h.axes[0].centers, h.values()
    width = np.sqrt(np.sum(counts * centres**2) / counts.sum())
    assert 0.8 * expected < width < 1.4 * expected


def test_dask_gives_the_same_histograms(threads_run, tmp_path):
    out = tmp_path / "dask"
    assert main([str(CONFIG), "-o", str(out), "--executor", "dask", "--workers", "2"]) == 0
    for name in ("dtheta0", "dtheta2", "dtheta3", "theta", "global_chi2", "local_chi2"):
        np.testing.assert_array_equal(_hist(out, name).values(flow=True), _hist(threads_run, name).values(flow=True))
    assert (out / "report" / "index.html").is_file()
