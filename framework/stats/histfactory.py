"""The HistFactory XML export of a StatModel (what ROOT's hist2workspace, TRExFitter and
`pyhf xml2json` read), the same model as workspace.py: `NormFactor mu` on signal samples,
`OverallSys` for lnN and normalisation effects, `HistoSys` for shapes (templates scaled to the
nominal's integral), `StatError` from the histograms' errors when MC statistics are on.

    histfactory/combination.xml          the measurement (POI mu, Lumi 1 and constant)
    histfactory/channels/<channel>.xml   one per channel
    histfactory/histograms.root          <channel>/<sample>, <channel>/<sample>_<syst>Up/Down, <channel>/data

Paths inside the XML are relative to `histfactory/` (run hist2workspace from there, or pass it as
pyhf's rootdir). Interpolation is HistFactory's default there; the pyhf fit uses code4/code4p.
"""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import quoteattr

import numpy as np

from framework.stats.datacard import _th1
from framework.stats.model import Channel, Sample, StatModel
from framework.stats.workspace import MU_BOUNDS, POI

FOLDER = "histfactory"
COMBINATION = "combination.xml"
HISTOGRAMS = "histograms.root"
DATA = "data"


def _element(tag: str, close: bool = True, **attrs: object) -> str:
    text = " ".join(f"{k}={quoteattr(str(v))}" for k, v in attrs.items())
    return f"<{tag} {text}{' /' if close else ''}>"


def _sample(c: Channel, s: Sample, mc_stat: bool) -> list[str]:
    lines = [
        "  "
        + _element(
            "Sample", False, Name=s.name, HistoName=f"{s.name}", HistoPath=f"{c.name}/", NormalizeByTheory="False"
        )
    ]
    if s.signal:
        lines.append("    " + _element("NormFactor", Name=POI, Val=1.0, Low=MU_BOUNDS[0], High=MU_BOUNDS[1]))
    for n in s.norms:
        lines.append("    " + _element("OverallSys", Name=n.name, High=repr(float(n.up)), Low=repr(float(n.down))))
    total = s.nominal.sum()
    for sh in s.shapes:
        up, down = sh.up.sum(), sh.down.sum()
        lines.append(
            "    " + _element("OverallSys", Name=sh.name, High=repr(float(up / total)), Low=repr(float(down / total)))
        )
        lines.append(
            "    "
            + _element(
                "HistoSys",
                Name=sh.name,
                HistoNameHigh=f"{s.name}_{sh.name}Up",
                HistoNameLow=f"{s.name}_{sh.name}Down",
                HistoPathHigh=f"{c.name}/",
                HistoPathLow=f"{c.name}/",
            )
        )
    if mc_stat:
        lines.append("    " + _element("StatError", Activate="True"))
    return [*lines, "  </Sample>"]


def channel_xml(c: Channel, mc_stat: bool, note: str = "") -> str:
    lines = [
        "<!DOCTYPE Channel SYSTEM '../HistFactorySchema.dtd'>",
        *([f"<!-- {note} -->"] if note else []),
        _element("Channel", False, Name=c.name, InputFile=HISTOGRAMS),
        "  " + _element("Data", HistoName=DATA, HistoPath=f"{c.name}/"),
    ]
    if mc_stat:  # every bin's MC uncertainty gets its parameter, as in pyhf's staterror
        lines.append("  " + _element("StatErrorConfig", RelErrorThreshold="0.0", ConstraintType="Gaussian"))
    for s in c.samples:
        lines += _sample(c, s, mc_stat)
    return "\n".join([*lines, "</Channel>"]) + "\n"


def combination_xml(model: StatModel) -> str:
    inputs = [f"  <Input>channels/{c.name}.xml</Input>" for c in model.channels]
    return (
        "\n".join(
            [
                "<!DOCTYPE Combination SYSTEM 'HistFactorySchema.dtd'>",
                _element("Combination", False, OutputFilePrefix="results/histfactory"),
                *inputs,
                "  " + _element("Measurement", False, Name="measurement", Lumi="1.0", LumiRelErr="0.01"),
                f"    <POI>{POI}</POI>",
                '    <ParamSetting Const="True">Lumi</ParamSetting>',
                "  </Measurement>",
                "</Combination>",
            ]
        )
        + "\n"
    )


def _histograms(model: StatModel) -> dict[str, object]:
    out: dict[str, object] = {}
    for c in model.channels:
        for s in c.samples:
            out[f"{c.name}/{s.name}"] = _th1(c.edges, c.observable, s.nominal, s.variance)
            total = s.nominal.sum()
            for sh in s.shapes:
                for tag, t in (("Up", sh.up), ("Down", sh.down)):
                    shape = t * (total / t.sum()) if t.sum() > 0 else s.nominal
                    out[f"{c.name}/{s.name}_{sh.name}{tag}"] = _th1(c.edges, c.observable, shape, np.zeros_like(shape))
        out[f"{c.name}/{DATA}"] = _th1(c.edges, c.observable, c.data, c.data)
    return out


def write_histfactory(folder: Path, model: StatModel) -> list[str]:
    """`folder/histfactory/...`; the file names written, relative to `folder`."""
    import shutil

    import pyhf.schema
    import uproot

    root = folder / FOLDER
    (root / "channels").mkdir(parents=True)
    shutil.copyfile(Path(pyhf.schema.path) / "HistFactorySchema.dtd", root / "HistFactorySchema.dtd")
    with uproot.recreate(root / HISTOGRAMS) as f:
        for key, h in _histograms(model).items():
            f[key] = h
    for c in model.channels:
        (root / "channels" / f"{c.name}.xml").write_text(channel_xml(c, model.mc_stat, model.mirrored_note()))
    (root / COMBINATION).write_text(combination_xml(model))
    return [FOLDER]
