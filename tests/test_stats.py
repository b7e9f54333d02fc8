"""The statistical model (`model:`): the pyhf workspace and the combine datacard of the Higgs to four
leptons example against the histograms bin for bin, a known-answer significance, systematics
lowering the significance, `run-analysis fit`, and every bad model refused with its YAML line."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
import warnings
import zipfile
from dataclasses import replace
from pathlib import Path

import hist
import numpy as np
import pyhf
import pytest
import uhi.io.zip
import uproot
from scipy import optimize

from framework.app.cli import main
from framework.present.commands import prepare_presentation
from framework.stats.declare import make_model_plan
from framework.stats.fit import significance
from framework.stats.limits import Limits
from framework.stats.minimise import SMOOTH, pyhf_session
from framework.stats.model import Channel, NormSys, Sample, StatModel, build_model
from framework.stats.workspace import workspace

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "analyses" / "higgs_4l" / "config.yaml"
CHANNELS = ("4e", "4mu", "2e2mu")
FITTED = slice(10, 30)  # range [110, 170] of 30 bins on [80, 170]
PROCESSES = {"H125": ["higgs"], "ZZ": ["zz"], "Zjets": ["zjets"]}
MODEL = """\
model:
  channels:
    m4l: {histogram: m4l, slices: {channel: each}, range: [110, 170]}
  signal: [H125]
  normalisations:
    lumi: {value: 1.025}
  systematics: {lepton_sf: shape, lepton_scale: shape}
  mc_stat: true
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("h4l_stats") / "out"
    assert main([str(CONFIG), "-o", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def exports(run, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("h4l_exports") / "exports"
    assert main(["export", str(CONFIG), "-i", str(run), "-o", str(folder)]) == 0
    return folder


def _variant(folder: Path, model: str) -> Path:
    """The Higgs configuration with another model block, written elsewhere (paths made absolute)."""
    text = CONFIG.read_text()
    text = text[: text.index("\nmodel:")] + "\n" + model
    path = folder / "config.yaml"
    path.write_text(text.replace("../../", f"{REPO}/"))
    return path


def _expected(run: Path, process_or_data: list[str], channel: str, entry: str = "nominal") -> np.ndarray:
    """Fitted bins of m4l in one channel, summed over samples, read here with uhi alone."""
    total = np.zeros(FITTED.stop - FITTED.start)
    for sample in process_or_data:
        with zipfile.ZipFile(run / f"{sample}.hist.zip") as z:
            h = hist.Hist(uhi.io.zip.read(z, "m4l"))
        if entry not in list(h.axes["systematic"]):
            entry = "nominal"
        total += h[:, channel, entry].values()[FITTED]
    return total


def _templates(run: Path, samples: list[str], channel: str, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Up and down templates; a one-sided pair (both move the total the same way, or one not at all, to 1e-9)
    keeps the one that moves it more and mirrors it about the nominal."""
    nominal = _expected(run, samples, channel)
    up, down = _expected(run, samples, channel, f"{name}Up"), _expected(run, samples, channel, f"{name}Down")
    du, dd = up.sum() - nominal.sum(), down.sum() - nominal.sum()
    still = abs(du) <= 1e-9 * nominal.sum(), abs(dd) <= 1e-9 * nominal.sum()
    if (du * dd < 0 and not any(still)) or all(still):
        return up, down
    if abs(du) >= abs(dd):
        return up, np.clip(2 * nominal - up, 0, None)
    return np.clip(2 * nominal - down, 0, None), down


def _parse_datacard(text: str) -> dict:
    """A small datacard reader: counts, shapes line, observations, the process table, nuisance lines."""
    lines = [line.split() for line in text.splitlines() if line.strip() and not line.startswith(("#", "-"))]
    card: dict = {"nuisances": {}}
    rows: dict[str, list[list[str]]] = {}
    for words in lines:
        if words[0] in ("imax", "jmax", "kmax"):
            card[words[0]] = int(words[1])
        elif words[0] == "shapes":
            card["shapes"] = words[1:]
        elif words[0] in ("bin", "observation", "process", "rate"):
            rows.setdefault(words[0], []).append(words[1:])
        elif words[:2] == ["*", "autoMCStats"]:
            card["autoMCStats"] = int(words[2])
        else:
            card["nuisances"][words[0]] = (words[1], words[2:])
    card["channels"] = rows["bin"][0]
    card["observation"] = dict(zip(rows["bin"][0], map(float, rows["observation"][0])))
    card["columns"] = list(
        zip(rows["bin"][1], rows["process"][0], map(int, rows["process"][1]), map(float, rows["rate"][0]))
    )
    return card


def test_pyhf_workspace_validates_and_holds_the_histograms(run, exports):
    import pyhf

    spec = json.loads((exports / "workspace.json").read_text())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # jsonschema's RefResolver, inside pyhf
        ws = pyhf.Workspace(spec)
        model = ws.model()
    assert model.config.poi_name == "mu"
    assert set(model.config.channels) == {f"m4l_{c}" for c in CHANNELS}
    for channel in spec["channels"]:
        flavour = channel["name"].removeprefix("m4l_")
        for sample in channel["samples"]:
            np.testing.assert_allclose(sample["data"], _expected(run, PROCESSES[sample["name"]], flavour), rtol=1e-12)
            types = {m["type"] for m in sample["modifiers"]}
            assert ("normfactor" in types) == (sample["name"] == "H125")
            assert "staterror" in types
            if sum(sample["data"]) > 0:
                assert {"normsys", "histosys"} <= types
        observed = next(o["data"] for o in spec["observations"] if o["name"] == channel["name"])
        np.testing.assert_array_equal(observed, _expected(run, ["data"], flavour))


def test_datacard_matches_the_shapes_file_and_the_histograms(run, exports):
    card = _parse_datacard((exports / "datacard.txt").read_text())
    assert card["shapes"] == ["*", "*", "shapes.root", "$CHANNEL/$PROCESS", "$CHANNEL/$PROCESS_$SYSTEMATIC"]
    assert card["imax"] == 3 and card["jmax"] == 2 and card["kmax"] == len(card["nuisances"]) == 3
    assert card["autoMCStats"] == 0
    assert card["nuisances"]["lumi"][0] == "lnN" and card["nuisances"]["lepton_scale"][0] == "shape"
    shapes = uproot.open(exports / "shapes.root")
    keys = {k.split(";")[0] for k in shapes.keys(recursive=True)}
    for channel in card["channels"]:
        flavour = channel.removeprefix("m4l_")
        data = shapes[f"{channel}/data_obs"].values()
        np.testing.assert_array_equal(data, _expected(run, ["data"], flavour))
        assert card["observation"][channel] == pytest.approx(data.sum(), rel=1e-6)
    for i, (channel, process, index, rate) in enumerate(card["columns"]):
        assert (index <= 0) == (process == "H125") and index == {"H125": 0, "ZZ": 1, "Zjets": 2}[process]
        flavour = channel.removeprefix("m4l_")
        nominal = shapes[f"{channel}/{process}"]
        np.testing.assert_allclose(nominal.values(), _expected(run, PROCESSES[process], flavour), rtol=1e-12)
        assert rate == pytest.approx(nominal.values().sum(), rel=1e-5, abs=1e-9)
        for name, (kind, entries) in card["nuisances"].items():
            if kind == "shape" and entries[i] == "1":
                for direction, template in zip(("Up", "Down"), _templates(run, PROCESSES[process], flavour, name)):
                    assert f"{channel}/{process}_{name}{direction}" in keys
                    got = shapes[f"{channel}/{process}_{name}{direction}"].values()
                    np.testing.assert_allclose(got, template, rtol=1e-9, atol=1e-12)
            if kind == "lnN" and rate > 0:
                assert entries[i] == "1.025"


def _one_bin(s: float, b: float, kappa: float) -> StatModel:
    samples = (
        Sample("signal", True, np.array([s]), np.array([0.0]), (), ()),
        Sample("background", False, np.array([b]), np.array([0.0]), (NormSys("b_norm", kappa, 1 / kappa),), ()),
    )
    channel = Channel("count", "x", np.array([0.0, 1.0]), samples, np.array([s + b]), True)
    return StatModel((channel,), ("signal",), ("background",), mc_stat=False)


def test_counting_experiment_gives_the_asimov_significance():
    s, b, kappa = 20.0, 100.0, 1.1
    z_obs, z_exp = significance(workspace(_one_bin(s, b, kappa)))
    # Exact for this model: n = s + b (Asimov), background b kappa**theta, theta ~ N(0, 1), profiled
    # (the fit interpolates kappa**theta by a polynomial inside |theta| < 1, code4: within 2e-3 here).
    n = s + b

    def nll(theta: float) -> float:
        return -(n * np.log(b * kappa**theta) - b * kappa**theta - theta**2 / 2)

    q0 = 2 * (optimize.minimize_scalar(nll).fun + (n * np.log(n) - n))
    assert z_exp == pytest.approx(np.sqrt(q0), rel=2e-3)
    assert z_obs == pytest.approx(z_exp, rel=2e-3)  # the data are the Asimov data
    # The textbook formula (Cowan et al., Eur.Phys.J. C71 (2011) 1554) has a linear background with a
    # Poisson auxiliary measurement of relative width 10%; the log-normal with a Gaussian theta agrees
    # to first order in sigma/b, and differs by 1.7% here (second order): 3% tolerance.
    sigma = 0.1 * b
    z_a = np.sqrt(
        2
        * (
            (s + b) * np.log((s + b) * (b + sigma**2) / (b**2 + (s + b) * sigma**2))
            - b**2 / sigma**2 * np.log(1 + sigma**2 * s / (b * (b + sigma**2)))
        )
    )
    assert z_exp == pytest.approx(z_a, rel=0.03)
    # without the uncertainty: the Poisson formula exactly
    z_stat = significance(workspace(_one_bin(s, b, kappa).without_systematics()))[1]
    assert z_stat == pytest.approx(np.sqrt(2 * (n * np.log(1 + s / b) - s)), rel=1e-3) and z_stat > z_exp


def test_systematics_lower_the_significance(run):
    p = prepare_presentation(CONFIG, run)
    model = build_model(p.outputs, p.presentation, make_model_plan(p.config))
    z_obs, z_exp = significance(workspace(model))
    z_obs_stat, z_exp_stat = significance(workspace(model.without_systematics()))
    s = np.concatenate([_expected(run, ["higgs"], c) for c in CHANNELS])
    b = np.concatenate([_expected(run, ["zz", "zjets"], c) for c in CHANNELS])
    assert z_exp_stat == pytest.approx(np.sqrt(2 * np.sum((s + b) * np.log1p(s / b) - s)), rel=1e-3)
    assert z_exp < z_exp_stat and z_obs < z_obs_stat
    assert z_obs > 5


def test_fit_command_writes_the_results(run, tmp_path):
    config = _variant(tmp_path, MODEL.replace("mc_stat: true", "mc_stat: false"))  # a quick fit: no per-bin NPs
    assert main(["fit", str(config), "-i", str(run), "-o", str(tmp_path / "fit")]) == 0
    result = json.loads((tmp_path / "fit" / "fit.json").read_text())
    assert 0.5 < result["mu"] < 1.5 and 0 < result["mu_err"] < 0.5
    assert 5 < result["z_obs"] < result["z_obs_stat_only"]
    assert result["z_exp"] > 5 and result["cls_limit_obs"] > result["mu"] > result["cls_limit_exp"] > 0
    assert {p["parameter"] for p in result["pulls"]} == {"lumi", "lepton_sf", "lepton_scale"}
    assert {i["parameter"] for i in result["impacts"]} == {"lumi", "lepton_sf", "lepton_scale"}
    ranked = [max(abs(i["up"]), abs(i["down"])) for i in result["impacts"]]
    assert ranked == sorted(ranked, reverse=True)
    prefit = result["yields"]["prefit"]["m4l_2e2mu"]
    assert prefit["H125"] == pytest.approx(_expected(run, ["higgs"], "2e2mu").sum(), rel=1e-9)
    assert result["yields"]["data"]["m4l_2e2mu"] == _expected(run, ["data"], "2e2mu").sum()
    # the limits against pyhf's own root finder (TOMS 748) on the workspace written next to fit.json
    pyhf.set_backend("numpy", pyhf.optimize.scipy_optimizer())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # jsonschema's deprecation of pyhf's validator, minimiser chatter
        ws = pyhf.Workspace(json.loads((tmp_path / "fit" / "workspace.json").read_text()))
        model = ws.model(modifier_settings=SMOOTH)
        observed, band = pyhf.infer.intervals.upper_limits.upper_limit(ws.data(model), model, rtol=1e-4)
    assert result["cls_limit_obs"] == pytest.approx(float(observed), rel=5e-3)
    np.testing.assert_allclose(result["cls_limit_exp_band"], np.asarray(band, dtype=float), rtol=5e-3)
    assert result["cls_limit_exp"] == result["cls_limit_exp_band"][2] and np.all(np.diff(band) > 0)


def test_blinded_channels_and_asimov_data(run, tmp_path):
    """A blinded channel fits the expected total (Asimov, mu = 1); `data: asimov` does so everywhere."""
    blinded = _variant(tmp_path, MODEL).read_text().replace("\nmodel:", "\nblind:\n  - {channel: 4e}\nmodel:", 1)
    config = tmp_path / "blinded.yaml"
    config.write_text(blinded)
    assert main(["export", str(config), "-i", str(run), "-o", str(tmp_path / "blind")]) == 0
    spec = json.loads((tmp_path / "blind" / "workspace.json").read_text())
    observed = {o["name"]: np.array(o["data"]) for o in spec["observations"]}
    total = sum(_expected(run, samples, "4e") for samples in PROCESSES.values())
    np.testing.assert_allclose(observed["m4l_4e"], total, rtol=1e-12)
    np.testing.assert_array_equal(observed["m4l_4mu"], _expected(run, ["data"], "4mu"))
    (tmp_path / "asimov").mkdir()
    config = _variant(tmp_path / "asimov", MODEL + "  data: asimov\n")
    assert main(["export", str(config), "-i", str(run), "-o", str(tmp_path / "asimov_exports")]) == 0
    spec = json.loads((tmp_path / "asimov_exports" / "workspace.json").read_text())
    total = sum(_expected(run, samples, "4mu") for samples in PROCESSES.values())
    np.testing.assert_allclose(next(o["data"] for o in spec["observations"] if o["name"] == "m4l_4mu"), total)


BAD_MODELS = {
    "unknown process": (
        MODEL.replace("signal: [H125]", "signal: [H126]"),
        "  signal: [H126]",
        "model.signal[0]",
        "process 'H126' has no samples",
    ),
    "unknown systematic": (
        MODEL.replace("lepton_sf: shape", "lepton_sff: shape"),
        "  systematics: {lepton_sff",
        "model.systematics.lepton_sff",
        "systematic 'lepton_sff' is not declared",
    ),
    "no such axis": (
        MODEL.replace("slices: {channel: each}", "slices: {flavour: each}"),
        "    m4l: {histogram",
        "model.channels.m4l.slices.flavour",
        "histogram 'm4l' has no axis 'flavour'",
    ),
    "no signal": (MODEL.replace("  signal: [H125]\n", ""), "model:", "model", "the model has no signal process"),
    "zero background": (
        MODEL.replace("range: [110, 170]", "range: [80, 170]"),
        "    m4l: {histogram",
        "model.channels.m4l",
        "channel 'm4l_4e': bin 0 [80, 83] of 'm4l' has zero total background",
    ),
}


@pytest.mark.parametrize("case", BAD_MODELS)
def test_bad_models_are_refused_with_their_line(case, run, tmp_path):
    model, line_text, key, message = BAD_MODELS[case]
    config = _variant(tmp_path, model)
    line = next(i for i, text in enumerate(config.read_text().splitlines(), 1) if text.startswith(line_text))
    command = [sys.executable, "-m", "framework", "export", str(config), "-i", str(run), "-o", str(tmp_path / "x")]
    proc = subprocess.run(command, capture_output=True, text=True, cwd=REPO, check=False)
    assert proc.returncode == 2, proc.stderr
    assert f"{config}:{line}: {key}: " in proc.stderr and message in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "x").exists()
    if case == "zero background":
        assert re.search(r"hint: narrow the channel's 'range'", proc.stderr)


def test_a_bad_model_stops_a_run_before_the_event_loop(tmp_path):
    config = _variant(tmp_path, MODEL.replace("signal: [H125]", "signal: [ZZZ]"))
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "framework", str(config), "-o", str(out)],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert proc.returncode == 2 and "model.signal[0]" in proc.stderr and "did you mean 'ZZ'" in proc.stderr
    assert not out.exists()


def test_histfactory_xml_reads_back_as_the_workspace(exports):
    """pyhf's own XML reader gives back the JSON workspace: channels, samples, modifiers, bins."""
    import pyhf.readxml

    folder = exports / "histfactory"
    assert (folder / "combination.xml").is_file() and (folder / "histograms.root").is_file()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # pyhf's schema validation, jsonschema's RefResolver
        back = pyhf.readxml.parse(folder / "combination.xml", folder)
    spec = json.loads((exports / "workspace.json").read_text())
    assert [c["name"] for c in back["channels"]] == [c["name"] for c in spec["channels"]]
    for got, want in zip(back["channels"], spec["channels"], strict=True):
        assert [s["name"] for s in got["samples"]] == [s["name"] for s in want["samples"]]
        for gs, ws in zip(got["samples"], want["samples"], strict=True):
            np.testing.assert_allclose(gs["data"], ws["data"], rtol=1e-9)
            assert [(m["name"], m["type"]) for m in gs["modifiers"]] == [
                (m["name"], m["type"]) for m in ws["modifiers"]
            ]
            for gm, wm in zip(gs["modifiers"], ws["modifiers"], strict=True):
                if wm["type"] == "normsys":
                    assert gm["data"]["hi"] == pytest.approx(wm["data"]["hi"], rel=1e-9)
                    assert gm["data"]["lo"] == pytest.approx(wm["data"]["lo"], rel=1e-9)
                elif wm["type"] == "histosys":
                    for key in ("hi_data", "lo_data"):
                        np.testing.assert_allclose(gm["data"][key], wm["data"][key], rtol=1e-9)
                elif wm["type"] == "staterror":
                    np.testing.assert_allclose(gm["data"], wm["data"], rtol=1e-9)
    observed = {o["name"]: o["data"] for o in spec["observations"]}
    for o in back["observations"]:
        np.testing.assert_allclose(o["data"], observed[o["name"]], rtol=1e-9)
    assert back["measurements"][0]["config"]["poi"] == "mu"


def _root_and_pyhf_fits(folder: Path, spec: dict) -> tuple[dict, np.ndarray, float]:
    """ROOT HistFactory + RooFit/Minuit2 on `folder/histfactory` (own process) and pyhf on `spec`, both with
    the same interpolation (code4 for normalisations, code4p for shapes; see histfactory_root_fit.py for the
    two other HistFactory defaults set as pyhf's): mu, its error and q0."""
    script = Path(__file__).with_name("histfactory_root_fit.py")
    done = subprocess.run(
        [sys.executable, str(script), str(folder / "histfactory")],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    with pyhf_session() as pyhf:
        ws = pyhf.Workspace(spec)
        model = ws.model(modifier_settings=SMOOTH)
        data = ws.data(model)
        best = pyhf.infer.mle.fit(data, model, return_uncertainties=True)[model.config.poi_index]
        _, nll = pyhf.infer.mle.fit(data, model, return_fitted_val=True)
        _, nll0 = pyhf.infer.mle.fixed_poi_fit(0.0, data, model, return_fitted_val=True)
    return json.loads(done.stdout.strip().splitlines()[-1]), np.asarray(best), float(nll0 - nll)


def test_histfactory_export_fitted_by_root_agrees_with_pyhf_on_a_small_model(tmp_path):
    """Every modifier kind (normfactor, lnN normsys, shape normsys + histosys, staterror), one channel."""
    from framework.stats.histfactory import write_histfactory
    from framework.stats.model import ShapeSys

    sig, bkg = np.array([2.0, 5.0, 8.0, 3.0]), np.array([50.0, 40.0, 30.0, 20.0])
    lumi = NormSys("lumi", 1.025, 1 / 1.025)
    jes_s = ShapeSys("jes", sig * [1.1, 1.05, 1.0, 0.95], sig * [0.9, 0.96, 1.0, 1.04])
    jes_b = ShapeSys("jes", bkg * [1.05, 1.02, 1.0, 0.97], bkg * [0.96, 0.99, 1.0, 1.02])
    samples = (
        Sample("sig", True, sig, sig * 0.01, (lumi,), (jes_s,)),
        Sample("bkg", False, bkg, bkg * 0.02, (lumi, NormSys("bnorm", 1.1, 0.85)), (jes_b,)),
    )
    data = sig + bkg + np.array([1.0, -2.0, 3.0, 0.0])
    model = StatModel((Channel("sr", "x", np.linspace(0, 4, 5), samples, data, False),), ("sig",), ("bkg",), True)
    write_histfactory(tmp_path, model)
    root, best, q0 = _root_and_pyhf_fits(tmp_path, workspace(model))
    # measured: mu 1.22115 both (difference 2e-6), its error 0.86349 / 0.86350, q0 2.515785 both
    assert root["mu"] == pytest.approx(best[0], abs=1e-4)
    assert root["mu_err"] == pytest.approx(best[1], rel=1e-3)
    assert root["q0"] == pytest.approx(q0, rel=1e-4)


def test_histfactory_export_fitted_by_root_agrees_with_pyhf(exports):
    """The Higgs model (3 channels, 64 parameters). Measured: mu 0.82040 (ROOT) / 0.82018 (pyhf; 0.82036 at
    MINUIT tolerance 1e-4), errors 0.145461 / 0.145460, q0 84.5624 / 84.5624. With HistFactory's defaults
    kept (yields clipped at zero, staterror Gaussians truncated to [0, 10]) mu was 0.81869 and q0 84.33."""
    root, best, q0 = _root_and_pyhf_fits(exports, json.loads((exports / "workspace.json").read_text()))
    assert root["mu"] == pytest.approx(best[0], abs=1e-3)
    assert root["mu_err"] == pytest.approx(best[1], rel=0.01)
    assert root["q0"] == pytest.approx(q0, rel=0.01)


def test_report_shows_the_fit(run, tmp_path):
    """`run-analysis plot` with a model: how to make the fit while there is none (or an older fit.json); then the
    fit's tables (page and files) with the fitted mu and every nuisance parameter's pull of fit.json, and the
    pre- and post-fit plots of every channel."""
    config = _variant(tmp_path, MODEL.replace("mc_stat: true", "mc_stat: false"))
    fit, report = tmp_path / "fit", tmp_path / "report"
    assert main(["plot", str(config), "-i", str(run), "-o", str(report), "--fit", str(fit)]) == 0
    page = (report / "index.html").read_text()
    assert "id='fit'" in page and f"run-analysis fit {config} -i {run} -o {fit}" in page
    assert not (report / "tables" / "fit_summary.csv").exists()
    stale = tmp_path / "stale"
    stale.mkdir()
    (stale / "fit.json").write_text('{"mu": 1.0}')
    assert main(["plot", str(config), "-i", str(run), "-o", str(report), "--fit", str(stale)]) == 0
    assert "An unreadable (older) fit result" in (report / "index.html").read_text()

    assert main(["fit", str(config), "-i", str(run), "-o", str(fit)]) == 0
    result = json.loads((fit / "fit.json").read_text())
    older = {key: value for key, value in result.items() if key != "distributions"}  # before the fit's plots
    (stale / "fit.json").write_text(json.dumps(older))
    assert main(["plot", str(config), "-i", str(run), "-o", str(report), "--fit", str(stale)]) == 0
    assert "An unreadable (older) fit result" in (report / "index.html").read_text()
    assert main(["plot", str(config), "-i", str(run), "-o", str(report), "--fit", str(fit)]) == 0
    page = (report / "index.html").read_text()
    tables = report / "tables"
    for name in ("fit_summary", "fit_pulls", "fit_impacts", "fit_yields"):
        assert f"id='{name}'" in page and all((tables / f"{name}.{s}").exists() for s in ("md", "tex", "csv"))
    summary = dict(list(csv.reader((tables / "fit_summary.csv").read_text().splitlines()))[1:])
    assert float(summary["signal strength mu"]) == result["mu"]
    assert float(summary["uncertainty on mu (profile likelihood, mean of down and up)"]) == result["mu_err"]
    assert float(summary["uncertainty on mu from MINUIT's Hesse matrix"]) == result["mu_err_hesse"]
    expected = f"{result['mu']:.3f} -{result['mu_err_down']:.3f}/+{result['mu_err_up']:.3f}"
    assert summary["mu with its uncertainty"] == expected
    assert f"<td>{result['mu']:.4g}</td>" in page and f"{result['mu']:.4g}" in (tables / "fit_summary.md").read_text()
    pulls = {row[0]: row for row in csv.reader((tables / "fit_pulls.csv").read_text().splitlines())}
    assert len(result["pulls"]) == 3
    for p in result["pulls"]:
        assert float(pulls[p["parameter"]][3]) == p["pull"]
        assert float(pulls[p["parameter"]][4]) == p["constraint"]
        assert f"<td>{p['parameter']}</td><td>{p['type']}</td><td>{p['value']:.4g}</td><td>{p['pull']:.4g}</td>" in page
    assert (report / "plots" / "fit_pulls.png").stat().st_size > 1000 and "src='plots/fit_pulls.png'" in page
    impacts = (tables / "fit_impacts.csv").read_text().splitlines()[1:]
    assert [line.split(",")[0] for line in impacts] == [i["parameter"] for i in result["impacts"]]
    yields = (tables / "fit_yields.csv").read_text()
    post = result["yields"]["postfit"]["m4l_2e2mu"]["H125"]
    assert f"m4l_2e2mu,H125,{result['yields']['prefit']['m4l_2e2mu']['H125']!r},{post!r}" in yields
    assert len(result["distributions"]) == len(CHANNELS)
    for channel in result["distributions"]:
        for stage in ("prefit", "postfit"):
            image = f"plots/fit_{channel}_{stage}.png"
            assert (report / image).stat().st_size > 1000 and f"src='{image}'" in page


def test_fit_distributions_stack_to_the_yields_and_the_histograms(run, tmp_path):
    """Per channel and bin: the pre-fit samples are the histograms, the post-fit ones pyhf's expected yields at the
    best fit of fit.json and sum to its post-fit yields; the pre-fit band holds at least the luminosity's 2.5%.
    The post-fit plot draws these numbers: signal on top, the band total +- uncertainty."""
    from framework.present.fit_report import distribution_plot
    from framework.present.plotting import draw

    config = _variant(tmp_path, MODEL.replace("mc_stat: true", "mc_stat: false"))
    assert main(["fit", str(config), "-i", str(run), "-o", str(tmp_path / "fit")]) == 0
    result = json.loads((tmp_path / "fit" / "fit.json").read_text())
    pyhf.set_backend("numpy", pyhf.optimize.scipy_optimizer())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # jsonschema's deprecation of pyhf's validator
        model = pyhf.Workspace(json.loads((tmp_path / "fit" / "workspace.json").read_text())).model(
            modifier_settings=SMOOTH
        )
    best = {p["parameter"]: p["value"] for p in result["pulls"]} | {"mu": result["mu"]}
    pars = np.array([best[name] for name in model.config.par_order])
    by_sample = np.asarray(model.main_model.expected_data(pars, return_by_sample=True))
    assert set(result["distributions"]) == {f"m4l_{c}" for c in CHANNELS}
    for flavour in CHANNELS:
        channel = result["distributions"][f"m4l_{flavour}"]
        assert channel["observable"] == "m4l" and channel["label"] == "$m_{4\\ell}$ [GeV]"
        np.testing.assert_allclose(channel["edges"], np.linspace(110, 170, 21))
        np.testing.assert_array_equal(channel["data"], _expected(run, ["data"], flavour))
        prefit_total = np.zeros(20)
        for process, samples in PROCESSES.items():
            np.testing.assert_allclose(channel["prefit"][process], _expected(run, samples, flavour), rtol=1e-9)
            prefit_total += channel["prefit"][process]
            postfit = channel["postfit"][process]
            assert sum(postfit) == pytest.approx(result["yields"]["postfit"][f"m4l_{flavour}"][process], rel=1e-12)
            expected = by_sample[model.config.samples.index(process), model.config.channel_slices[f"m4l_{flavour}"]]
            np.testing.assert_allclose(postfit, expected, rtol=1e-9)
        # every sample carries lumi (fully correlated) and two more independent uncertainties
        assert np.all(np.asarray(channel["prefit_uncertainty"]) > np.log(1.025) * prefit_total)
        assert np.all(np.asarray(channel["postfit_uncertainty"]) > 0)

    p = prepare_presentation(config, run)
    plot, band = distribution_plot(result, "m4l_4mu", "postfit", p.presentation)
    fig = draw(plot, p.config.spec.style, [band])
    patches = {a.get_gid(): a for a in fig.axes[0].patches}
    assert plot.processes == ["Zjets", "ZZ", "H125"] and f"{result['mu']:.2f}" in plot.title
    total = np.sum([result["distributions"]["m4l_4mu"]["postfit"][s] for s in PROCESSES], axis=0)
    np.testing.assert_allclose(patches["stack:H (125 GeV)"].get_data().values, total)
    drawn = patches["fit"].get_data()
    sigma = np.asarray(result["distributions"]["m4l_4mu"]["postfit_uncertainty"])
    np.testing.assert_allclose((drawn.values, drawn.baseline), (total + sigma, total - sigma))
    assert "Post-fit unc." in [t.get_text() for t in fig.axes[0].get_legend().get_texts()]


def _hessian_sigma(spec: dict) -> float:
    """The total's uncertainty of a one-bin workspace at pyhf's best fit (scipy), propagated with the inverse of
    the numerical Hessian of pyhf's -log L: independent of MINUIT and of the fit's code."""
    pyhf.set_backend("numpy", pyhf.optimize.scipy_optimizer())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # jsonschema's deprecation of pyhf's validator
        ws = pyhf.Workspace(spec)
        model = ws.model(modifier_settings=SMOOTH)
    data = ws.data(model)
    best = np.asarray(pyhf.infer.mle.fit(data, model), dtype=float)
    step = 1e-4
    shifts = step * np.eye(len(best))

    def nll(p: np.ndarray) -> float:
        return -float(model.logpdf(p, data)[0])

    hessian = np.array(
        [
            [nll(best + a + c) - nll(best + a - c) - nll(best - a + c) + nll(best - a - c) for c in shifts]
            for a in shifts
        ]
    ) / (4 * step**2)
    total = model.expected_actualdata
    gradient = np.array([(total(best + a)[0] - total(best - a)[0]) / (2 * step) for a in shifts])
    return float(np.sqrt(gradient @ np.linalg.inv(hessian) @ gradient))


@pytest.mark.parametrize("mc_variances", [None, (4.0, 25.0)], ids=["lnN", "lnN+staterror"])
def test_fit_uncertainty_bands_of_a_counting_experiment(mc_variances):
    """One bin, s = 20 on b = 100 with a log-normal kappa = 1.1 (and the simulation's statistics, staterror),
    n = 130 observed. Pre-fit: mu has no uncertainty, the normalisation's derivative is b ln(kappa) (code4 at 0),
    the staterror's the simulation's sigma. Post-fit (mu free): the total is n to sqrt(n) (in the total and theta
    the Hessian is diagonal), and the propagation with the Hessian of pyhf's -log L computed here agrees."""
    from framework.stats.fit import fit

    s, b, kappa, n = 20.0, 100.0, 1.1, 130.0
    counting = _one_bin(s, b, kappa)
    channel = replace(counting.channels[0], data=np.array([n]), asimov=False)
    prefit = b * np.log(kappa)
    if mc_variances:
        channel = replace(
            channel, samples=tuple(replace(x, variance=np.array([v])) for x, v in zip(channel.samples, mc_variances))
        )
        prefit = np.hypot(prefit, np.sqrt(sum(mc_variances)))
    model = replace(counting, channels=(channel,), mc_stat=bool(mc_variances))
    spec = workspace(model)
    d = fit(spec, workspace(model.without_systematics()), model.channels)["distributions"]["count"]
    assert d["edges"] == [0.0, 1.0] and d["signal"] == ["signal"] and d["data"] == [n]
    assert d["prefit"] == {"signal": [s], "background": [b]}
    assert d["prefit_uncertainty"][0] == pytest.approx(prefit, rel=1e-6)
    assert d["postfit"]["signal"][0] + d["postfit"]["background"][0] == pytest.approx(n, rel=1e-3)
    independent = _hessian_sigma(spec)
    assert independent == pytest.approx(np.sqrt(n), rel=1e-3)
    # MINUIT's Hesse (the fit's covariance) is 0.3% off here; without the correlation of mu and theta (-0.64)
    # the band would be 50% wider
    assert d["postfit_uncertainty"][0] == pytest.approx(independent, rel=1e-2)


DEMO = REPO / "analyses" / "demo" / "config.yaml"
AGC = REPO / "analyses" / "agc_ttbar" / "config.yaml"


def _hist(run: Path, sample: str, name: str) -> hist.Hist:
    with zipfile.ZipFile(run / f"{sample}.hist.zip") as z:
        h = hist.Hist(uhi.io.zip.read(z, name))
    return h[..., "nominal"] if "systematic" in h.axes.name else h


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, Path]:
    """The demo's outputs and its exports (model: an l+jets count and the dimuon H_T spectrum)."""
    folder = tmp_path_factory.mktemp("demo_stats")
    assert main([str(DEMO), "-o", str(folder / "out")]) == 0
    assert main(["export", str(DEMO), "-i", str(folder / "out"), "-o", str(folder / "exports")]) == 0
    return folder / "out", folder / "exports"


def test_demo_exports_hold_the_histograms_and_root_fits_them_as_pyhf(demo):
    """The demo's datacard and workspace against the histograms read here (the l+jets count: H_T in [200, 400]
    with 0-2 b jets; the dimuon H_T in [0, 360]), and ROOT's HistFactory fit of its XML against pyhf's.
    Measured: mu 1.019022 (ROOT) / 1.019030 (pyhf), errors 0.075873 / 0.075879, q0 4912 / 4872 (0.8%: the
    mu = 0 fit, where 607 ttbar events must be explained by 3 Drell-Yan ones)."""
    run, exports = demo
    expected = {
        "ljets": lambda s: np.array([_hist(run, s, "ht")[hist.loc(200) : hist.loc(400), "ljets", 0:3].sum().value]),
        "mumu_ht": lambda s: _hist(run, s, "ht")[hist.loc(0) : hist.loc(360), "mumu", sum].values(),
    }
    samples = {"ttbar": "ttbar", "DY": "zmumu"}
    card = _parse_datacard((exports / "datacard.txt").read_text())
    assert card["channels"] == ["ljets", "mumu_ht"] and card["jmax"] == 1
    assert card["nuisances"]["dy_xsec"] == ("lnN", ["-", "1.05", "-", "1.05"])
    shapes = uproot.open(exports / "shapes.root")
    for channel, process, index, rate in card["columns"]:
        assert index == (0 if process == "ttbar" else 1)
        reference = expected[channel](samples[process])
        np.testing.assert_allclose(shapes[f"{channel}/{process}"].values(), reference, rtol=1e-9)
        assert rate == pytest.approx(reference.sum(), rel=1e-5)
    spec = json.loads((exports / "workspace.json").read_text())
    for observation in spec["observations"]:
        np.testing.assert_array_equal(observation["data"], expected[observation["name"]]("data"))
    root, best, q0 = _root_and_pyhf_fits(exports, spec)
    assert root["mu"] == pytest.approx(best[0], abs=1e-3) and 0.9 < best[0] < 1.1
    assert root["mu_err"] == pytest.approx(best[1], rel=0.01)
    assert root["q0"] == pytest.approx(q0, rel=0.01)


def _twice_nll_rise(spec: dict, mu: float) -> float:
    """2 (NLL(mu) - NLL(mu-hat)) of a workspace, profiled here with MINUIT at its default strategy."""
    with pyhf_session() as pyhf:
        ws = pyhf.Workspace(spec)
        model = ws.model(modifier_settings=SMOOTH)
        _, lowest = pyhf.infer.mle.fit(ws.data(model), model, return_fitted_val=True)
        _, fixed = pyhf.infer.mle.fixed_poi_fit(mu, ws.data(model), model, return_fitted_val=True)
    return float(fixed - lowest)


def test_demo_and_agc_fits(demo, agc_run, tmp_path):
    """`run-analysis fit` on the demo and on the AGC example (no data: the Asimov data set, so mu = 1 and the
    observed numbers are the expected ones). The interval of mu is where the profile likelihood rises by 1,
    checked with fits made here; on the AGC, MINUIT's Hesse matrix misses it (its numerical second derivatives
    are unstable on this likelihood: strategies 0, 1 and 2 give 0.19, 0.024 and 0.09) and the fit says so."""
    run, _ = demo
    assert main(["fit", str(DEMO), "-i", str(run), "-o", str(tmp_path / "demo_fit")]) == 0
    result = json.loads((tmp_path / "demo_fit" / "fit.json").read_text())
    assert 0.9 < result["mu"] < 1.1 and result["hesse_reliable"]
    assert result["mu_err"] == pytest.approx(result["mu_err_hesse"], rel=0.05)
    assert result["z_obs"] > 50 and result["cls_limit_obs"] > result["mu"] + result["mu_err_up"]
    assert set(result["distributions"]) == {"ljets", "mumu_ht"}

    agc, _ = agc_run
    assert main(["fit", str(AGC), "-i", str(agc), "-o", str(tmp_path / "agc_fit")]) == 0
    result = json.loads((tmp_path / "agc_fit" / "fit.json").read_text())
    assert result["asimov_channels"] == ["ht_4j1b", "m_bjj_4j2b"]
    assert result["mu"] == pytest.approx(1.0, abs=1e-3) and result["z_obs"] == pytest.approx(result["z_exp"], rel=1e-3)
    assert result["z_obs"] < result["z_obs_stat_only"]
    spec = json.loads((tmp_path / "agc_fit" / "workspace.json").read_text())
    for mu in (result["mu"] - result["mu_err_down"], result["mu"] + result["mu_err_up"]):
        assert _twice_nll_rise(spec, mu) == pytest.approx(1.0, abs=0.02)
    assert not result["hesse_reliable"] and result["mu_err_hesse"] < 0.5 * result["mu_err"]


class _LinearAsimov(Limits):
    """Limits whose Asimov data have sqrt(qtilde_mu) = mu / SIGMA (the asymptotic textbook case), times
    `1 + noise * sin(1e4 mu)`: no fit, so the expected limits' search itself is tested."""

    SIGMA = 0.1

    def __init__(self, noise: float) -> None:
        self.pyhf, self.noise, self.asimov_sqrt_q = pyhf, noise, {}

    def _asimov(self, mu: float) -> float:
        if mu not in self.asimov_sqrt_q:
            self.asimov_sqrt_q[mu] = mu / self.SIGMA * (1 + self.noise * np.sin(1e4 * mu))
        return self.asimov_sqrt_q[mu]


def test_expected_limits_equal_the_asymptotic_formula_or_say_they_are_approximate(caplog):
    """With sqrt(qtilde_mu) = mu / sigma the expected limit of band n is sigma (Phi^-1(1 - 0.05 Phi(n)) + n)
    (Cowan et al., eq. 89 with CLs); with noisy fits that the search cannot meet to 1e-3, a warning."""
    from scipy.stats import norm

    limits = _LinearAsimov(noise=0.0).expected(0.05)
    formula = [_LinearAsimov.SIGMA * (norm.ppf(1 - 0.05 * norm.cdf(n)) + n) for n in (-2, -1, 0, 1, 2)]
    np.testing.assert_allclose(limits, formula, rtol=2e-3)
    assert "approximate" not in caplog.text
    _LinearAsimov(noise=0.05).expected(0.05)
    assert re.search(r"the expected limit at [+-]\d sigma is approximate: sqrt\(qtilde\) .* was sought", caplog.text)
