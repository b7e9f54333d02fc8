"""A CMS combine datacard and its shapes file (TH1s written with uproot) from a StatModel.

    shapes * * shapes.root $CHANNEL/$PROCESS $CHANNEL/$PROCESS_$SYSTEMATIC

Process indices: signal 0, -1, ...; background 1, 2, .... Rates are the templates' integrals;
`lnN` lines carry the normalisation uncertainties (down/up when asymmetric), `shape` lines the
systematics whose templates are in the file; `* autoMCStats 0` when MC statistics are on. A comment
names the one-sided systematics whose Down templates are mirrored.
"""

from __future__ import annotations

from pathlib import Path

import hist
import numpy as np

from framework.stats.model import StatModel

DATA_OBS = "data_obs"
SHAPES = "shapes.root"
DATACARD = "datacard.txt"


def _th1(edges: np.ndarray, name: str, values: np.ndarray, variances: np.ndarray) -> hist.Hist:
    h = hist.Hist(hist.axis.Variable(edges, name=name, label=name), storage=hist.storage.Weight())
    view = h.view()
    view.value = values
    view.variance = variances
    return h


def shapes(model: StatModel) -> dict[str, hist.Hist]:
    """{'channel/process': TH1-like hist}, with `process_<syst>Up/Down` and `data_obs` per channel."""
    out: dict[str, hist.Hist] = {}
    for c in model.channels:
        for s in c.samples:
            out[f"{c.name}/{s.name}"] = _th1(c.edges, c.observable, s.nominal, s.variance)
            for shape in s.shapes:
                out[f"{c.name}/{s.name}_{shape.name}Up"] = _th1(c.edges, c.observable, shape.up, s.variance)
                out[f"{c.name}/{s.name}_{shape.name}Down"] = _th1(c.edges, c.observable, shape.down, s.variance)
        out[f"{c.name}/{DATA_OBS}"] = _th1(c.edges, c.observable, c.data, c.data)
    return out


def _kappa(up: float, down: float) -> str:
    if abs(up * down - 1.0) < 1e-9:
        return f"{up:.6g}"
    return f"{down:.6g}/{up:.6g}"


def _nuisances(model: StatModel) -> list[tuple[str, str, list[str]]]:
    """(name, lnN or shape, one entry per channel and process). A systematic is 'shape' or 'norm' (lnN)
    for every process (declare.py), and names of lnN uncertainties and systematics differ."""
    columns = [(c, s) for c in model.channels for s in c.samples]
    names: dict[str, str] = {}
    for _, s in columns:
        for n in s.norms:
            names.setdefault(n.name, "lnN")
        for sh in s.shapes:
            names[sh.name] = "shape"
    rows = []
    for name, kind in names.items():
        entries = []
        for _, s in columns:
            norm = next((n for n in s.norms if n.name == name), None)
            shape = any(sh.name == name for sh in s.shapes)
            entries.append("1" if shape else _kappa(norm.up, norm.down) if norm else "-")
        rows.append((name, kind, entries))
    return rows


def datacard(model: StatModel, shapes_file: str = SHAPES) -> str:
    index = {p: -i for i, p in enumerate(model.signal)} | {p: i + 1 for i, p in enumerate(model.background)}
    columns = [(c.name, s) for c in model.channels for s in c.samples]
    nuisances = _nuisances(model)
    width = max(
        12,
        *(len(c.name) + 2 for c in model.channels),
        *(len(p) + 2 for p in model.processes),
        *(len(v) + 2 for _, _, entries in nuisances for v in entries),
    )
    label_width = max([24, *(len(f"{name} {kind}") + 1 for name, kind, _ in nuisances)])

    def row(label: str, values: list[str]) -> str:
        return f"{label:<{label_width}}" + "".join(f"{v:<{width}}" for v in values).rstrip()

    note = model.mirrored_note()
    lines = [
        "# CMS combine datacard made by rdf-analysis (run-analysis export)",
        *([f"# {note}"] if note else []),
        f"imax {len(model.channels)} number of channels",
        f"jmax {len(model.processes) - 1} number of processes minus one",
        f"kmax {len(nuisances)} number of nuisance parameters",
        "-" * 40,
        f"shapes * * {shapes_file} $CHANNEL/$PROCESS $CHANNEL/$PROCESS_$SYSTEMATIC",
        "-" * 40,
        row("bin", [c.name for c in model.channels]),
        row("observation", [f"{float(c.data.sum()):.6g}" for c in model.channels]),
        "-" * 40,
        row("bin", [c for c, _ in columns]),
        row("process", [s.name for _, s in columns]),
        row("process", [str(index[s.name]) for _, s in columns]),
        row("rate", [f"{s.rate:.6g}" for _, s in columns]),
        "-" * 40,
    ]
    lines += [row(f"{name} {kind}", entries) for name, kind, entries in nuisances]
    if model.mc_stat:
        lines.append("* autoMCStats 0")
    return "\n".join(lines) + "\n"


def write_datacard(folder: Path, model: StatModel) -> list[str]:
    import uproot

    with uproot.recreate(folder / SHAPES) as f:
        for key, h in shapes(model).items():
            f[key] = h
    (folder / DATACARD).write_text(datacard(model))
    return [DATACARD, SHAPES]
