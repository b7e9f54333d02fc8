"""Configurations several test modules share: the generated Z->mumu sample beside collision
data, and the blocks that go with them. Bodies are plain YAML (single braces)."""

from __future__ import annotations

import textwrap
from pathlib import Path

# Muons of the generated samples, loosely selected
GOOD_MUON = 'collections:\n  GoodMuon: {from: Muon, where: "Muon_pt > 20 && abs(Muon_eta) < 2.4"}\n'

# Generator weights, one weight variation read from an array and one shape variation
MUON_SYSTEMATICS = """\
weight: genWeight
systematics:
  scale: {kind: weight, from_array: LHEScaleWeight, indices: [0, 8]}
  mu: {kind: shape, column: Muon_pt, up: "Muon_pt * 1.01", down: "Muon_pt * 0.99"}
"""


def zmumu_and_data(analysis: str, lumi: float, zmumu: str | Path, data: str | Path, xsec: float, *body: str) -> str:
    """A config of two samples, `zmumu` (simulation, cross-section `xsec`) and `data` (files or
    globs or URLs), followed by the YAML blocks `body`."""
    head = (
        f"analysis: {analysis}\nlumi: {lumi}\nsamples:\n"
        f'  zmumu: {{files: ["{zmumu}"], xsec: {xsec}}}\n'
        f'  data: {{files: ["{data}"], is_data: true}}\n'
    )
    return head + "".join(textwrap.dedent(b) for b in body)
