"""The shipped example on real CMS open data runs, and its cutflow matches uproot + awkward."""

from __future__ import annotations

from pathlib import Path

import awkward as ak
import pytest
import uproot

from framework.errors import ConfigError
from framework.execute.pipeline import RunOptions, execute

REPO = Path(__file__).resolve().parent.parent


def test_opendata_ttbar_example(shared_data, tmp_path):
    report = execute(RunOptions(config=REPO / "analyses" / "cms_opendata_ttbar" / "config.yaml", output=tmp_path))
    rows = report.result.samples[0].cutflow
    e = uproot.open(shared_data / "nanoAOD_2015_CMS_Open_Data_ttbar.root")["Events"].arrays(
        filter_name=["Muon_*", "Electron_*", "Jet_pt", "Jet_eta", "Jet_jetId"]
    )
    mu = (e.Muon_pt > 30) & (abs(e.Muon_eta) < 2.1) & e.Muon_tightId & (e.Muon_pfRelIso04_all < 0.15)
    el = (e.Electron_pt > 30) & (abs(e.Electron_eta) < 2.1) & (e.Electron_cutBased == 4) & (e.Electron_sip3d < 4)
    jets = ak.sum((e.Jet_pt > 30) & (abs(e.Jet_eta) < 2.4) & (e.Jet_jetId >= 2), axis=1)
    one_lepton = (ak.sum(mu, axis=1) + ak.sum(el, axis=1)) == 1
    assert [r["events"] for r in rows] == [200, int(ak.sum(one_lepton)), int(ak.sum(one_lepton & (jets >= 2)))]
    assert (tmp_path / "ttbar_2015.hist.zip").is_file()


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
