"""Run stage, skims: the file a Snapshot with variations wrote, made readable for the next runs.

ROOT 6.40's Snapshot with `fIncludeVariations` (single-threaded, TTree only) writes, beside the
tree, a map `R_rdf_column_to_bitmask_mapping_<tree>` from each column to a bit of the mask
columns `R_rdf_mask_<tree>_<k>`: bit 0 (the nominal) for every column that has no variation of
its own, `genWeight` included. RDataFrame then refuses to read a column whose bit is not set
(std::out_of_range, or `FilterAvailable`). So in an event stored because only `jes:up` passed
the cuts, `genWeight` cannot be read at all, and the up variation could not be filled with its
weight. The framework reads the mask itself instead (`framework.plan.skimmed`): it takes the bit
of each variation from the map and removes the map, so RDataFrame reads every column as stored
(columns without variations are written for every event; a varied column holds its value in
the events its variation passed, which are the only ones that read it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from framework.engine.rootenv import root
from framework.errors import ExecutionError
from framework.plan.skimmed import VARIED


def take_variation_bits(
    path: Path, tree: str, variations: Mapping[str, Sequence[str]]
) -> dict[str, tuple[int, int | None]]:
    """{systematic: (bit of its up variation, bit of its down variation or None: one-sided)} from the
    mask map of the Snapshot in `path`, which is removed from the file; `variations`: each held
    systematic's directions."""
    r = root()
    name = f"R_rdf_column_to_bitmask_mapping_{tree.rsplit('/', 1)[-1]}"
    handle = r.TFile.Open(str(path), "UPDATE")
    if not handle or handle.IsZombie():
        raise ExecutionError(f"cannot open the skim {path} it has just written")
    try:
        found = handle.Get(name)
        bits = {}
        for item in found or []:
            mask, bit = str(item.second.first), int(item.second.second)
            bits[str(item.first)] = int(mask.rsplit("_", 1)[1]) * 64 + bit
        handle.Delete(f"{name};*")
    finally:
        handle.Close()
    out = {}
    for systematic, held_directions in variations.items():
        directions: list[int | None] = [None, None]
        for i, direction in enumerate(held_directions):
            suffix = VARIED.format(column="", systematic=systematic, direction=direction)
            held = {b for column, b in bits.items() if column.endswith(suffix)}
            if len(held) != 1:
                raise ExecutionError(f"the skim {path} has no single mask bit for {systematic}:{direction} ({held})")
            directions[i] = held.pop()
        up = directions[0]
        assert up is not None
        out[systematic] = (up, directions[1])
    return out
