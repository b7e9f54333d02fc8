"""Tag and probe on generated Z->mumu with known efficiencies: closure of fits and counts, the
pairs against an independent awkward computation, the correctionlib output evaluated and used
as a weight, and the failures a physicist must be told about."""

from __future__ import annotations

import csv
import json
import zipfile
from pathlib import Path

import awkward as ak
import correctionlib
import hist
import numpy as np
import pytest
import uhi.io.zip
import uproot

from framework.app.cli import main
from framework.config.load import load_config
from framework.errors import ConfigError
from framework.execute.pipeline import RunOptions, execute
from framework.extensions.tnp import measure as tnp_module
from framework.extensions.tnp.fitting import Efficiency
from framework.extensions.tnp.outputs import run_tnp, tables
from framework.plan.model import RunSelection
from framework.present.results import load_outputs
from framework.testing.generate import TNP_ETA_EDGES, TNP_PT_EDGES, TNP_TRUTH

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "analyses" / "tnp_muon" / "config.yaml"
NAMES = ("TightID_over_Tracker", "TightIso_over_TightID")


def truth(name: str, sample: str) -> np.ndarray:
    t = TNP_TRUTH[sample]
    if name == "TightID_over_Tracker":
        return np.array(t["id"]).reshape(len(TNP_ETA_EDGES) - 1, len(TNP_PT_EDGES) - 1)
    return np.full((len(TNP_ETA_EDGES) - 1, len(TNP_PT_EDGES) - 1), 1 - np.exp(-0.15 / t["iso_scale"]))


@pytest.fixture(scope="module")
def measured(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tnp") / "out"
    assert main([str(CONFIG), "-o", str(out)]) == 0
    return out


def _efficiencies(out: Path) -> dict[str, hist.Hist]:
    with zipfile.ZipFile(out / "tnp" / "efficiencies.hist.zip") as z:
        return {n: hist.Hist(uhi.io.zip.read(z, n)) for n in NAMES}


def test_closure_against_the_generator_truth(measured):
    """Pulls of the measured efficiencies and scale factors about the truth, over all bins."""
    for name, h in _efficiencies(measured).items():
        for quantity, sample in (("eff_data", "tnp_data"), ("eff_mc", "tnp_mc")):
            value = h[:, :, quantity, "value"].values()
            error = 0.5 * (h[:, :, quantity, "stat_low"].values() + h[:, :, quantity, "stat_high"].values())
            pull = (value - truth(name, sample)) / error
            assert abs(pull.mean()) < 0.6 and 0.5 < pull.std() < 1.7, (name, quantity, pull)
        sf = h[:, :, "sf", "value"].values()
        expected = truth(name, "tnp_data") / truth(name, "tnp_mc")
        pull = (sf - expected) / h[:, :, "sf", "stat_low"].values()
        assert abs(pull.mean()) < 0.6 and pull.std() < 1.7, (name, pull)
    with open(measured / "tnp" / "fits.csv") as f:
        fits = list(csv.DictReader(f))
    assert len(fits) == 2 * 20 * 7  # efficiencies x bins x (nominal + 6 alternatives), data only
    assert sum(r["converged"] == "yes" for r in fits) >= 0.99 * len(fits)


def test_pairs_and_counts_equal_an_awkward_computation(measured):
    """The simulation's counted efficiency per bin from the pairs built independently here."""
    e = uproot.open(REPO / "data" / "tnp" / "dy.root")["Events"].arrays()
    mu = ak.zip(
        {
            "pt": e.Muon_pt,
            "eta": e.Muon_eta,
            "phi": e.Muon_phi,
            "mass": e.Muon_mass,
            "charge": e.Muon_charge,
            "tight": e.Muon_tightId,
            "tracker": e.Muon_isTracker,
            "iso": e.Muon_pfRelIso04_all,
        }
    )
    tag_ok = (mu.pt > 27) & (abs(mu.eta) < 2.4) & mu.tight & (mu.iso < 0.15)
    probe_ok = (mu.pt > 20) & (abs(mu.eta) < 2.4)
    mu = ak.with_field(mu, tag_ok, "is_tag")
    mu = ak.with_field(mu, probe_ok, "is_probe")
    t, p = ak.unzip(ak.cartesian([mu, mu], nested=False))
    i, j = ak.unzip(ak.argcartesian([mu, mu]))
    keep = (i != j) & t.is_tag & p.is_probe & (t.charge != p.charge)
    t, p = t[keep], p[keep]
    parts = []
    for x in (t, p):
        pt, eta, phi, m = (ak.values_astype(x[f], np.float64) for f in ("pt", "eta", "phi", "mass"))
        parts.append((pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta), m))
    px, py, pz = (parts[0][k] + parts[1][k] for k in range(3))
    energy = sum(np.sqrt(a[0] ** 2 + a[1] ** 2 + a[2] ** 2 + a[3] ** 2) for a in parts)
    mass = np.sqrt(np.maximum(energy**2 - px**2 - py**2 - pz**2, 0))
    window = (mass > 70) & (mass < 110) & p.tracker
    probes = p[window]
    counts = hist.Hist.new.Var(TNP_ETA_EDGES, name="abseta").Var(TNP_PT_EDGES, name="pt").Bool(name="passed").Double()
    counts.fill(
        abseta=ak.to_numpy(ak.flatten(abs(probes.eta))),
        pt=ak.to_numpy(ak.flatten(probes.pt)),
        passed=ak.to_numpy(ak.flatten(probes.tight)),
    )
    expected = counts[:, :, True].values() / (counts[:, :, True].values() + counts[:, :, False].values())
    got = _efficiencies(measured)["TightID_over_Tracker"][:, :, "eff_mc", "value"].values()
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_correctionlib_output_evaluates_to_the_scale_factors(measured):
    cset = correctionlib.CorrectionSet.from_file(str(measured / "tnp_scale_factors.json"))
    for name, h in _efficiencies(measured).items():
        sf, stat, syst = (h[:, :, "sf", k].values() for k in ("value", "stat_low", "syst"))
        for a, abseta in enumerate(h.axes["abseta"].centers):
            for b, pt in enumerate(h.axes["pt"].centers):
                c = cset[name]
                assert c.evaluate(abseta, pt, "nominal") == pytest.approx(sf[a, b], rel=1e-12)
                assert c.evaluate(abseta, pt, "stat") == pytest.approx(stat[a, b], rel=1e-12)
                assert c.evaluate(abseta, pt, "syst") == pytest.approx(syst[a, b], rel=1e-12)
                total = np.hypot(stat[a, b], syst[a, b])
                assert c.evaluate(abseta, pt, "systup") == pytest.approx(sf[a, b] + total, rel=1e-12)
                assert c.evaluate(abseta, pt, "systdown") == pytest.approx(sf[a, b] - total, rel=1e-12)
        assert cset[name].evaluate(3.0, 500.0, "nominal") == pytest.approx(sf[-1, -1])  # clamped
    assert (syst > 0).all()  # the alternatives shift the scale factors


def test_scale_factors_serve_as_an_analysis_weight(measured, generated, write_config, tmp_path):
    """The output as a correctionlib weight systematic of an ordinary analysis."""
    sf_file = measured / "tnp_scale_factors.json"
    config = write_config(
        f"""
        analysis: uses_sf
        lumi: 1.0
        samples:
          zmumu: {{files: ["{generated["zmumu"]}"], xsec: 1.0, sum_weights: 1.0}}
        collections:
          GoodMuon: {{from: Muon, where: "Muon_pt > 25 && abs(Muon_eta) < 2.4 && Muon_tightId"}}
        selection:
          - {{name: two, cut: "nGoodMuon >= 2"}}
        weight: "1"
        systematics:
          muon_id:
            kind: correctionlib
            file: "{sf_file}"
            correction: TightID_over_Tracker
            key_input: scale_factors
            up: systup
            down: systdown
            inputs: {{abseta: "abs(GoodMuon_eta)", pt: GoodMuon_pt}}
        histograms:
          n: {{axes: [{{expr: nGoodMuon, integer: [0, 6]}}]}}
        """
    )
    report = execute(RunOptions(config=config, output=tmp_path / "out"))
    h = report.result.samples[0].histograms["n"]
    e = uproot.open(generated["zmumu"])["Events"].arrays(["Muon_pt", "Muon_eta", "Muon_tightId"])
    good = (e.Muon_pt > 25) & (abs(e.Muon_eta) < 2.4) & e.Muon_tightId
    pt, eta = e.Muon_pt[good], abs(e.Muon_eta[good])
    pt, eta = pt[ak.num(pt) >= 2], eta[ak.num(pt) >= 2]
    c = correctionlib.CorrectionSet.from_file(str(sf_file))["TightID_over_Tracker"]
    for key, entry in (("nominal", "nominal"), ("systup", "muon_idUp"), ("systdown", "muon_idDown")):
        factors = c.evaluate(ak.to_numpy(ak.flatten(eta)).astype(float), ak.to_numpy(ak.flatten(pt)).astype(float), key)
        per_event = ak.prod(ak.unflatten(factors, ak.num(pt)), axis=1)  # the weight: product over the muons
        assert h[:, entry].sum(flow=True).value == pytest.approx(float(ak.sum(per_event)), rel=1e-10)


def test_a_fit_that_fails_is_reported_and_not_used(measured, monkeypatch):
    config = load_config(CONFIG)
    outputs = load_outputs(measured)
    original = tnp_module.fit_efficiency

    def failing_in_one_bin(data, signal, background, simultaneous=True):
        result = original(data, signal, background, simultaneous)
        if data.passed.sum() == failing_in_one_bin.target:
            return Efficiency(0.5, 0.1, 0.1, False, result.chi2_ndf, "fit", "MIGRAD did not converge")
        return result

    first = next(t for t in tnp_module.measure(config, outputs, workers=1, progress=False).tasks if t.method == "fit")
    failing_in_one_bin.target = first.data.passed.sum()
    monkeypatch.setattr(tnp_module, "fit_efficiency", failing_in_one_bin)
    m = tnp_module.measure(config, outputs, workers=1, progress=False)
    k = int(np.ravel_multi_index(first.bin, m.shape))
    result = m.results["data", first.efficiency, first.variant][k]
    assert not result.converged and "replaced by the count" in result.message
    passed, failed = first.data.passed.sum(), first.data.failed.sum()
    assert result.value == pytest.approx(passed / (passed + failed))  # the count, not the failed fit's 0.5
    check = next(t for t in tables(m) if t.name == "fits_to_check")
    assert any(row[7] == "no" and "MIGRAD did not converge" in row[9] for row in check.rows)


def test_a_bin_without_probes_is_refused(measured, tmp_path):
    text = CONFIG.read_text().replace("../../data/tnp/", str(REPO / "data" / "tnp") + "/")
    text = text.replace("edges: [20, 25, 30, 40, 60, 120]", "edges: [20, 25, 30, 40, 60, 120, 900, 1000]")
    config = tmp_path / "config.yaml"
    config.write_text(text)
    outputs = tmp_path / "out"
    execute(RunOptions(config=config, output=outputs, selection=RunSelection(max_events=20000)))
    with pytest.raises(
        ConfigError, match=r"have no probes in the fit range: data TightID_over_Tracker in .*900 <= pt < 1000"
    ) as info:
        run_tnp(load_config(config), outputs)
    assert info.value.location.key == "tnp.binning"
    assert not (outputs / "tnp_scale_factors.json").exists()


def test_summary_json_matches_the_histograms(measured):
    summary = json.loads((measured / "tnp" / "summary.json").read_text())
    for name, h in _efficiencies(measured).items():
        np.testing.assert_allclose(summary[name]["sf"], h[:, :, "sf", "value"].values(), rtol=1e-12)
    assert (measured / "tnp" / "plots" / "fits" / "TightID_over_Tracker" / "bin_0_0.png").is_file()


def test_systematics_combine_singles_and_groups():
    """|shift| for a single alternative, half the spread for a group, added in quadrature."""
    tnp = load_config(CONFIG).spec.tnp
    m = tnp_module.Measurement(tnp, (1,), {}, [])
    shifts = {name: np.array([0.0]) for name in tnp.systematics}
    shifts["alt_signal"] = np.array([0.03])
    shifts["range_narrow"], shifts["range_wide"] = np.array([0.01]), np.array([-0.03])
    np.testing.assert_allclose(m.combine(shifts, np.zeros(1)), np.hypot(0.03, 0.02))


@pytest.mark.parametrize("background", ["exponential", "cms", "chebyshev"])
def test_compiled_likelihood_and_its_gradient(background):
    """The compiled likelihood of the nominal model equals the numpy one, and its analytic
    gradient (which MIGRAD uses) equals central finite differences."""
    from framework.extensions.tnp.likelihood import FitInput, Model
    from framework.extensions.tnp.shapes import BACKGROUNDS

    rng = np.random.default_rng(7)
    edges = np.linspace(50, 130, 81)
    template = np.histogram(91.19 + rng.standard_cauchy(200000) * 1.25 + rng.normal(0, 1.2, 200000), edges)[0].astype(
        float
    )
    fit = (edges >= 70) & (edges <= 110)
    sel = np.flatnonzero(fit)
    peak = np.histogram(91.19 + rng.standard_cauchy(3000) * 1.25, edges[sel])[0].astype(float)
    data = FitInput(
        edges[sel],
        peak + rng.poisson(5, len(sel) - 1),
        0.3 * peak + rng.poisson(20, len(sel) - 1),
        (template, edges),
        (template, edges),
    )
    model = Model(data, "template_gauss", background)
    compiled = model.compiled()
    assert compiled is not None
    nll, gradient, _ = compiled
    bkg = BACKGROUNDS[background]
    p = np.array(
        [3000.0, 0.8, 100.0, 300.0, 0.2, 1.3, *[v + 0.01 for v in bkg.start], -0.1, 1.5, *[v - 0.01 for v in bkg.start]]
    )
    assert nll(p) == pytest.approx(model.nll(p), rel=1e-9)
    numeric = np.empty(len(p))
    for k in range(len(p)):
        h = 1e-6 * max(abs(p[k]), 1.0)
        up, down = p.copy(), p.copy()
        up[k] += h
        down[k] -= h
        numeric[k] = (nll(up) - nll(down)) / (2 * h)
    np.testing.assert_allclose(gradient(p), numeric, rtol=1e-5, atol=1e-6)


def test_plots_have_the_analysis_style_and_experiment_label():
    """The summary and fit plots in the configuration's style (a context: matplotlib's settings unchanged) with
    the experiment label of the stacked plots, and the numbers they are given."""
    import io

    import matplotlib

    from framework.config.schema.presentation import PlotStyleSpec
    from framework.extensions.tnp.likelihood import FitInput
    from framework.extensions.tnp.measure import Measurement, Task
    from framework.extensions.tnp.plots import fit_figure, summary_figure
    from framework.present.figure import experiment_label, new_figure

    tnp = load_config(CONFIG).spec.tnp
    assert tnp is not None
    tnp = tnp.model_copy(update={"systematics": {}})
    shape = (len(TNP_ETA_EDGES) - 1, len(TNP_PT_EDGES) - 1)
    rng = np.random.default_rng(5)
    values = {kind: rng.uniform(0.8, 0.99, shape) for kind in ("data", "mc")}
    results = {
        (kind, eff, "nominal"): [Efficiency(float(v), 0.01, 0.02) for v in values[kind].ravel()]
        for kind in values
        for eff in tnp.efficiencies
    }
    m = Measurement(tnp, shape, results, [])
    style = PlotStyleSpec(experiment="CMS", text="Preliminary", com=13)
    before = dict(matplotlib.rcParams)

    summary = summary_figure(m, NAMES[0], style, 1000.0)
    edges = np.linspace(70, 110, 41)
    passed, failed = rng.poisson(100, 40).astype(float), rng.poisson(20, 40).astype(float)
    curves = {
        f"{part}_{side}": rng.uniform(1, 50, 40).tolist()
        for part in ("signal", "background")
        for side in ("pass", "fail")
    }
    task = Task(
        "data", NAMES[0], "nominal", (0, 0), "fit", False, "voigtian", "cms", True, FitInput(edges, passed, failed)
    )
    fit = fit_figure(
        task, Efficiency(0.9, 0.01, 0.01, chi2_ndf=1.1, method="fit", curves=curves), "bin 0", style, 1000.0
    )
    for fig in (summary, fit):
        fig.savefig(io.BytesIO(), format="png", dpi=20)
    assert dict(matplotlib.rcParams) == before

    reference = new_figure(style)
    with matplotlib.style.context(reference.style):
        experiment_label(reference.subplots(), style, 1000.0, data=True)
    expected = [t.get_text() for t in reference.axes[0].texts]
    assert "CMS" in expected and "Preliminary" in expected
    for ax in (summary.axes[0], *fit.axes):
        assert [t.get_text() for t in ax.texts] == expected
        assert ax.xaxis.get_major_ticks()[0]._tickdir == "in"  # CMS style, not matplotlib's default

    ax, rax = summary.axes
    points = {c.lines[0].get_gid(): c.lines[0].get_ydata() for c in [*ax.containers, *rax.containers]}
    np.testing.assert_allclose(points["data:0"], values["data"][0])
    np.testing.assert_allclose(points["mc:1"], values["mc"][1])
    np.testing.assert_allclose(points["sf:2"], values["data"][2] / values["mc"][2])
    fitted = {p.get_gid(): p.get_data().values for p in fit.axes[1].patches}
    np.testing.assert_allclose(fitted["fit"], np.add(curves["signal_fail"], curves["background_fail"]))
    np.testing.assert_allclose(fit.axes[0].containers[0].lines[0].get_ydata(), passed)
