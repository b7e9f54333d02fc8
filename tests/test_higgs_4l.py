"""The four-lepton Higgs example on flat open-data-style ntuples: m4l per sample against an
independent uproot + awkward computation, normalisation read from the files' branches, the
report with its plots, and the local significance recomputed here."""

from __future__ import annotations

import csv
import zipfile
from pathlib import Path

import awkward as ak
import hist
import numpy as np
import pytest
import uhi.io.zip
import uproot
from scipy import optimize

from framework.app.cli import main

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "analyses" / "higgs_4l" / "config.yaml"
LUMI = 10000.0


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("h4l") / "out"
    assert main([str(CONFIG), "-o", str(out)]) == 0
    return out


def _read(out: Path, sample: str, name: str) -> tuple[hist.Hist, dict]:
    import json

    with zipfile.ZipFile(out / f"{sample}.hist.zip") as z:
        return hist.Hist(uhi.io.zip.read(z, name)), json.loads(z.read("provenance.json"))


def _m4l(path: Path, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """m4l (GeV), event weights and number of electrons of selected events, computed with awkward."""
    e = uproot.open(path)["mini"].arrays()
    pt, energy = e.lep_pt * scale, e.lep_E * scale
    iso = (pt > 5000) & (e.lep_ptcone30 / pt < 0.3) & (e.lep_etcone20 / pt < 0.3)
    lep = ak.zip(
        {
            "pt": ak.values_astype(pt[iso], np.float64),
            "eta": ak.values_astype(e.lep_eta[iso], np.float64),
            "phi": ak.values_astype(e.lep_phi[iso], np.float64),
            "E": ak.values_astype(energy[iso], np.float64),
            "q": e.lep_charge[iso],
            "type": e.lep_type[iso],
        }
    )
    four = ak.num(lep) == 4
    lep, events = lep[four], e[four]
    masses, weights, electrons = [], [], []
    for ev_lep, ev in zip(lep.tolist(), events):
        best, distance = None, np.inf
        for q in ((0, 1, 2, 3), (0, 2, 1, 3), (0, 3, 1, 2)):
            pairs = [(q[0], q[1]), (q[2], q[3])]
            if not all(ev_lep[a]["type"] == ev_lep[b]["type"] and ev_lep[a]["q"] != ev_lep[b]["q"] for a, b in pairs):
                continue
            for a, b in pairs:
                d = abs(_mass([ev_lep[a], ev_lep[b]]) - 91187.6)
                if d < distance:
                    best, distance = q, d
        if best is None:
            continue
        masses.append(_mass([ev_lep[i] for i in best]) / 1000.0)
        weights.append(
            ev.mcWeight * ev.scaleFactor_PILEUP * ev.scaleFactor_ELE * ev.scaleFactor_MUON * ev.scaleFactor_LepTRIGGER
        )
        electrons.append(sum(lp["type"] == 11 for lp in ev_lep))
    return np.array(masses), np.array(weights, dtype=float), np.array(electrons)


def _mass(leptons: list[dict]) -> float:
    px = py = pz = e = 0.0
    for lp in leptons:
        px += lp["pt"] * np.cos(lp["phi"])
        py += lp["pt"] * np.sin(lp["phi"])
        pz += lp["pt"] * np.sinh(lp["eta"])
        e += lp["E"]
    return float(np.sqrt(max(e * e - px * px - py * py - pz * pz, 0.0)))


def test_m4l_equals_an_awkward_computation(run):
    path = REPO / "data" / "higgs_4l" / "h4l.root"
    h, provenance = _read(run, "higgs", "m4l")
    branches = uproot.open(path)["mini"].arrays(["XSection", "SumWeights"], entry_stop=1)
    assert provenance["xsec_pb"] == pytest.approx(float(branches.XSection[0]))  # read from the branch
    assert provenance["declared_sum_weights"] == pytest.approx(float(branches.SumWeights[0]))
    norm = LUMI * float(branches.XSection[0]) / float(branches.SumWeights[0])
    for scale, entry in ((1.0, "nominal"), (1.005, "lepton_scaleUp")):
        masses, weights, electrons = _m4l(path, scale)
        for channel, n in (("4e", 4), ("4mu", 0), ("2e2mu", 2)):
            ref = (
                hist.Hist.new.Reg(30, 80, 170)
                .Weight()
                .fill(masses[electrons == n], weight=norm * weights[electrons == n])
            )
            got = h[:, channel, entry].view(flow=True).value
            np.testing.assert_allclose(got, ref.view(flow=True).value, rtol=1e-5, atol=1e-9)
    assert h[:, sum, "nominal"].sum().value > 20  # a visible signal


def test_report_and_significance(run):
    report = run / "report"
    assert (report / "index.html").is_file() and (report / "plots" / "m4l.png").is_file()
    with (report / "tables" / "significance.csv").open() as table:
        (got,) = csv.DictReader(table)
    window = slice(hist.loc(115), hist.loc(135))
    s = _read(run, "higgs", "m4l")[0][window, sum, "nominal"].values()
    b = sum(_read(run, name, "m4l")[0][window, sum, "nominal"].values() for name in ("zz", "zjets"))
    n = _read(run, "data", "m4l")[0][window, sum, "nominal"].values()
    expected = np.sqrt(2 * np.sum((s + b) * np.log(1 + s / b) - s))

    def nll(mu: float) -> float:
        return -float(np.sum(n * np.log(mu * s + b) - (mu * s + b)))

    mu_hat = optimize.minimize_scalar(nll, bounds=(0, 100), method="bounded", options={"xatol": 1e-8}).x
    observed = np.sqrt(2 * (nll(0.0) - nll(mu_hat)))
    # statistics only: the background known, the closed forms above
    assert float(got["expected Z, statistics only"]) == pytest.approx(expected, rel=1e-4)
    assert float(got["observed Z, statistics only"]) == pytest.approx(observed, rel=1e-4)
    # through the model: its systematics (shape), the global lumi lnN and MC statistics lower both
    assert got["nuisance parameters"] == "lepton_scale lepton_sf lumi"
    assert 5 < float(got["observed Z"]) < observed and float(got["expected Z"]) < expected
    assert float(got["signal strength"]) == pytest.approx(mu_hat, abs=0.05)
