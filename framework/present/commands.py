"""`run-analysis plot` and `run-analysis export`: from a run's output files to plots, tables, a report
page and files for fits, without an event loop.

    config -> presentation (views.py) ; outputs (results.py) -> plots, tables, report, exports

Everything is written in a temporary folder first and moved in place at the end, so a failed
command leaves no partial result behind.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from framework.config.load import LoadedConfig, load_config, split_names
from framework.errors import ConfigError, ExecutionError, InputError
from framework.output.write import current_umask
from framework.plan.axes import histogram_axes
from framework.present.results import RunOutputs, load_outputs
from framework.present.views import Presentation, make_presentation

if TYPE_CHECKING:
    from framework.present.report import FitSection

REPORT = "index.html"
CORRECTIONS = "corrections.json"

MARKER = ".rdf-analysis-output"  # marks a folder this module made, which it may replace


@dataclass(frozen=True)
class Prepared:
    config: LoadedConfig
    presentation: Presentation
    outputs: RunOutputs


def prepare_presentation(config: Path | LoadedConfig, run_output: Path) -> Prepared:
    """Load the config (unless loaded already) and the run's outputs and check that they fit together."""
    if not isinstance(config, LoadedConfig):
        config = load_config(config)
    presentation = make_presentation(config, parse_math=True)
    outputs = load_outputs(run_output)
    check_outputs(config, outputs)
    return Prepared(config, presentation, outputs)


def check_outputs(config: LoadedConfig, outputs: RunOutputs) -> None:
    """Every histogram the config declares is in every output file with the same axes, and every
    sample of the config has an output. Style edits (plots, colours) need no new event loop."""
    spec = config.spec
    first = next(iter(outputs.samples.values()))
    for sample in outputs.samples.values():
        for name in [*spec.histograms, "yields"]:
            expected = [a.name for a in histogram_axes(spec, name)]
            if name not in sample.histograms:
                raise InputError(
                    f"{sample.path} has no histogram {name!r}: it was made by another configuration "
                    f"({sample.provenance.config})",
                    config.locate("histograms", name) if name in spec.histograms else None,
                    "rerun the analysis with this configuration",
                )
            found = [a.name for a in sample.histograms[name].axes if a.name != "systematic"]
            if found != expected:
                raise InputError(
                    f"histogram {name!r} in {sample.path} has axes {found}, the configuration {expected}",
                    config.locate("histograms", name),
                    "rerun the analysis with this configuration",
                )
    expected_samples = [o for n, s in spec.samples.items() for o in (split_names(n, s.split) or [n])]
    missing = [s for s in expected_samples if s not in outputs.samples]
    if missing:
        raise InputError(
            f"{outputs.folder} has no output for sample(s) {', '.join(missing)} of {config.path.name}",
            hint=f"run them: run-analysis {config.path} -o {outputs.folder} --samples {' '.join(missing)}",
        )
    unknown = [s for s in outputs.samples if s not in expected_samples]
    if unknown:
        raise InputError(
            f"{outputs.samples[unknown[0]].path} is sample {unknown[0]!r}, which {config.path.name} does not declare",
            hint=f"the outputs in {outputs.folder} came from {first.provenance.config}",
        )


def write_folder(target: Path, fill: Callable[[Path], None]) -> None:
    """Make `target` by `fill(temporary folder)`, then move it in place; replaces only a folder made here."""
    if target.exists() and any(target.iterdir()) and not (target / MARKER).exists():
        raise ExecutionError(
            f"{target} exists and was not made by run-analysis plot/export", hint="choose a new or empty output folder"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        fill(temporary)
        (temporary / MARKER).write_text("made by run-analysis; replaced on the next run\n")
        temporary.chmod(0o777 & ~current_umask())
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    if target.exists():
        shutil.rmtree(target)
    temporary.rename(target)


def fit_section(p: Prepared, run_output: Path, fit_folder: Path | None) -> FitSection | None:
    """With `model:`, the fit result's tables and plots from `fit_folder` (default: the run's `fit/`), or how to
    make it."""
    from framework.present.fit_report import distribution_plots, fit_tables, load_fit, missing_fit_html
    from framework.present.report import PLOT_FOLDER, FitSection

    if p.config.spec.model is None:
        return None
    folder = fit_folder or run_output / "fit"
    result = load_fit(folder)
    try:
        tables = None if result is None else fit_tables(result)
        plots = [] if result is None else distribution_plots(result, PLOT_FOLDER)
    except (KeyError, TypeError, AttributeError):  # a fit.json of another version of the framework
        tables = None
    if result is None or tables is None:
        return FitSection([], missing_fit_html(folder, p.config.path, run_output, stale=result is not None))
    return FitSection(tables, pulls_plot=f"{PLOT_FOLDER}/fit_pulls.png", distribution_plots=plots, result=result)


def make_report(
    config: Path | LoadedConfig, run_output: Path, target: Path, fit_folder: Path | None = None
) -> dict[str, int]:
    """Plots, tables and the report page `target/index.html`; with `model:`, the fit's tables and plots too."""
    from framework.present.fit_report import draw_distribution, draw_pulls
    from framework.present.plotting import make_plots
    from framework.present.report import PLOT_FOLDER, TABLE_FOLDER, write_report
    from framework.present.tables import make_tables

    p = prepare_presentation(config, run_output)
    style = p.config.spec.style
    counts: dict[str, int] = {}
    fit = fit_section(p, run_output, fit_folder)

    def fill(folder: Path) -> None:
        plots = make_plots(p.outputs, p.presentation, style, folder / PLOT_FOLDER)
        tables = make_tables(p.config, p.outputs, p.presentation)
        for table in [*tables, *(fit.tables if fit else [])]:
            table.write(folder / TABLE_FOLDER)
        if fit is not None and fit.pulls_plot:
            draw_pulls(fit.result, folder / fit.pulls_plot)
            for plot in fit.distribution_plots:
                draw_distribution(fit.result, plot, p.presentation, style, folder)
        title = f"{p.config.spec.analysis}: plots and tables"
        write_report(folder / REPORT, title, p.outputs, plots, style.formats, tables, fit)
        counts.update(plots=len(plots), tables=len(tables) + (len(fit.tables) if fit else 0))

    write_folder(target, fill)
    return counts


def export_files(p: Prepared, required: bool = True) -> tuple[list[str], Callable[[Path], None]]:
    """The names of the files declared under `exports` and the function that writes them in a folder."""
    from framework.present.export import combine_shapes, write_combine, write_corrections

    if required and not p.presentation.combine and not p.presentation.corrections:
        raise ConfigError(
            "the configuration declares no exports",
            p.config.locate(),
            "add 'exports: {combine: ..., corrections: ...}' or 'model:' (see the README)",
        )
    names = [f"{c.name}.root" for c in p.presentation.combine] + ([CORRECTIONS] if p.presentation.corrections else [])

    def fill(folder: Path) -> None:
        for export in p.presentation.combine:
            write_combine(folder / f"{export.name}.root", combine_shapes(p.outputs, p.presentation, export))
        if p.presentation.corrections:
            write_corrections(folder / CORRECTIONS, p.outputs, p.presentation)

    return names, fill


def make_exports(config_path: Path, run_output: Path, target: Path) -> list[str]:
    """Combine shapes (`<name>.root`) and the correction set (`corrections.json`) declared under `exports`."""
    names, fill = export_files(prepare_presentation(config_path, run_output))
    write_folder(target, fill)
    return names
