"""Yields per process and category, cutflows per sample, systematic impacts: as Markdown, LaTeX, CSV and HTML."""

from __future__ import annotations

import csv
import html
import io
import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from framework.config.load import LoadedConfig
from framework.config.schema.base import YIELDS
from framework.present.project import blinded, project
from framework.present.results import DATA, RunOutputs, all_indices
from framework.present.views import AxisCut, Presentation
from framework.stats.declare import ModelPlan, significance_plans


@dataclass(frozen=True)
class Measured:
    """A yield with its statistical and (optional) systematic uncertainties."""

    value: float
    stat: float
    syst_up: float | None = None
    syst_down: float | None = None

    def text(self) -> str:
        out = f"{self.value:.1f} ± {self.stat:.1f}"
        if self.syst_up is not None and self.syst_down is not None:
            out += f" +{self.syst_up:.1f}/-{self.syst_down:.1f}"
        return out

    def latex(self) -> str:
        out = f"${self.value:.1f} \\pm {self.stat:.1f}"
        if self.syst_up is not None and self.syst_down is not None:
            out += f"\\,^{{+{self.syst_up:.1f}}}_{{-{self.syst_down:.1f}}}"
        return out + "$"


Cell = str | int | float | Measured | None  # None: blinded


@dataclass
class Table:
    name: str
    title: str
    columns: list[str]
    rows: list[list[Cell]]
    note: str = ""

    def _text(self, cell: Cell, latex: bool = False) -> str:
        if cell is None:
            return "blinded"
        if isinstance(cell, Measured):
            return cell.latex() if latex else cell.text()
        if isinstance(cell, float):
            return f"{cell:.4g}"
        text = str(cell)
        return text.replace("_", "\\_").replace("%", "\\%") if latex and not text.startswith("$") else text

    def markdown(self) -> str:
        lines = [f"## {self.title}", "", "| " + " | ".join(self.columns) + " |", "|" + "---|" * len(self.columns)]
        lines += ["| " + " | ".join(self._text(c) for c in row) + " |" for row in self.rows]
        return "\n".join(lines + ([f"\n{self.note}"] if self.note else [])) + "\n"

    def latex(self) -> str:
        head = " & ".join(self._text(c, latex=True) for c in self.columns)
        body = "\n".join(" & ".join(self._text(c, latex=True) for c in row) + r" \\" for row in self.rows)
        return (
            f"% {self.title}\n\\begin{{tabular}}{{l{'r' * (len(self.columns) - 1)}}}\n\\hline\n{head} \\\\\n\\hline\n"
            f"{body}\n\\hline\n\\end{{tabular}}\n"
        )

    def csv(self) -> str:
        """Numbers, not text: a Measured cell becomes value, stat, syst_up, syst_down columns."""
        measured = [any(isinstance(r[i], Measured) for r in self.rows) for i in range(len(self.columns))]
        header: list[str] = []
        for name, is_measured in zip(self.columns, measured):
            header += [name, f"{name} stat", f"{name} syst up", f"{name} syst down"] if is_measured else [name]
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(header)
        for row in self.rows:
            cells: list[object] = []
            for cell, is_measured in zip(row, measured):
                if not is_measured:
                    cells.append("blinded" if cell is None else cell)
                elif isinstance(cell, Measured):
                    cells += [
                        cell.value,
                        cell.stat,
                        "" if cell.syst_up is None else cell.syst_up,
                        "" if cell.syst_down is None else cell.syst_down,
                    ]
                else:
                    cells += ["blinded" if cell is None else cell, "", "", ""]
            writer.writerow(cells)
        return out.getvalue()

    def html(self) -> str:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in self.columns)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(self._text(c))}</td>" for c in row) + "</tr>" for row in self.rows
        )
        note = f"<p class='note'>{html.escape(self.note)}</p>" if self.note else ""
        return f"<table id='{self.name}'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{note}"

    def write(self, folder: Path) -> list[Path]:
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        for suffix, text in (("md", self.markdown()), ("tex", self.latex()), ("csv", self.csv())):
            path = folder / f"{self.name}.{suffix}"
            path.write_text(text)
            written.append(path)
        return written


def _category_bins(axis: object) -> list[tuple[str, AxisCut]]:
    """Every bin of a category axis, flow bins included (named 'other', '< low', '>= high')."""
    import hist

    found = []
    name = axis.name  # type: ignore[attr-defined]
    if isinstance(axis, hist.axis.Integer):
        low, high = int(axis.edges[0]), int(axis.edges[-1])
        found.append((f"< {low}", AxisCut(name, values=(low - 1,))))
        found += [(str(v), AxisCut(name, values=(v,))) for v in range(low, high)]
        found.append((f">= {high}", AxisCut(name, values=(high,))))
        return found
    found = [(str(v).lower() if isinstance(v, bool) else str(v), AxisCut(name, values=(v,))) for v in axis]  # type: ignore[attr-defined]
    if len(all_indices(axis)) > len(found):
        found.append(("other", AxisCut(name, other=True)))
    return found


def _yield_cuts(outputs: RunOutputs) -> tuple[list[str], list[tuple[list[str], tuple[AxisCut, ...]]]]:
    h = next(iter(outputs.samples.values())).histograms[YIELDS]
    axes = [a for a in h.axes if a.name != "systematic"]
    per_axis = [_category_bins(a) for a in axes]
    combos = [([label for label, _ in combo], tuple(cut for _, cut in combo)) for combo in itertools.product(*per_axis)]
    return [a.name for a in axes], combos


def yields_table(outputs: RunOutputs, presentation: Presentation) -> Table:
    """Weighted yields with statistical uncertainty per process and category; the simulation total with
    its systematic uncertainty; data (hidden in blinded categories)."""
    processes = [p for p in presentation.processes if p in outputs.processes()]
    names, combos = _yield_cuts(outputs)
    per_process = {p: outputs.histogram(p, YIELDS) for p in processes}
    simulation = outputs.simulation(YIELDS, processes)
    data = outputs.histogram(DATA, YIELDS) if outputs.has_data() else None
    rows: list[list[Cell]] = []
    for labels, cuts in [*combos, (["all"] * len(names), ())]:
        cells: list[Cell] = list(labels)
        for p in processes:
            pr = project(per_process[p], [], cuts)
            cells.append(Measured(float(pr.nominal), float(np.sqrt(pr.nominal_variance))))
        total = project(simulation, [], cuts)
        up, down = total.band(outputs.systematics)
        cells.append(Measured(float(total.nominal), float(np.sqrt(total.nominal_variance)), float(up), float(down)))
        if data is not None:
            hidden = bool(blinded(data, [], cuts, presentation.blind))
            cells.append(None if hidden else round(float(project(data, [], cuts).nominal)))
        if any(isinstance(c, Measured) and c.value for c in cells) or any(
            isinstance(c, int) and c for c in cells[len(names) :]
        ):
            rows.append(cells)
    columns = [
        *names,
        *[presentation.labels[p] for p in processes],
        "Total simulation",
        *(["Data"] if data is not None else []),
    ]
    return Table(
        "yields",
        "Yields per category",
        columns,
        rows,
        "Weighted yields ± statistical uncertainty; the simulation total also +up/-down systematic "
        "(shifts of all systematics added in quadrature). Empty categories are left out.",
    )


def cutflow_table(outputs: RunOutputs) -> Table:
    """Per sample and cut: raw events, efficiency of the step and cumulative, weighted events."""
    rows: list[list[Cell]] = []
    for name, sample in outputs.samples.items():
        first = sample.cutflow[0]["events"] or 1
        previous = first
        for row in sample.cutflow:
            events = row["events"]
            rows.append(
                [
                    name,
                    row["cut"],
                    events,
                    events / previous if previous else 0.0,
                    events / first,
                    Measured(row["weighted"], float(np.sqrt(row["weighted_variance"]))),
                ]
            )
            previous = events
    return Table(
        "cutflow",
        "Cutflow per sample",
        ["sample", "cut", "events", "step efficiency", "cumulative efficiency", "weighted"],
        rows,
        "Raw event counts and efficiencies; weighted yields normalised to the luminosity (data: counts).",
    )


def systematics_table(outputs: RunOutputs, presentation: Presentation) -> Table:
    """Relative impact of each systematic on the total simulated yield (all categories), per process."""
    processes = [p for p in presentation.processes if p in outputs.processes()]
    totals = {p: project(outputs.histogram(p, YIELDS), [], ()) for p in processes}
    everything = project(outputs.simulation(YIELDS, processes), [], ())
    columns = ["systematic", *[presentation.labels[p] for p in processes], "Total simulation"]
    rows: list[list[Cell]] = []
    shifts = {p: t.shifts(outputs.systematics) for p, t in totals.items()}
    overall = everything.shifts(outputs.systematics)
    for name in outputs.systematics:
        cells: list[Cell] = [name]
        for p in processes:
            cells.append(_relative(shifts[p].get(name), float(totals[p].nominal)))
        cells.append(_relative(overall.get(name), float(everything.nominal)))
        rows.append(cells)
    return Table(
        "systematics",
        "Impact of each systematic on the total yield",
        columns,
        rows,
        "Relative up/down shift of the yield summed over all categories.",
    )


def _relative(shift: tuple[np.ndarray, np.ndarray] | None, nominal: float) -> str:
    if shift is None or not nominal:
        return "-"
    return f"+{100 * float(shift[0]) / nominal:.2f}% / -{100 * float(shift[1]) / nominal:.2f}%"


def significance_table(outputs: RunOutputs, presentation: Presentation, plans: list[ModelPlan]) -> Table:
    from framework.stats.significance import significances

    found = significances(outputs, presentation, plans)
    rows: list[list[Cell]] = [
        [
            r.name,
            r.signal,
            r.background,
            r.observed,
            r.expected_z,
            r.observed_z,
            r.expected_z_stat_only,
            r.observed_z_stat_only,
            r.mu_hat,
            " ".join(r.systematics) or "-",
        ]
        for r in found
    ]
    missing = sorted({name for r in found for name in r.missing})
    return Table(
        "significance",
        "Discovery significance",
        [
            "name",
            "signal",
            "background",
            "observed",
            "expected Z",
            "observed Z",
            "expected Z, statistics only",
            "observed Z, statistics only",
            "signal strength",
            "nuisance parameters",
        ],
        rows,
        "Profile likelihood of the window's bins (pyhf, q0 asymptotic) with the systematics as the model "
        "declares them and MC statistics; statistics only: without any nuisance parameter. Expected from the "
        "Asimov data set (mu = 1); 'blinded' where data are hidden."
        + (f" Not in the outputs (run without them): {', '.join(missing)}." if missing else ""),
    )


def make_tables(config: LoadedConfig, outputs: RunOutputs, presentation: Presentation) -> list[Table]:
    tables = [yields_table(outputs, presentation), cutflow_table(outputs), systematics_table(outputs, presentation)]
    if presentation.significance:
        tables.append(significance_table(outputs, presentation, significance_plans(config, presentation.significance)))
    return tables
