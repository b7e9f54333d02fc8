"""A pyhf JSON workspace from a StatModel: `mu` (normfactor) on signal, normsys for lnN and
normalisation effects, histosys for shapes (templates scaled to the nominal's integral, their
normalisation in the normsys of the same name), one staterror per channel (Barlow-Beeston lite)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from framework.stats.model import Sample, StatModel

POI = "mu"
WORKSPACE = "workspace.json"
MU_BOUNDS = (0.0, 20.0)


def _modifiers(s: Sample, channel: str, mc_stat: bool) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if s.signal:
        found.append({"name": POI, "type": "normfactor", "data": None})
    for n in s.norms:
        found.append({"name": n.name, "type": "normsys", "data": {"hi": n.up, "lo": n.down}})
    total = s.nominal.sum()
    for sh in s.shapes:
        up, down = sh.up.sum(), sh.down.sum()
        found.append({"name": sh.name, "type": "normsys", "data": {"hi": up / total, "lo": down / total}})
        found.append(
            {
                "name": sh.name,
                "type": "histosys",
                "data": {
                    "hi_data": (sh.up * (total / up)).tolist() if up > 0 else s.nominal.tolist(),
                    "lo_data": (sh.down * (total / down)).tolist() if down > 0 else s.nominal.tolist(),
                },
            }
        )
    if mc_stat:
        found.append({"name": f"staterror_{channel}", "type": "staterror", "data": np.sqrt(s.variance).tolist()})
    return found


def workspace(model: StatModel) -> dict[str, Any]:
    """The pyhf workspace specification (validated by `pyhf.Workspace(spec)`)."""
    return {
        "version": "1.0.0",
        "channels": [
            {
                "name": c.name,
                "samples": [
                    {"name": s.name, "data": s.nominal.tolist(), "modifiers": _modifiers(s, c.name, model.mc_stat)}
                    for s in c.samples
                ],
            }
            for c in model.channels
        ],
        "observations": [{"name": c.name, "data": c.data.tolist()} for c in model.channels],
        "measurements": [
            {
                "name": "measurement",
                "config": {"poi": POI, "parameters": [{"name": POI, "bounds": [list(MU_BOUNDS)], "inits": [1.0]}]},
            }
        ],
    }


def write_workspace(folder: Path, model: StatModel) -> list[str]:
    (folder / WORKSPACE).write_text(json.dumps(workspace(model), indent=1))
    return [WORKSPACE]
