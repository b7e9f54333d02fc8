"""The plan without ROOT: the plans of the demo, of a split sample and of shape systematics, against
JSON snapshots in tests/snapshots/ (machine-dependent paths and digests replaced by placeholders).

When a change of the plan is meant, write the snapshots again and read the diff:

    PYTHONPATH=. python tests/test_plan.py
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from framework.config.load import load_config
from framework.inputs.model import SampleInputs
from framework.plan.make import make_plan
from framework.plan.model import Plan, RunSelection

REPO = Path(__file__).resolve().parent.parent
SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"
DEMO = REPO / "analyses" / "demo" / "config.yaml"

# The columns of the generator's NanoAOD-like files (framework/testing/generate.py), with the
# types RDataFrame reads them as.
RVEC = "ROOT::VecOps::RVec<{}>"
NANOAOD = {
    "run": "UInt_t",
    "luminosityBlock": "UInt_t",
    "event": "ULong64_t",
    **{f"n{c}": "UInt_t" for c in ("Muon", "Electron", "Jet")},
    **{f"Muon_{f}": RVEC.format("float") for f in ("pt", "eta", "phi", "mass", "pfRelIso04_all", "sip3d")},
    **{f"Muon_{f}": RVEC.format("int") for f in ("charge",)},
    **{f"Muon_{f}": RVEC.format("bool") for f in ("tightId", "isTracker")},
    **{f"Electron_{f}": RVEC.format("float") for f in ("pt", "eta", "phi", "mass", "pfRelIso03_all", "sip3d")},
    **{f"Electron_{f}": RVEC.format("int") for f in ("charge", "cutBased")},
    **{f"Jet_{f}": RVEC.format("float") for f in ("pt", "eta", "phi", "mass", "btagCSVV2", "btag")},
    **{f"Jet_{f}": RVEC.format("int") for f in ("jetId", "hadronFlavour")},
    **{c: "Float_t" for c in ("MET_pt", "MET_phi", "genWeight", "Pileup_nTrueInt")},
    "LHEScaleWeight": RVEC.format("float"),
    "PSWeight": RVEC.format("float"),
}
SIMULATION_ONLY = {"genWeight", "LHEScaleWeight", "PSWeight", "Pileup_nTrueInt", "Jet_hadronFlavour"}


def nanoaod(file: str, entries: int, is_data: bool = False) -> SampleInputs:
    """What the input stage finds in one generated file, without opening it."""
    types = {c: t for c, t in NANOAOD.items() if not (is_data and c in SIMULATION_ONLY)}
    sizes = {} if is_data else {"LHEScaleWeight": 9, "PSWeight": 4}
    return SampleInputs((file,), (entries,), frozenset(types), "TTree", types, sizes)


DEMO_INPUTS = {
    "zmumu": nanoaod("zmumu.root", 60000),
    "ttbar": nanoaod("ttbar.root", 40000),
    "data": nanoaod("data.root", 28320, is_data=True),
}

SPLIT = """
    analysis: split
    lumi: 10.0
    samples:
      ttbar:
        files: [ttbar.root]
        xsec: 832.0
        split: {two_b: "Sum(Jet_hadronFlavour == 5) >= 2", one_b: "Sum(Jet_hadronFlavour == 5) == 1"}
      data: {files: [data.root], is_data: true}
    weight: genWeight
    selection:
      - {name: two_jets, cut: "nJet >= 2"}
    histograms:
      njet: {axes: [{expr: nJet, integer: [0, 12]}, {expr: MET_pt, bins: 10, range: [0, 200]}]}
      ht: {axes: [{expr: "Sum(Jet_pt)", name: ht, edges: [0, 100, 250, 500, 1000]}], where: "MET_pt > 20"}
"""

SHAPES = """
    analysis: shapes
    eras: {"2016": {lumi: 10.0}, "2017": {lumi: 20.0}}
    samples:
      zmumu: {files: [zmumu.root], xsec: 2000.0, era: "2016"}
      ttbar: {files: [ttbar.root], xsec: 832.0, era: "2017"}
    defines:
      met_gev: double(MET_pt)
      met_doubled: met_gev * 2
    categories:
      muons: {expr: "nMuon > 0", boolean: true}
      charge: {expr: "nMuon > 0 ? Muon_charge[0] : 0", values: [-1, 1]}
    weight: genWeight
    systematics:
      met_scale: {kind: shape, column: met_gev, up: "met_gev * 1.5", down: "met_gev * 0.5"}
      mu_scale: {kind: shape, column: Muon_pt, up: "Muon_pt * 1.01", down: "Muon_pt * 0.99", applies_to: {samples: [ttbar]}}
      late_era: {kind: weight, up: "1.2", down: "0.8", applies_to: {eras: ["2017"]}}
    histograms:
      met2: {axes: [{expr: met_doubled, bins: 10, range: [0, 400]}, muons, charge]}
"""  # noqa: E501 (YAML: one flow mapping per line, as users write it)


def _normalised(plan: Plan, folder: Path) -> str:
    """The plan's JSON with what depends on the machine replaced: the repository's and the test
    folder's paths, the config hash and the digests naming correction symbols (of the file's path)."""
    text = plan.to_json().replace(str(REPO), "$REPO")
    for path in {str(folder.resolve()), str(folder)}:
        text = text.replace(path, "$TMP")
    text = text.replace(plan.config_hash, "$CONFIG_HASH")
    return re.sub(r"fw_correction_[0-9a-f]{12}", "fw_correction_$DIGEST", text) + "\n"


def _write(folder: Path, text: str) -> Path:
    path = folder / "config.yaml"
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def demo_plan(folder: Path) -> Plan:
    return make_plan(load_config(DEMO), DEMO_INPUTS, RunSelection(), lambda name: name == "kin")


def split_plan(folder: Path) -> Plan:
    inputs = {"ttbar": DEMO_INPUTS["ttbar"], "data": DEMO_INPUTS["data"]}
    return make_plan(load_config(_write(folder, SPLIT)), inputs, RunSelection(max_events=25000))


def shapes_plan(folder: Path) -> Plan:
    inputs = {"zmumu": DEMO_INPUTS["zmumu"], "ttbar": DEMO_INPUTS["ttbar"]}
    return make_plan(load_config(_write(folder, SHAPES)), inputs, RunSelection(part=(2, 3)))


PLANS = {"demo": demo_plan, "split": split_plan, "shapes": shapes_plan}


@pytest.mark.parametrize("name", PLANS)
def test_plan_matches_its_snapshot(name, tmp_path):
    plan = PLANS[name](tmp_path)
    snapshot = SNAPSHOTS / f"plan_{name}.json"
    assert _normalised(plan, tmp_path) == snapshot.read_text(), f"the plan changed: see {__doc__.splitlines()[-1]}"


@pytest.mark.parametrize("name", PLANS)
def test_plan_round_trips_through_json(name, tmp_path):
    plan = PLANS[name](tmp_path)
    assert Plan.from_dict(json.loads(plan.to_json())) == plan


def test_planning_imports_no_root(tmp_path):
    code = (
        "import sys\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from pathlib import Path\n"
        "from test_plan import PLANS\n"
        f"for make in PLANS.values(): make(Path({str(tmp_path)!r})).describe()\n"
        "assert 'ROOT' not in sys.modules and 'cppyy' not in sys.modules, 'ROOT imported'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, check=False)
    assert proc.returncode == 0, proc.stderr


def _write_snapshots() -> None:
    SNAPSHOTS.mkdir(exist_ok=True)
    for name, make in PLANS.items():
        with tempfile.TemporaryDirectory() as folder:
            (SNAPSHOTS / f"plan_{name}.json").write_text(_normalised(make(Path(folder)), Path(folder)))


if __name__ == "__main__":
    _write_snapshots()
