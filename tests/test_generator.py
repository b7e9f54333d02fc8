"""The event generator: deterministic, and its physics closes on the truth it was given."""

from __future__ import annotations

import hashlib

import awkward as ak
import numpy as np
import uproot

from framework.testing.generate import write_events
from framework.testing.spec import GeneratorSpec


def _content_digest(path) -> str:
    arrays = uproot.open(path)["Events"].arrays()
    digest = hashlib.sha256()
    for field in arrays.fields:
        digest.update(ak.to_numpy(ak.flatten(arrays[field], axis=None)).tobytes())
    return digest.hexdigest()


def test_same_seed_same_events_other_seed_other_events(tmp_path):
    spec = GeneratorSpec(process="zmumu", events=2000, seed=5)
    write_events(spec, tmp_path / "a.root")
    write_events(spec, tmp_path / "b.root")
    write_events(GeneratorSpec(process="zmumu", events=2000, seed=6), tmp_path / "c.root")
    assert _content_digest(tmp_path / "a.root") == _content_digest(tmp_path / "b.root")
    assert _content_digest(tmp_path / "a.root") != _content_digest(tmp_path / "c.root")


def test_z_peak_and_top_mass_close(generated):
    z = uproot.open(generated["zmumu"])["Events"].arrays(["Muon_pt", "Muon_eta", "Muon_phi", "Muon_charge"])
    two = z[ak.num(z.Muon_pt) == 2]
    pt, eta, phi = (ak.to_numpy(two[f]).astype(np.float64) for f in ("Muon_pt", "Muon_eta", "Muon_phi"))
    m2 = 2 * pt[:, 0] * pt[:, 1] * (np.cosh(eta[:, 0] - eta[:, 1]) - np.cos(phi[:, 0] - phi[:, 1]))
    mass = np.sqrt(m2)
    assert abs(np.median(mass[(mass > 70) & (mass < 110)]) - 91.19) < 0.5
    assert np.all(ak.to_numpy(two.Muon_charge).sum(axis=1) == 0)

    t = uproot.open(generated["ttbar"])["Events"].arrays(["nJet", "Jet_hadronFlavour", "LHEScaleWeight", "genWeight"])
    assert ak.mean(t.nJet) > 4
    assert ak.all(ak.num(t.LHEScaleWeight) == 9) and ak.all(t.LHEScaleWeight[:, 4] == 1)
    assert 0.9 < ak.mean(abs(t.genWeight)) < 1.1


def test_pseudo_data_has_no_simulation_columns(generated):
    keys = set(uproot.open(generated["data"])["Events"].keys())
    assert "genWeight" not in keys and "LHEScaleWeight" not in keys and "Muon_pt" in keys
