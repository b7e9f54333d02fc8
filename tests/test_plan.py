"""The plan without ROOT: the plans of the demo, of a split sample, of shape systematics, of a skim and
of a run on a skim, against JSON snapshots in tests/snapshots/ (machine-dependent paths and digests
replaced by placeholders).

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
from framework.plan.skim import make_skim_plan
from framework.plan.skimmed import definition_digest, systematic_digest
from framework.plan.systematics import declared_systematics

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


SKIM = (
    SHAPES
    + """
    skim:
      selection: ["nMuon >= 1"]
      keep: [Muon_*, met_gev, genWeight]
"""
)

# A skim of ttbar holding mu_scale (RDataFrame's names of the varied columns, a mask) and the define
# met_gev; $MU_SCALE and $MET_GEV are the digests of their definitions.
SKIMMED = """
    analysis: skimmed
    lumi: 10.0
    samples:
      ttbar:
        files: [ttbar.root]
        xsec: 832.0
        sum_weights: 1234.5
        skim:
          config: config.yaml
          config_hash: $CONFIG_HASH
          selection: [nMuon >= 1]
          events: 40000
          format: ttree
          variations: {mu_scale: {definition: $MU_SCALE, up: 2, down: 1}}
          columns: {met_gev: $MET_GEV}
    defines:
      met_gev: double(MET_pt)
    weight: genWeight
    systematics:
      mu_scale: {kind: shape, column: Muon_pt, up: "Muon_pt * 1.01", down: "Muon_pt * 0.99"}
    histograms:
      met: {axes: [{expr: met_gev, bins: 10, range: [0, 200]}]}
      mu_pt: {axes: [{expr: Muon_pt, bins: 10, range: [0, 200]}]}
"""
SKIMMED_COLUMNS = {
    **{c: t for c, t in NANOAOD.items() if c.startswith("Muon_") or c in ("nMuon", "genWeight")},
    **{
        f"{c}__mu_scale_{d}": t
        for c, t in (("Muon_pt", RVEC.format("float")), ("met_gev", "double"))
        for d in ("up", "down")
    },
    "met_gev": "double",
    "R_rdf_mask_Events_0": "ULong64_t",
}


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


def skim_plan(folder: Path) -> Plan:
    inputs = {"zmumu": DEMO_INPUTS["zmumu"], "ttbar": DEMO_INPUTS["ttbar"]}
    return make_skim_plan(load_config(_write(folder, SKIM)), inputs, RunSelection())


def skimmed_plan(folder: Path) -> Plan:
    config = load_config(_write(folder, SKIMMED.replace("$MU_SCALE", "x").replace("$MET_GEV", "x")))
    digests = {
        "$MU_SCALE": systematic_digest(config, declared_systematics(config)["mu_scale"]),
        "$MET_GEV": definition_digest(config, "met_gev"),
    }
    text = SKIMMED
    for placeholder, digest in digests.items():
        text = text.replace(placeholder, str(digest))
    inputs = SampleInputs(("ttbar.root",), (9000,), frozenset(SKIMMED_COLUMNS), "TTree", SKIMMED_COLUMNS)
    return make_plan(load_config(_write(folder, text)), {"ttbar": inputs}, RunSelection())


PLANS = {"demo": demo_plan, "split": split_plan, "shapes": shapes_plan, "skim": skim_plan, "skimmed": skimmed_plan}


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
