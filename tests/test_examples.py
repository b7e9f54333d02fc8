"""The shipped example on real CMS open data runs, and its cutflow matches uproot + awkward."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot

from framework.errors import ConfigError
from framework.execute.pipeline import RunOptions, execute

REPO = Path(__file__).resolve().parent.parent


def test_opendata_ttbar_example(shared_data, tmp_path):
    """The simulation, and the same events read as collision data through the era's lumi mask."""
    report = execute(RunOptions(config=REPO / "analyses" / "cms_opendata_ttbar" / "config.yaml", output=tmp_path))
    samples = {s.sample.name: s for s in report.result.samples}
    e = uproot.open(shared_data / "nanoAOD_2015_CMS_Open_Data_ttbar.root")["Events"].arrays(
        filter_name=["Muon_*", "Electron_*", "Jet_pt", "Jet_eta", "Jet_jetId", "run", "luminosityBlock"]
    )
    mu = (e.Muon_pt > 30) & (abs(e.Muon_eta) < 2.1) & e.Muon_tightId & (e.Muon_pfRelIso04_all < 0.15)
    el = (e.Electron_pt > 30) & (abs(e.Electron_eta) < 2.1) & (e.Electron_cutBased == 4) & (e.Electron_sip3d < 4)
    jets = ak.sum((e.Jet_pt > 30) & (abs(e.Jet_eta) < 2.4) & (e.Jet_jetId >= 2), axis=1)
    one_lepton = (ak.sum(mu, axis=1) + ak.sum(el, axis=1)) == 1
    rows = [r["events"] for r in samples["ttbar_2015"].cutflow]
    assert rows == [200, int(ak.sum(one_lepton)), int(ak.sum(one_lepton & (jets >= 2)))]
    assert (tmp_path / "ttbar_2015.hist.zip").is_file()

    # data: the events of certified (run, luminosity section) pairs, each range compared with each event
    mask = REPO / "samples" / "cms_opendata_2015_lumi_mask.json"
    certified = np.zeros(len(e), dtype=bool)
    for run, ranges in json.loads(mask.read_text()).items():
        for first, last in ranges:
            lumi = e.luminosityBlock.to_numpy()
            certified |= (e.run.to_numpy() == int(run)) & (lumi >= first) & (lumi <= last)
    selected = certified & ak.to_numpy(one_lepton & (jets >= 2))
    rows = [(r.cut, r.events) for r in samples["data_2015"].cutflow]
    assert rows == [
        ("all", 200),
        ("lumi_mask", certified.sum()),
        ("one_lepton", (certified & ak.to_numpy(one_lepton)).sum()),
        ("two_jets", selected.sum()),
    ]
    assert rows[1:] == [("lumi_mask", 123), ("one_lepton", 7), ("two_jets", 3)]  # visibly fewer than simulated
    njet = samples["data_2015"].histograms["njet"][{"systematic": "nominal", "flavour": sum}]
    expected = np.bincount(np.clip(ak.to_numpy(jets)[selected], 1, 8) - 1, minlength=8)  # under, 2..7, over
    assert njet.values(flow=True).tolist() == expected.tolist()
    provenance = json.loads(zipfile.ZipFile(tmp_path / "data_2015.hist.zip").read("provenance.json"))
    assert provenance["lumi_mask"] == {"file": str(mask), "sha256": hashlib.sha256(mask.read_bytes()).hexdigest()}


def test_parton_shower_weights_past_the_array_are_refused_on_real_data(shared_data, tmp_path):
    """The 2015 open-data file has one PSWeight: PSWeight[1..3] would read past the array."""
    config = tmp_path / "config.yaml"
    example = REPO / "analyses" / "cms_opendata_ttbar" / "config.yaml"
    config.write_text(
        example.read_text()
        .replace(
            "include: [../../samples/cms_opendata_2015.yaml, ../../systematics/nanoaod.yaml]",
            f"include: [{REPO / 'samples' / 'cms_opendata_2015.yaml'}, {REPO / 'systematics' / 'parton_shower.yaml'}]",
        )
        .replace("[../../cpp/kinematics.h]", f"[{REPO / 'cpp' / 'kinematics.h'}]")
    )
    assert (
        uproot.open(shared_data / "nanoAOD_2015_CMS_Open_Data_ttbar.root")["Events"]["nPSWeight"].array().tolist()[0]
        == 1
    )
    with pytest.raises(ConfigError) as info:
        execute(RunOptions(config=config, output=tmp_path / "out"))
    place = info.value.location
    assert (Path(place.file).name, place.line, place.key) == ("parton_shower.yaml", 5, "systematics.isr.down")
    assert (
        str(info.value)
        .splitlines()[0]
        .endswith("index 2 is out of range: PSWeight has 1 entries in the first event (sample ttbar_2015)")
    )
    assert not (tmp_path / "out").exists()
