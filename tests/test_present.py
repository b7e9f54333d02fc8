"""`run-analysis plot` and `export` on the demo: the numbers drawn, tabulated and exported equal
sums computed here straight from the output files (zipfile + uhi + hist + numpy), the report
page renders in headless Chromium, and bad inputs are refused with their place."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import correctionlib
import hist
import numpy as np
import pytest
import uhi.io.zip
import uproot

from framework.app.cli import main
from framework.app.notebook import Analysis
from framework.config.load import load_config
from framework.errors import ConfigError, FrameworkError, InputError
from framework.execute.pipeline import RunOptions, execute
from framework.present.commands import make_exports, make_report, prepare_presentation
from framework.present.plotting import draw, plot_data, poisson_interval
from framework.present.results import load_histograms

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "analyses" / "demo" / "config.yaml"
CHROMIUM = Path("/usr/bin/chromium")
# where the report test leaves its screenshot for a person to look at (in its temporary folder by default)
ARTIFACTS = os.environ.get("TEST_ARTIFACTS")
SYSTEMATICS = ["scale", "isr", "pileup", "jes", "muon_scale", "muon_id"]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("demo")
    execute(RunOptions(config=DEMO, output=folder / "out"))
    make_report(DEMO, folder / "out", folder / "plots")
    make_exports(DEMO, folder / "out", folder / "exports")
    return {"out": folder / "out", "plots": folder / "plots", "exports": folder / "exports"}


def _read(out: Path, sample: str, name: str) -> hist.Hist:
    with zipfile.ZipFile(out / f"{sample}.hist.zip") as z:
        return hist.Hist(uhi.io.zip.read(z, name))


def _band(h: hist.Hist) -> tuple[np.ndarray, np.ndarray]:
    """Quadrature of per-systematic shifts of a 1D x systematic histogram, computed independently."""
    entries = list(h.axes["systematic"])
    values = h.values()
    nominal = values[:, entries.index("nominal")]
    up2 = np.zeros_like(nominal)
    down2 = np.zeros_like(nominal)
    for name in SYSTEMATICS:
        if f"{name}Up" in entries:
            members = [entries.index(f"{name}Up"), entries.index(f"{name}Down")]
            variations = values[:, members]
        else:
            members = [i for i, e in enumerate(entries) if e.startswith(f"{name}_")]
            variations = np.stack([values[:, members].max(axis=1), values[:, members].min(axis=1)], axis=1)
        d = variations - nominal[:, None]
        up2 += np.clip(d.max(axis=1), 0, None) ** 2
        down2 += np.clip(-d.min(axis=1), 0, None) ** 2
    return nominal + np.sqrt(up2), nominal - np.sqrt(down2)


def test_stacked_plot_numbers_equal_output_sums(demo_run):
    out = demo_run["out"]
    drawn = json.loads((demo_run["plots"] / "plots" / "ht__channel-mumu.json").read_text())
    dy = _read(out, "zmumu", "ht")[{"channel": "mumu", "nbtag": sum}]
    tt = _read(out, "ttbar", "ht")[{"channel": "mumu", "nbtag": sum}]
    data = _read(out, "data", "ht")[{"channel": "mumu", "nbtag": sum, "systematic": "nominal"}]
    assert drawn["processes"] == ["DY", "ttbar"]
    np.testing.assert_allclose(drawn["stack"][0], dy[{"systematic": "nominal"}].values(), rtol=1e-12)
    np.testing.assert_allclose(drawn["stack"][1], tt[{"systematic": "nominal"}].values(), rtol=1e-12)
    total = dy + tt
    np.testing.assert_allclose(drawn["total"], total[{"systematic": "nominal"}].values(), rtol=1e-12)
    up, down = _band(total)
    np.testing.assert_allclose(drawn["syst_up"], up, rtol=1e-10)
    np.testing.assert_allclose(drawn["syst_down"], down, rtol=1e-10)
    stat = np.sqrt(total[{"systematic": "nominal"}].variances())
    np.testing.assert_allclose(np.array(drawn["stat_up"]) - drawn["total"], stat, rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(drawn["data"], data.values())
    assert not any(drawn["blinded"])
    low, high = np.array(drawn["data_low"]), np.array(drawn["data_high"])
    np.testing.assert_allclose((low, high), poisson_interval(data.values()))


def test_poisson_interval_is_garwood():
    # the 68.3% central intervals tabulated for n = 0, 1, 4 (as ROOT's kPoisson error option gives)
    low, high = poisson_interval(np.array([0.0, 1.0, 4.0]))
    np.testing.assert_allclose(low, [0.0, 0.1728, 2.0856], atol=1e-4)
    np.testing.assert_allclose(high, [1.8410, 3.2995, 7.1628], atol=1e-4)


def test_figure_draws_what_the_side_car_says(demo_run):
    p = prepare_presentation(DEMO, demo_run["out"])
    view = next(v for v in p.presentation.views if v.name == "mll")
    d = plot_data(p.outputs, p.presentation, view)
    fig = draw(d, p.config.spec.style)
    ax = fig.axes[0]
    patches = {a.get_gid(): a for a in ax.patches}
    top = patches["stack:$t\\bar{t}$"].get_data()
    np.testing.assert_allclose(top.values, np.add(d.stack[0], d.stack[1]))
    np.testing.assert_allclose(top.baseline, d.stack[0])
    syst = patches["syst"].get_data()
    np.testing.assert_allclose(syst.values, d.syst_up)
    np.testing.assert_allclose(syst.baseline, d.syst_down)
    points = next(c for c in ax.containers if c.get_label() == "Data")
    np.testing.assert_allclose(points.lines[0].get_ydata(), d.data)
    assert [t.get_text() for t in ax.get_legend().get_texts()][:2] == ["Drell-Yan", "$t\\bar{t}$"]


def test_notebook_plot_draws_what_the_command_drew(demo_run):
    """`Analysis.plot` with the keys of a `plots:` entry draws the numbers `run-analysis plot` wrote for it."""
    drawn = json.loads((demo_run["plots"] / "plots" / "ht_ljets__nbtag-2.json").read_text())
    analysis = Analysis.from_yaml(DEMO)
    fig = analysis.plot(demo_run["out"], "ht", slices={"channel": "ljets", "nbtag": 2}, rebin=5)
    ax = fig.axes[0]
    patches = {a.get_gid(): a for a in ax.patches}
    np.testing.assert_allclose(patches["total"].get_data().values, drawn["total"], rtol=1e-12)
    syst = patches["syst"].get_data()
    np.testing.assert_allclose((syst.values, syst.baseline), (drawn["syst_up"], drawn["syst_down"]), rtol=1e-12)
    points = next(c for c in ax.containers if c.get_label() == "Data")
    np.testing.assert_array_equal(points.lines[0].get_ydata(), drawn["data"])
    assert ax.get_ylabel() == drawn["ylabel"] == "Events / 200 GeV" and not drawn["per_width"]
    assert fig.axes[-1].get_xlabel() == "$H_T$ [GeV]"
    with pytest.raises(ConfigError, match=r"histogram 'htt' is not declared\n.*did you mean 'ht'"):
        analysis.plot(demo_run["out"], "htt")
    with pytest.raises(ConfigError, match=r"slices=\{'nbtag': 'each'\} makes 4 plots; plot\(\) draws one"):
        analysis.plot(demo_run["out"], "ht", slices={"nbtag": "each"})
    with pytest.raises(ConfigError, match=r"argument rebin: Input should be greater than or equal to 2"):
        analysis.plot(demo_run["out"], "ht", rebin=1)


def test_blinded_region_hides_data(demo_run):
    plots = demo_run["plots"] / "plots"
    blind = json.loads((plots / "ht_ljets__nbtag-3.json").read_text())
    assert all(blind["blinded"]) and all(np.isnan(blind["data"]))
    # the l+jets plot summed over nbtag holds the blinded events: hidden too
    assert all(json.loads((plots / "ht__channel-ljets.json").read_text())["blinded"])
    shown = json.loads((plots / "ht_ljets__nbtag-2.json").read_text())
    assert not any(shown["blinded"])
    data = _read(demo_run["out"], "data", "ht")[{"channel": "ljets", "nbtag": 2, "systematic": "nominal"}]
    np.testing.assert_array_equal(shown["data"], data.values().reshape(-1, 5).sum(axis=1))  # rebin 5


def test_yields_and_cutflow_tables(demo_run):
    tables = demo_run["plots"] / "tables"
    rows = {(r[0], r[1]): r for r in (line.split(",") for line in (tables / "yields.csv").read_text().splitlines()[1:])}
    header = (tables / "yields.csv").read_text().splitlines()[0].split(",")
    yields = {s: _read(demo_run["out"], s, "yields")[{"systematic": "nominal"}] for s in ("zmumu", "ttbar", "data")}
    assert float(rows["mumu", "1"][header.index("Drell-Yan")]) == pytest.approx(
        yields["zmumu"][{"channel": "mumu", "nbtag": 1}].value, rel=1e-12
    )
    assert float(rows["mumu", "1"][header.index("Drell-Yan stat")]) == pytest.approx(
        np.sqrt(yields["zmumu"][{"channel": "mumu", "nbtag": 1}].variance), rel=1e-12
    )
    assert int(rows["ljets", "2"][header.index("Data")]) == yields["data"][{"channel": "ljets", "nbtag": 2}].value
    assert rows["ljets", ">= 3"][header.index("Data")] == "blinded"
    assert rows["all", "all"][header.index("Data")] == "blinded"
    total = yields["zmumu"].sum(flow=True).value + yields["ttbar"].sum(flow=True).value
    assert float(rows["all", "all"][header.index("Total simulation")]) == pytest.approx(total, rel=1e-12)
    # the cutflow's last weighted row equals the yields summed over categories
    with zipfile.ZipFile(demo_run["out"] / "ttbar.hist.zip") as z:
        cutflow = json.loads(z.read("cutflow.json"))
    lines = [line.split(",") for line in (tables / "cutflow.csv").read_text().splitlines()[1:]]
    ttbar = [line for line in lines if line[0] == "ttbar"]
    assert [int(line[2]) for line in ttbar] == [r["events"] for r in cutflow]
    assert float(ttbar[1][3]) == pytest.approx(cutflow[1]["events"] / cutflow[0]["events"])
    assert float(ttbar[-1][5]) == pytest.approx(yields["ttbar"].sum(flow=True).value, rel=1e-12)
    for suffix in ("md", "tex"):
        assert "blinded" in (tables / f"yields.{suffix}").read_text()


def test_combine_shapes_read_back_equal_projections(demo_run):
    with uproot.open(demo_run["exports"] / "ht_shapes.root") as f:
        for sample, process in (("zmumu", "DY"), ("ttbar", "ttbar")):
            h = _read(demo_run["out"], sample, "ht")[{"channel": "ljets", "nbtag": 1}][hist.rebin(5), :]
            np.testing.assert_allclose(f[f"ljets_1/{process}"].values(), h[:, "nominal"].values(), rtol=1e-12)
            np.testing.assert_allclose(f[f"ljets_1/{process}"].variances(), h[:, "nominal"].variances(), rtol=1e-12)
            np.testing.assert_allclose(f[f"ljets_1/{process}_jesUp"].values(), h[:, "jesUp"].values(), rtol=1e-12)
            scale = np.stack([h[:, f"scale_{i}"].values() for i in (0, 1, 3, 5, 7, 8)])
            np.testing.assert_allclose(f[f"ljets_1/{process}_scaleDown"].values(), scale.min(axis=0), rtol=1e-12)
            np.testing.assert_allclose(f[f"ljets_1/{process}"].axis().edges(), h.axes[0].edges)
        data = _read(demo_run["out"], "data", "ht")[{"channel": "ljets", "nbtag": 1, "systematic": "nominal"}]
        np.testing.assert_allclose(f["ljets_1/data_obs"].values(), data[hist.rebin(5)].values())
        # the blinded channel gets the simulation total (Asimov) as data_obs
        asimov = f["ljets_3/DY"].values() + f["ljets_3/ttbar"].values()
        np.testing.assert_allclose(f["ljets_3/data_obs"].values(), asimov)


def test_correction_export_evaluates_to_the_ratio(demo_run):
    cset = correctionlib.CorrectionSet.from_file(str(demo_run["exports"] / "corrections.json"))
    select = {"channel": "ljets", "nbtag": slice(0, 3, sum), "systematic": "nominal"}
    data = _read(demo_run["out"], "data", "ht")[select]
    mc = _read(demo_run["out"], "zmumu", "ht")[select] + _read(demo_run["out"], "ttbar", "ht")[select]
    centres = data.axes[0].centers
    expected = np.where(mc.values() > 0, data.values() / np.where(mc.values() > 0, mc.values(), 1), 1.0)
    got = np.array([cset["ht_data_mc"].evaluate(float(x)) for x in centres])
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert cset["ht_data_mc"].evaluate(5000.0) == pytest.approx(expected[-1])  # clamped beyond the range


def test_python_access_by_process(demo_run):
    hists = load_histograms(demo_run["out"], by="process")
    assert set(hists) == {"DY", "ttbar", "data"}
    h = hists["ttbar"]["ht"][{"systematic": "jesUp", "nbtag": sum}].project("HT")
    expected = _read(demo_run["out"], "ttbar", "ht")[{"systematic": "jesUp", "nbtag": sum}].project("HT")
    np.testing.assert_allclose(h.values(), expected.values())
    assert "zmumu" in load_histograms(demo_run["out"])


def test_report_page_renders_in_headless_chromium(demo_run):
    if not CHROMIUM.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(".ci/run installs Debian's chromium; it is missing")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    page_path = demo_run["plots"] / "index.html"
    flags = [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
    ]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=flags)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        problems: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.on("requestfailed", lambda r: problems.append(f"failed: {r.url}"))
        page.goto(page_path.as_uri())
        page.wait_for_load_state("load")
        images = page.evaluate("Array.from(document.images).map(i => [i.src, i.complete && i.naturalWidth > 0])")
        tables = page.evaluate(
            "Array.from(document.querySelectorAll('table')).map(t => [t.id, t.rows.length, t.offsetHeight])"
        )
        artifacts = Path(ARTIFACTS) if ARTIFACTS else demo_run["plots"].parent / "artifacts"
        artifacts.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(artifacts / "report.png"), full_page=True)
        browser.close()
    assert problems == []
    assert len(images) == len(list((demo_run["plots"] / "plots").glob("*.png"))) == 14
    assert all(ok for _, ok in images), [src for src, ok in images if not ok]
    rendered = {name: (rows, height) for name, rows, height in tables if name}
    assert set(rendered) == {"yields", "cutflow", "systematics"}
    assert all(rows > 2 and height > 0 for rows, height in rendered.values())


def test_outputs_of_two_configurations_are_refused(demo_run, tmp_path, write_config, generated):
    mixed = tmp_path / "mixed"
    shutil.copytree(demo_run["out"], mixed)
    other = write_config(
        f"""
        analysis: other
        lumi: 1.0
        samples:
          zmumu: {{files: ["{generated["zmumu"]}"], xsec: 1.0}}
        histograms:
          met: {{axes: [{{expr: MET_pt, bins: 10, range: [0, 100]}}]}}
        """
    )
    execute(RunOptions(config=other, output=tmp_path / "other"))
    shutil.copy(tmp_path / "other" / "zmumu.hist.zip", mixed / "zmumu.hist.zip")
    with pytest.raises(InputError, match=r"zmumu.hist.zip was made by another configuration"):
        make_report(DEMO, mixed, tmp_path / "plots")
    assert not (tmp_path / "plots").exists()
    (mixed / "zmumu.hist.zip").unlink()
    with pytest.raises(InputError, match=r"no output for sample\(s\) zmumu"):
        make_report(DEMO, mixed, tmp_path / "plots")


def test_cli_plot_error_exits_nonzero_without_output(demo_run, tmp_path, capsys):
    config = tmp_path / "config.yaml"
    text = (
        DEMO.read_text()
        .replace("../../", str(REPO) + "/")
        .replace("channel: each}, log: true}", "channel: eech}, log: true}")
    )
    config.write_text(text)
    rc = main(["plot", str(config), "-i", str(demo_run["out"]), "-o", str(tmp_path / "plots")])
    err = capsys.readouterr().err
    assert rc == 2
    assert "plots.ht.slices.channel: 'eech' is not a category of 'channel'" in err
    assert not (tmp_path / "plots").exists()


def _plot_from_shell(outputs: Path, target: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "framework", "plot", str(DEMO), "-i", str(outputs), "-o", str(target)]
    return subprocess.run(command, capture_output=True, text=True, check=False)


def test_plot_command_from_the_shell(demo_run, tmp_path):
    proc = _plot_from_shell(demo_run["out"], tmp_path / "p")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "p" / "index.html").is_file() and (tmp_path / "p" / "plots" / "mll.pdf").is_file()
    # a folder the command did not make is never replaced
    proc = _plot_from_shell(demo_run["out"], REPO / "tests")
    assert proc.returncode != 0 and "was not made by run-analysis" in proc.stderr


def test_presentation_is_checked_before_the_event_loop(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(DEMO.read_text().replace("../../", str(REPO) + "/").replace("ttbar: {label", "ttbarr: {label"))
    with pytest.raises(FrameworkError, match=r"process 'ttbarr' has no samples(.|\n)*did you mean 'ttbar'") as info:
        execute(RunOptions(config=config, output=tmp_path / "out"))
    assert info.value.location.key == "processes.ttbarr"
    assert not (tmp_path / "out").exists()
    assert load_config(DEMO).spec.plots["ht"].log
