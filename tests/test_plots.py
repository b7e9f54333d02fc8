"""What a stacked plot draws, read back from the figure's artists (numbers, not images): events per bin width
on variable bins, signal lines, the style kept out of matplotlib's global settings, labels rendered as math,
and the signal options' errors with their YAML place. The outputs are `hist` objects made here: no event loop."""

from __future__ import annotations

import io
import logging
import re
from pathlib import Path
from typing import Any

import hist
import matplotlib
import numpy as np
import pytest
from matplotlib.artist import Artist
from matplotlib.mathtext import MathTextParser

from framework.config.load import load_config
from framework.errors import ConfigError
from framework.output.format import Provenance
from framework.present.plotting import PlotData, draw, events_label, plot_data
from framework.present.results import RunOutputs, SampleOutput
from framework.present.views import check_label, make_presentation

REPO = Path(__file__).resolve().parent.parent
EDGES = [0.0, 10.0, 30.0, 60.0, 100.0]  # variable bins
ENTRIES = ["nominal", "jesUp", "jesDown"]

CONFIG = """
analysis: plots
lumi: 1000.0
samples:
  bkg: {files: [none.root], xsec: 1.0}
  tth: {files: [none.root], xsec: 1.0, process: ttH}
  data: {files: [none.root], is_data: true}
processes:
  ttH: {label: "$t\\\\bar{t}H$", color: "#e42536"}
  bkg: {label: "Background", color: "#5790fc"}
histograms:
  pt: {axes: [{expr: x, name: pt, edges: [0, 10, 30, 60, 100], label: "$p_T$ [GeV]"}]}
  ht: {axes: [{expr: y, name: ht, bins: 4, range: [0, 160], label: "$H_T$ [GeV]"}]}
plots:
  pt: {histogram: pt}
  ht: {histogram: ht}
  ht_signal: {histogram: ht, signal: {processes: [ttH], stack: false, scale: 10}}
"""

# per sample: (process, is data, nominal, jesUp, jesDown, variance) of both histograms (4 bins each)
CONTENTS = {
    "bkg": ("bkg", False, [40.0, 90.0, 60.0, 20.0], [44.0, 95.0, 66.0, 23.0], [37.0, 86.0, 55.0, 18.0], 0.25),
    "tth": ("ttH", False, [1.0, 4.0, 6.0, 2.0], [1.1, 4.4, 6.6, 2.2], [0.9, 3.6, 5.4, 1.8], 0.01),
    "data": ("data", True, [45.0, 97.0, 70.0, 19.0], [45.0, 97.0, 70.0, 19.0], [45.0, 97.0, 70.0, 19.0], 1.0),
}


def _hist(axis: Any, nominal: list[float], up: list[float], down: list[float], variance: float) -> hist.Hist:
    h = hist.Hist(axis, hist.axis.StrCategory(ENTRIES, name="systematic"), storage=hist.storage.Weight())
    view: Any = h.view()
    view.value = np.stack([nominal, up, down], axis=1)
    view.variance = np.full((4, 3), variance)
    return h


def _outputs(folder: Path) -> RunOutputs:
    """The run's outputs as `load_outputs` would return them, made in memory."""
    samples = {}
    for name, (process, is_data, nominal, up, down, variance) in CONTENTS.items():
        provenance = Provenance(
            config="config.yaml",
            config_hash="0" * 64,
            cpp_hash="",
            versions={},
            command=[],
            threads=1,
            systematics=["jes"],
            sample=name,
            process=process,
            is_data=is_data,
            era=None,
            files=[],
            skipped_files=[],
            events_read=0,
            entry_limit=None,
            entry_ranges=None,
            file_identities={},
            xsec_pb=None,
            lumi_inv_pb=1000.0,
            sum_gen_weights=None,
            declared_sum_weights=None,
            normalisation=1.0,
            normalised=True,
        )
        histograms = {
            "pt": _hist(hist.axis.Variable(EDGES, name="pt", label="$p_T$ [GeV]"), nominal, up, down, variance),
            "ht": _hist(hist.axis.Regular(4, 0, 160, name="ht", label="$H_T$ [GeV]"), nominal, up, down, variance),
        }
        samples[name] = SampleOutput(name, folder / f"{name}.hist.zip", provenance, [], histograms)
    return RunOutputs(folder, samples)


@pytest.fixture
def plotted(tmp_path: Path, write_config) -> dict[str, PlotData]:
    config = load_config(write_config(CONFIG))
    presentation = make_presentation(config, parse_math=True)
    outputs = _outputs(tmp_path)
    return {view.name: plot_data(outputs, presentation, view) for view in presentation.views}


def _patches(fig: Any, panel: int = 0) -> dict[str, Any]:
    return {p.get_gid(): p for p in fig.axes[panel].patches}


def _data_points(ax: Any, gid: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centre values and the low and high ends of the error bars of an errorbar container."""
    container = next(c for c in ax.containers if c.lines[0].get_gid() == gid)
    y = np.asarray(container.lines[0].get_ydata(), dtype=float)
    segments = container.lines[2][0].get_segments()
    return y, np.array([s[0][1] for s in segments]), np.array([s[1][1] for s in segments])


def test_variable_bins_are_drawn_as_events_per_unit_width(plotted):
    d = plotted["pt"]
    widths = np.diff(EDGES)
    assert d.per_width and d.ylabel == "Events / GeV"
    fig = draw(d, load_style())
    patches = _patches(fig)
    bkg, tth, data = (np.asarray(CONTENTS[s][2]) for s in ("bkg", "tth", "data"))
    assert d.processes == ["ttH", "bkg"]  # the order of 'processes:', first at the bottom
    np.testing.assert_allclose(patches["stack:$t\\bar{t}H$"].get_data().values, tth / widths)
    top = patches["stack:Background"].get_data()
    np.testing.assert_allclose((top.values, top.baseline), ((bkg + tth) / widths, tth / widths))
    np.testing.assert_allclose(patches["total"].get_data().values, (bkg + tth) / widths)
    # the bands: jesUp of both processes above the nominal, jesDown below; the statistical one sqrt(sum var)
    up = np.asarray(CONTENTS["bkg"][3]) + CONTENTS["tth"][3]
    down = np.asarray(CONTENTS["bkg"][4]) + CONTENTS["tth"][4]
    syst = patches["syst"].get_data()
    np.testing.assert_allclose((syst.values, syst.baseline), (up / widths, down / widths))
    stat = patches["stat"].get_data()
    np.testing.assert_allclose(stat.values - (bkg + tth) / widths, np.sqrt(0.25 + 0.01) / widths)
    y, low, high = _data_points(fig.axes[0], "data")
    np.testing.assert_allclose(y, data / widths)
    np.testing.assert_allclose((low, high), (np.asarray(d.data_low) / widths, np.asarray(d.data_high) / widths))
    assert fig.axes[0].get_ylabel() == "Events / GeV"
    # the ratio panel is the same as with events per bin: data / total, band / total
    ratio, _, _ = _data_points(fig.axes[1], "ratio:data")
    np.testing.assert_allclose(ratio, data / (bkg + tth))
    np.testing.assert_allclose(_patches(fig, 1)["ratio:syst"].get_data().values, up / (bkg + tth))


def test_uniform_bins_show_events_per_bin_with_the_width_in_the_label(plotted):
    d = plotted["ht"]
    assert not d.per_width and d.ylabel == "Events / 40 GeV"
    fig = draw(d, load_style())
    total = np.asarray(CONTENTS["bkg"][2]) + CONTENTS["tth"][2]
    np.testing.assert_allclose(_patches(fig)["total"].get_data().values, total)
    assert events_label("$m_{\\mu\\mu}$ [GeV]", [60, 60.5, 61], False) == ("Events / 0.5 GeV", False)
    assert events_label("b-tag discriminant", [0, 0.1, 0.2], False) == ("Events / 0.1", False)
    assert events_label("b-tag discriminant", [0, 0.1, 0.5], False) == ("Events / bin width", True)
    assert events_label("number of jets", [0, 1, 2], True) == ("Events", False)


def test_unstacked_signal_is_a_scaled_line_outside_the_total_and_ratio(plotted):
    d = plotted["ht_signal"]
    bkg, tth, data = (np.asarray(CONTENTS[s][2]) for s in ("bkg", "tth", "data"))
    assert d.processes == ["bkg"] and [line.process for line in d.lines] == ["ttH"]
    np.testing.assert_allclose(d.total, bkg)
    np.testing.assert_allclose(d.syst_up, CONTENTS["bkg"][3])
    fig = draw(d, load_style())
    patches = _patches(fig)
    assert "stack:$t\\bar{t}H$" not in patches
    np.testing.assert_allclose(patches["signal:ttH"].get_data().values, 10 * tth)
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "$t\\bar{t}H$ $\\times$ 10" in legend
    ratio, _, _ = _data_points(fig.axes[1], "ratio:data")
    np.testing.assert_allclose(ratio, data / bkg)


def test_stacked_signal_goes_on_top_and_can_also_be_a_line(tmp_path, write_config):
    """`processes:` puts ttH first (bottom of the stack); as the signal it is stacked last, on top."""
    text = CONFIG.replace(
        "processes:\n", "style:\n  signal: {processes: [ttH], line: true, scale: 20}\nprocesses:\n", 1
    )
    config = load_config(write_config(text))
    presentation = make_presentation(config)
    view = next(v for v in presentation.views if v.name == "ht")
    d = plot_data(_outputs(tmp_path), presentation, view)
    assert d.processes == ["bkg", "ttH"]
    bkg, tth = np.asarray(CONTENTS["bkg"][2]), np.asarray(CONTENTS["tth"][2])
    fig = draw(d, load_style())
    patches = _patches(fig)
    np.testing.assert_allclose(patches["stack:$t\\bar{t}H$"].get_data().baseline, bkg)
    np.testing.assert_allclose(patches["signal:ttH"].get_data().values, 20 * tth)
    # a plot's own signal block replaces the style's
    unstacked = next(v for v in presentation.views if v.name == "ht_signal")
    assert unstacked.signal is not None and (unstacked.signal.stack, unstacked.signal.scale) == (False, 10)


@pytest.mark.parametrize(
    ("block", "message", "key", "line"),
    [
        ("{processes: [tth], stack: false}", r"process 'tth' has no samples\n.*did you mean 'ttH'", "processes[0]", 16),
        ("{processes: [ttH], scale: 10}", r"'scale' applies to the signal's line.*line: true", "", 16),
        ("{processes: [ttH], stack: false, line: false}", r"the signal is not drawn", "", 16),
        ("{stack: false}", r"no processes and there is no 'model.signal'", "", 16),
        ("{processes: [ttH], scale: -1}", r"greater than 0", "scale", 16),
    ],
    ids=["misspelt", "scale-of-stack", "not-drawn", "no-model", "negative-scale"],
)
def test_signal_mistakes_name_their_place(write_config, block, message, key, line):
    text = CONFIG.replace("  ht_signal: {histogram: ht, signal: {processes: [ttH], stack: false, scale: 10}}", "")
    text = text.rstrip() + f"\n  ht_bad: {{histogram: ht, signal: {block}}}\n"
    with pytest.raises(ConfigError, match=message) as info:
        make_presentation(load_config(write_config(text)))
    where = info.value.location
    assert where is not None and where.line == line and where.key == "plots.ht_bad.signal" + (f".{key}" if key else "")


def test_signal_defaults_to_the_models(write_config):
    text = CONFIG + "model:\n  channels: {c: {histogram: ht}}\n  signal: [ttH]\n"
    text = text.replace("signal: {processes: [ttH], stack: false, scale: 10}", "signal: {stack: false, scale: 10}")
    presentation = make_presentation(load_config(write_config(text)))
    view = next(v for v in presentation.views if v.name == "ht_signal")
    assert view.signal is not None and view.signal.processes == ("ttH",)


def load_style() -> Any:
    from framework.config.schema.presentation import PlotStyleSpec

    return PlotStyleSpec(experiment="CMS", text="Simulation", com=13)


class _RcProbe(Artist):
    """Records, when drawn, the rcParams the figure is drawn with."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, str]] = []

    def draw(self, renderer: Any) -> None:
        self.seen.append((matplotlib.rcParams["mathtext.fontset"], matplotlib.rcParams["mathtext.rm"]))


def test_plotting_leaves_matplotlib_settings_and_pyplot_alone(plotted):
    import matplotlib.pyplot as plt

    before, figures = dict(matplotlib.rcParams), plt.get_fignums()
    fig = draw(plotted["pt"], load_style())
    probe = _RcProbe()
    fig.add_artist(probe)
    fig.savefig(io.BytesIO(), format="png", dpi=20)
    assert dict(matplotlib.rcParams) == before and plt.get_fignums() == figures
    # drawn (saved here; shown by a notebook later) inside mplhep's CMS style, which is not the default
    assert probe.seen == [("custom", "TeX Gyre Heros")] and before["mathtext.fontset"] != "custom"
    assert fig.axes[0].xaxis.get_major_ticks()[0]._tickdir == "in"  # the style's, not matplotlib's "out"
    assert fig.get_size_inches().tolist() == [10.0, 10.0]


def _glyphs(text: str) -> str:
    """The characters matplotlib's mathtext lays out for a label (math between $...$ rendered)."""
    return "".join(chr(g[2]) for g in MathTextParser("path").parse(text).glyphs)


def test_labels_render_as_math(plotted, caplog):
    fig = draw(plotted["pt"], load_style())
    label = fig.axes[-1].get_xlabel()
    assert label == "$p_T$ [GeV]"
    assert _glyphs(label).replace(" ", "") == "pT[GeV]"
    (_, size_p, _, _, _, y_p), (_, size_t, _, _, _, y_t) = MathTextParser("path").parse(label).glyphs[:2]
    assert size_t < size_p and y_t < y_p  # T is a subscript: smaller and lower
    assert "_" in _glyphs("p_T [GeV]")  # without $...$ the underscore shows as written
    with pytest.raises(ConfigError, match=r"unpaired '\$'"):
        check_label("$p_T [GeV]", None)
    with pytest.raises(ConfigError, match=r"not valid math: Unknown symbol: \\pT"):
        check_label("$\\pT$ [GeV]", None)
    with caplog.at_level(logging.WARNING):
        check_label("H_T [GeV]", None)
        check_label("$H_T$ [GeV], cost in \\$", None)
    assert [r.getMessage() for r in caplog.records] == [
        "label 'H_T [GeV]' has '_' or '^' outside $...$ and shows them as written; for a sub- or superscript "
        + "write math, e.g. '$p_T$ [GeV]'"
    ]


def test_shipped_labels_are_math_where_they_need_it(caplog):
    """Every label of the shipped analyses parses as mathtext and has no sub- or superscript outside $...$."""
    with caplog.at_level(logging.WARNING, logger="framework.present.views"):
        for config in sorted((REPO / "analyses").glob("*/config.yaml")):
            make_presentation(load_config(config), parse_math=True)
    assert not caplog.records, [r.getMessage() for r in caplog.records]
    demo = load_config(REPO / "analyses" / "demo" / "config.yaml").spec.histograms
    labels = {name: h.axes[0].label for name, h in demo.items() if not isinstance(h.axes[0], str)}
    assert labels["ht"] == "$H_T$ [GeV]" and labels["mll"] == "$m_{\\mu\\mu}$ [GeV]"
    assert all(not re.search(r"[_^]", _glyphs(label)) for label in labels.values() if label)


def test_a_bad_label_is_refused_with_its_place(write_config):
    text = CONFIG.replace('label: "$H_T$ [GeV]"', 'label: "$H_{T$ [GeV]"')
    with pytest.raises(
        ConfigError, match=r"label '\$H_\{T\$ \[GeV\]' is not valid math: Expected end_group, found end of text\n"
    ) as info:
        make_presentation(load_config(write_config(text)), parse_math=True)
    assert info.value.location is not None and info.value.location.line == 12
    assert info.value.location.key == "histograms.ht.axes[0].label"
