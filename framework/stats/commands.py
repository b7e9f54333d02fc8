"""`run-analysis export` (with the model's datacard, shapes and pyhf workspace) and `run-analysis fit`,
from a run's output files: config -> ModelPlan (declare.py); outputs -> StatModel (model.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from framework.config.load import LoadedConfig
from framework.errors import ConfigError
from framework.present.commands import Prepared, export_files, prepare_presentation, write_folder
from framework.stats.declare import make_model_plan
from framework.stats.model import StatModel, build_model

FIT = "fit.json"


def _model(p: Prepared) -> StatModel | None:
    plan = make_model_plan(p.config)
    return None if plan is None else build_model(p.outputs, p.presentation, plan)


def make_exports(config: Path | LoadedConfig, run_output: Path, target: Path) -> list[str]:
    """Everything under `exports`, and with `model:` the datacard, its shapes, the pyhf workspace and the
    HistFactory XML (`histfactory/`)."""
    from framework.stats.datacard import DATACARD, SHAPES, write_datacard
    from framework.stats.histfactory import FOLDER, write_histfactory
    from framework.stats.workspace import WORKSPACE, write_workspace

    p = prepare_presentation(config, run_output)
    model = _model(p)
    names, fill = export_files(p, required=model is None)
    if model is not None:
        names += [DATACARD, SHAPES, WORKSPACE, FOLDER]

    def write(folder: Path) -> None:
        fill(folder)
        if model is not None:
            write_datacard(folder, model)
            write_workspace(folder, model)
            write_histfactory(folder, model)

    write_folder(target, write)
    return names


def make_fit(config: Path | LoadedConfig, run_output: Path, target: Path) -> dict[str, Any]:
    """Fit the model to the run's outputs; `target/fit.json` and the workspace fitted."""
    from framework.stats.fit import fit
    from framework.stats.workspace import WORKSPACE, workspace

    p = prepare_presentation(config, run_output)
    model = _model(p)
    if model is None:
        raise ConfigError(
            "the configuration declares no statistical model", p.config.locate(), "add 'model:' (see the README)"
        )
    spec = workspace(model)
    result = fit(spec, workspace(model.without_systematics()), model.channels)
    result["asimov_channels"] = [c.name for c in model.channels if c.asimov]
    result["one_sided_mirrored"] = list(model.mirrored)  # their Down templates: 2 nominal - Up

    def write(folder: Path) -> None:
        (folder / FIT).write_text(json.dumps(result, indent=1) + "\n")
        (folder / WORKSPACE).write_text(json.dumps(spec, indent=1))

    write_folder(target, write)
    return result
