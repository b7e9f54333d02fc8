"""One static HTML page with every plot, the tables and the run's provenance.

The page uses relative links only, no script and no network: it works opened from disk.
"""

from __future__ import annotations

import html
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from framework.present.plotting import PlotData
from framework.present.results import RunOutputs, SampleOutput
from framework.present.tables import Table

if TYPE_CHECKING:
    from framework.present.fit_report import DistributionPlot

PLOT_FOLDER = "plots"
TABLE_FOLDER = "tables"
STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
nav a { margin-right: 1em; }
.plots { display: flex; flex-wrap: wrap; gap: 1em; }
figure { margin: 0; width: 420px; }
figure img { width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 0.85em; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: right; }
th { background: #f0f0f0; }
td:first-child, th:first-child { text-align: left; }
.note { font-size: 0.85em; color: #555; }
dt { font-weight: bold; } dd { margin: 0 0 0.4em 1.5em; font-family: monospace; }
"""


def _e(text: object) -> str:
    return html.escape(str(text))


def _plots_section(plots: list[PlotData], folder: str, formats: Sequence[str]) -> str:
    by_histogram: dict[str, list[PlotData]] = defaultdict(list)
    for d in plots:
        by_histogram[d.histogram].append(d)
    parts = ["<section id='plots'><h2>Plots</h2>"]
    for histogram, members in by_histogram.items():
        parts.append(f"<h3 id='h-{_e(histogram)}'>{_e(histogram)}</h3><div class='plots'>")
        for d in members:
            caption = f"{d.name}" + (f" ({d.title})" if d.title else "")
            links = "".join(f" <a href='{folder}/{_e(d.name)}.{f}'>{f}</a>" for f in formats if f != "png")
            parts.append(
                f"<figure><img src='{folder}/{_e(d.name)}.png' alt='{_e(d.name)}'>"
                f"<figcaption>{_e(caption)}{links} <a href='{folder}/{_e(d.name)}.json'>numbers</a>"
                "</figcaption></figure>"
            )
        parts.append("</div>")
    parts.append("</section>")
    return "".join(parts)


def _lumi_mask(s: SampleOutput) -> str:
    """The certified-luminosity JSON a data sample was masked with: its path and the start of its
    SHA-256 (the whole of it as the cell's title); 'none' for data without a mask."""
    mask = s.provenance.lumi_mask
    if mask is None:
        return "none" if s.provenance.is_data else ""
    return f"<span title='sha256 {_e(mask.sha256)}'>{_e(mask.file)} (sha256 {_e(mask.sha256[:16])})</span>"


def _provenance_section(outputs: RunOutputs) -> str:
    first = next(iter(outputs.samples.values())).provenance
    items = {
        "configuration": first.config,
        "configuration sha256": first.config_hash,
        "command": " ".join(first.command),
        "versions": ", ".join(f"{k} {v}" for k, v in first.versions.items()),
        "threads": first.threads,
        "systematics": ", ".join(first.systematics) or "none",
        "output folder": outputs.folder.resolve(),
    }
    rows = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in items.items())
    samples = "".join(
        f"<tr><td>{_e(name)}</td><td>{_e(s.process)}</td><td>{s.provenance.events_read}</td>"
        f"<td>{_e(s.provenance.era or '')}</td><td>{_e(', '.join(Path(f).name for f in s.provenance.files))}</td>"
        f"<td>{_lumi_mask(s)}</td></tr>"
        for name, s in outputs.samples.items()
    )
    return (
        f"<section id='provenance'><h2>Provenance</h2><dl>{rows}</dl>"
        "<table><thead><tr><th>sample</th><th>process</th><th>events read</th><th>era</th><th>files</th>"
        "<th>lumi mask</th></tr></thead>"
        f"<tbody>{samples}</tbody></table></section>"
    )


def _table_section(t: Table, level: int = 2) -> str:
    return (
        f"<section id='{t.name}'><h{level}>{_e(t.title)}</h{level}>{t.html()}"
        f"<p class='note'>Also as <a href='{TABLE_FOLDER}/{t.name}.md'>Markdown</a>, "
        f"<a href='{TABLE_FOLDER}/{t.name}.tex'>LaTeX</a>, <a href='{TABLE_FOLDER}/{t.name}.csv'>CSV</a>.</p></section>"
    )


def _fit_section(fit: FitSection | None) -> str:
    if fit is None:
        return ""
    body = "".join(_table_section(t, level=3) for t in fit.tables) if fit.tables else fit.missing
    if fit.pulls_plot:
        body += (
            f"<figure><img src='{fit.pulls_plot}' alt='pulls'><figcaption>Pulls of the nuisance parameters, "
            "post-fit / pre-fit sigma as error bars; bands: 1 and 2 pre-fit sigma</figcaption></figure>"
        )
    if fit.distribution_plots:
        figures = "".join(
            f"<figure><img src='{_e(plot.image)}' alt='{_e(plot.caption)}'>"
            f"<figcaption>{_e(plot.caption)}</figcaption></figure>"
            for plot in fit.distribution_plots
        )
        body += (
            "<h3 id='fit-distributions'>Pre- and post-fit distributions</h3><p class='note'>Samples stacked, signal "
            "on top: pre-fit at the nominal parameters (mu = 1), post-fit at the best fit. Hatched: the total's "
            "uncertainty, propagated linearly from the parameters' pre-fit widths (uncorrelated, none on mu) or "
            "the fit's covariance. Data with sqrt(n) errors; none in channels fitted to Asimov data.</p>"
            f"<div class='plots'>{figures}</div>"
        )
    return f"<section id='fit'><h2>Fit</h2>{body}</section>"


@dataclass(frozen=True)
class FitSection:
    """The fit's tables, or (none yet) the text that says how to make the fit."""

    tables: list[Table]
    missing: str = ""
    pulls_plot: str = ""  # relative to the page
    distribution_plots: list[DistributionPlot] = field(default_factory=list)  # pre- and post-fit, per channel
    result: dict[str, Any] = field(default_factory=dict)  # fit.json


def write_report(
    path: Path,
    title: str,
    outputs: RunOutputs,
    plots: list[PlotData],
    formats: Sequence[str],
    tables: list[Table],
    fit: FitSection | None = None,
) -> Path:
    """`path` (index.html) beside the folders `plots/` and `tables/`; with a model, a Fit section."""
    anchors = [("plots", "Plots"), *((t.name, t.title) for t in tables)]
    anchors += [("fit", "Fit")] if fit is not None else []
    nav = "".join(f"<a href='#{anchor}'>{_e(text)}</a>" for anchor, text in [*anchors, ("provenance", "Provenance")])
    table_sections = "".join(_table_section(t) for t in tables)
    page = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{_e(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{_e(title)}</h1><nav>{nav}</nav>"
        f"{_plots_section(plots, PLOT_FOLDER, formats)}{table_sections}{_fit_section(fit)}"
        f"{_provenance_section(outputs)}</body></html>\n"
    )
    path.write_text(page)
    return path
