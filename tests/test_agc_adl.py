"""The AGC ttbar port on the real CMS NanoAOD file and the ADL queries on generated events, each
checked bin for bin against an independent uproot + awkward + numpy computation."""

from __future__ import annotations

import importlib.util
import json
import re
import zipfile
from pathlib import Path

import awkward as ak
import hist
import numpy as np
import pytest
import uhi.io.zip
import uproot
from scipy import stats

from framework.execute.pipeline import RunOptions, execute
from framework.testing.generate import write_events
from framework.testing.spec import GeneratorSpec

REPO = Path(__file__).resolve().parent.parent
FILE = "nanoAOD_2015_CMS_Open_Data_ttbar.root"
LUMI, XSEC = 3378.0, 729.84


def _read(out: Path, sample: str, name: str) -> hist.Hist:
    with zipfile.ZipFile(out / f"{sample}.hist.zip") as z:
        return hist.Hist(uhi.io.zip.read(z, name))


def _mass_pt(parts: list[tuple[np.ndarray, ...]]) -> tuple[np.ndarray, np.ndarray]:
    """Mass and pT of summed (pt, eta, phi, m), Cartesian sums in float64 in the order given."""
    px = py = pz = e = 0.0
    for pt, eta, phi, m in parts:
        x, y, z = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
        px, py, pz, e = px + x, py + y, pz + z, e + np.sqrt(x * x + y * y + z * z + m * m)
    return np.sqrt(np.maximum(e * e - px * px - py * py - pz * pz, 0.0)), np.sqrt(px * px + py * py)


def _agc_run(folder: Path, events: Path, min_jets: int) -> Path:
    """The AGC analysis (analyses/agc_ttbar/analysis.yaml) on one ttbar file, with `nSelJet >= min_jets`."""
    agc = REPO / "analyses" / "agc_ttbar"
    text = (agc / "analysis.yaml").read_text()
    text = text.replace("[../../cpp/kinematics.h, agc.h]", f"[{REPO / 'cpp' / 'kinematics.h'}, {agc / 'agc.h'}]")
    text = text.replace("nSelJet >= 4", f"nSelJet >= {min_jets}")
    if min_jets < 4:  # the b-tag variations read the first four jets: guard them (an index past the end is an error)
        text = re.sub(r"SelJet_pt\[(\d)\]", r"(nSelJet > \1 ? SelJet_pt[\1] : 0.f)", text)
    config = folder / "config.yaml"
    config.write_text(
        f"schema: 1\nanalysis: agc_check\nlumi: {LUMI}\n"
        f"samples:\n  ttbar: {{files: [{events}], xsec: {XSEC}, process: ttbar}}\n" + text
    )
    execute(RunOptions(config=config, output=folder / "out"))
    return folder / "out"


@pytest.fixture(scope="module")
def generated_ttbar(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("agc_events") / "ttbar.root"
    write_events(GeneratorSpec(process="ttbar", events=20000, seed=41), path)
    return path


def _agc_expected(path: Path, jet_factor: str | None, min_jets: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(HT in 4j1b, m_bjj in 4j2b) values and btag_var_0 up factors, for one Jet_pt universe."""
    e = uproot.open(path)["Events"].arrays()
    pt = e.Jet_pt
    if jet_factor == "scale":
        pt = ak.values_astype(ak.values_astype(pt, np.float64) * 1.03, np.float32)
    elif jet_factor == "res":
        p64 = ak.values_astype(pt, np.float64)
        u = 0.001 * ak.values_astype(ak.values_astype(p64 * 1000.0, np.int64) % 1000, np.float64) + 0.0005
        q = ak.unflatten(stats.norm.ppf(ak.flatten(u), scale=0.05), ak.num(u))
        pt = ak.values_astype(p64 * (1.0 + q), np.float32)
    el = (e.Electron_pt > 30) & (abs(e.Electron_eta) < 2.1) & (e.Electron_sip3d < 4) & (e.Electron_cutBased == 4)
    mu = (
        (e.Muon_pt > 30)
        & (abs(e.Muon_eta) < 2.1)
        & (e.Muon_sip3d < 4)
        & e.Muon_tightId
        & (e.Muon_pfRelIso04_all < 0.15)
    )
    good = (pt > 30) & (abs(e.Jet_eta) < 2.4) & (e.Jet_jetId == 6)
    jets = ak.zip(
        {
            "pt": pt[good],
            "eta": e.Jet_eta[good],
            "phi": e.Jet_phi[good],
            "mass": e.Jet_mass[good],
            "btag": e.Jet_btagCSVV2[good],
        }
    )
    keep = ((ak.sum(el, axis=1) + ak.sum(mu, axis=1)) == 1) & (ak.num(jets) >= min_jets)
    jets = jets[keep]
    nb = ak.sum(jets.btag > 0.5, axis=1)
    jets64 = ak.zip({k: ak.values_astype(jets[k], np.float64) for k in ("pt", "eta", "phi", "mass")})
    ht = ak.to_numpy(ak.sum(jets64.pt, axis=1))
    btag_up = 1 + 0.075 * ak.to_numpy(ak.fill_none(ak.firsts(jets64.pt), 0.0)) / 50
    one = ak.to_numpy(nb == 1)
    trijets = ak.combinations(ak.with_field(jets64, jets.btag > 0.5, "tagged"), 3)
    a, b, c = ak.unzip(trijets)
    mass, tpt = _mass_pt([(j.pt, j.eta, j.phi, j.mass) for j in (a, b, c)])
    tpt = ak.where(a.tagged | b.tagged | c.tagged, tpt, -1.0)
    best = ak.argmax(tpt, axis=1, keepdims=True)  # first maximum, as the helper's strict '>'
    m_bjj = ak.to_numpy(ak.fill_none(ak.firsts(mass[best]), -1.0))
    two = ak.to_numpy(nb >= 2)
    return {"ht_4j1b": (ht[one], btag_up[one]), "m_bjj_4j2b": (m_bjj[two], btag_up[two])}


@pytest.mark.parametrize(
    ("source", "min_jets"),
    # the real file's 200 events leave none with four jets: it is also run with the jet count relaxed
    [("real", 4), ("real", 1), ("generated", 4)],
)
def test_agc_equals_uproot_awkward(source, min_jets, request, tmp_path):
    path = (
        request.getfixturevalue("shared_data") / FILE
        if source == "real"
        else request.getfixturevalue("generated_ttbar")
    )
    out = _agc_run(tmp_path, path, min_jets)
    norm = LUMI * XSEC / uproot.open(path)["Events"].num_entries  # the AGC weight: no generator weights
    filled = 0
    for universe, entry in ((None, "nominal"), ("scale", "pt_scaleUp"), ("res", "pt_resUp")):
        for name, (values, btag_up) in _agc_expected(path, universe, min_jets).items():
            h = _read(out, "ttbar", name)
            ref = hist.Hist.new.Reg(25, 50, 550).Weight().fill(values, weight=np.full(len(values), norm))
            np.testing.assert_allclose(h[:, entry].view(flow=True).value, ref.view(flow=True).value, rtol=1e-12)
            if universe is None:
                ref_up = hist.Hist.new.Reg(25, 50, 550).Weight().fill(values, weight=norm * btag_up)
                got = h[:, "btag_var_0Up"].view(flow=True).value
                np.testing.assert_allclose(got, ref_up.view(flow=True).value, rtol=1e-12)
                filled += len(values)
    if (source, min_jets) != ("real", 4):
        assert filled > 0, "the check must see selected events"
    if source == "generated":
        assert len(_agc_expected(path, None, min_jets)["m_bjj_4j2b"][0]) > 100


def test_agc_cutflow_on_real_nanoaod(shared_data, tmp_path):
    out = _agc_run(tmp_path, shared_data / FILE, 4)
    with zipfile.ZipFile(out / "ttbar.hist.zip") as z:
        rows = json.loads(z.read("cutflow.json"))
    e = uproot.open(shared_data / FILE)["Events"].arrays()
    el = (e.Electron_pt > 30) & (abs(e.Electron_eta) < 2.1) & (e.Electron_sip3d < 4) & (e.Electron_cutBased == 4)
    mu = (
        (e.Muon_pt > 30)
        & (abs(e.Muon_eta) < 2.1)
        & (e.Muon_sip3d < 4)
        & e.Muon_tightId
        & (e.Muon_pfRelIso04_all < 0.15)
    )
    one = (ak.sum(el, axis=1) + ak.sum(mu, axis=1)) == 1
    jets = ak.sum((e.Jet_pt > 30) & (abs(e.Jet_eta) < 2.4) & (e.Jet_jetId == 6), axis=1)
    assert [r["events"] for r in rows] == [200, int(ak.sum(one)), int(ak.sum(one & (jets >= 4)))]


def test_agc_demo_config_runs_on_generated_samples(agc_run):
    _, report = agc_run
    by_name = {s.sample.name: s for s in report.result.samples}
    assert set(by_name) == {"ttbar", "single_top_s_chan", "single_top_t_chan", "single_top_tW", "wjets"}
    wjets = by_name["wjets"].histograms["ht_4j1b"]
    nominal = wjets[:, "nominal"].values()
    np.testing.assert_allclose(wjets[:, "wjets_scaleUp"].values(), nominal * 1.025, rtol=1e-12)
    ttbar = by_name["ttbar"].histograms["ht_4j1b"]
    np.testing.assert_array_equal(ttbar[:, "wjets_scaleUp"].values(), ttbar[:, "nominal"].values())
    assert by_name["ttbar"].norm == pytest.approx(LUMI * XSEC / 40000)


@pytest.fixture(scope="module")
def adl_benchmark():
    spec = importlib.util.spec_from_file_location("adl_benchmark", REPO / "benchmarks" / "adl.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_adl_queries_equal_the_columnar_implementation(adl_benchmark, tmp_path):
    """All eight queries in one run of the framework equal uproot + awkward + hist (benchmarks/adl.py's C)."""
    events = tmp_path / "adl.root"
    write_events(GeneratorSpec(process="adl", events=20000, seed=5), events)
    config = adl_benchmark.framework_config(tmp_path, adl_benchmark.QUERIES, events)
    execute(RunOptions(config=config, output=tmp_path / "out"))
    selected = {}
    for query in adl_benchmark.QUERIES:
        expected = adl_benchmark.columnar_chunk(query, str(events), 0, 20000)
        for name, counts in expected.items():
            got = _read(tmp_path / "out", "adl", name)[{"systematic": "nominal"}].view(flow=True).value
            np.testing.assert_array_equal(got, counts, err_msg=name)
            selected[name] = counts.sum()
    # every query selects a real fraction of the events
    assert selected["q1_met"] == 20000 and 0 < selected["q5_met"] < 20000 and 0 < selected["q8_mt"] < 20000
