"""What the bounds check of array subscripts costs in the event loop.

Every subscript of an array column in an expression (`GoodJet_pt[2]`) is read through a
checked access (`fw::item`) that stops the run at an index out of range. This benchmark runs
one configuration dense in subscripts (24 evaluated per selected event: four jets' pt, eta and phi, the
leading pair's mass) on generated ttbar events twice per round, checked (as every run is) and
unchecked (the check replaced by the plain subscript, which only this benchmark can do),
alternating for `--rounds` rounds in one process, and keeps each mode's shortest loop (the
framework's own loop time, JIT done before it). Histograms of both must be identical (every
subscript is guarded by the selection, so none is out of range).

    python benchmarks/index_checks.py --events 1000000 --json OUT.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent

CONFIG = """
analysis: index_checks
lumi: 1.0
samples:
  ttbar: {{files: [{events}], xsec: 1.0}}
collections:
  GoodJet: {{from: Jet, where: "Jet_pt > 25 && abs(Jet_eta) < 2.5", sort_by: pt}}
selection:
  - {{name: four_jets, cut: "nGoodJet >= 4"}}
defines:
  pt_sum: GoodJet_pt[0] + GoodJet_pt[1] + GoodJet_pt[2] + GoodJet_pt[3]
  eta_span: std::max({{GoodJet_eta[0], GoodJet_eta[1], GoodJet_eta[2], GoodJet_eta[3]}}) - std::min({{GoodJet_eta[0], GoodJet_eta[1], GoodJet_eta[2], GoodJet_eta[3]}})
  dphi12: ROOT::VecOps::DeltaPhi(GoodJet_phi[0], GoodJet_phi[1])
  dphi34: ROOT::VecOps::DeltaPhi(GoodJet_phi[2], GoodJet_phi[3])
  m12: sqrt(2 * GoodJet_pt[0] * GoodJet_pt[1] * (cosh(GoodJet_eta[0] - GoodJet_eta[1]) - cos(GoodJet_phi[0] - GoodJet_phi[1])))
histograms:
  pt_sum: {{axes: [{{expr: pt_sum, bins: 50, range: [0, 1000]}}]}}
  eta_span: {{axes: [{{expr: eta_span, bins: 50, range: [0, 5]}}]}}
  dphi: {{axes: [{{expr: dphi12, bins: 32, range: [-3.2, 3.2]}}, {{expr: dphi34, bins: 32, range: [-3.2, 3.2]}}]}}
  m12: {{axes: [{{expr: m12, bins: 50, range: [0, 1000]}}]}}
  j3_pt: {{axes: [{{expr: "GoodJet_pt[2]", name: pt3, bins: 50, range: [0, 300]}}, {{expr: "GoodJet_eta[3]", name: eta4, bins: 10, range: [-2.5, 2.5]}}]}}
"""  # noqa: E501 (YAML: one flow mapping per line, as users write it)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="index-checks-"))
    os.environ["RDF_ANALYSIS_CACHE"] = str(folder / "cache")
    os.environ["RDF_ANALYSIS_COMPILE"] = "off"  # both modes interpreted alike
    sys.path.insert(0, str(REPO))
    from framework.engine import build
    from framework.execute.pipeline import RunOptions, execute
    from framework.present.results import differences
    from framework.testing.generate import write_events
    from framework.testing.spec import GeneratorSpec

    events = folder / "ttbar.root"
    write_events(GeneratorSpec(process="ttbar", events=args.events, seed=7), events)
    config = folder / "config.yaml"
    config.write_text(CONFIG.format(events=events))

    checked_indexing = build.checked_indexing
    loops: dict[str, list[float]] = {"checked": [], "unchecked": []}
    selected = 0
    for i in range(args.rounds):
        for mode in ("checked", "unchecked"):
            build.checked_indexing = checked_indexing if mode == "checked" else (lambda e, arrays: (e, {}))
            report = execute(
                RunOptions(config=config, output=folder / f"{mode}-{i}", threads=args.threads, progress=False)
            )
            loops[mode].append(report.loop_seconds)
            selected = report.result.samples[0].cutflow[-1]["events"]
    build.checked_indexing = checked_indexing
    equal = all(
        differences(folder / f"checked-{i}", folder / f"unchecked-{i}", rel=0.0) == [] for i in range(args.rounds)
    )
    result: dict[str, Any] = {
        "events": args.events,
        "selected_events": selected,
        "subscripts_per_selected_event": 24,
        "threads": args.threads,
        "checked_loop_s": round(min(loops["checked"]), 3),
        "unchecked_loop_s": round(min(loops["unchecked"]), 3),
        "cost": round(min(loops["checked"]) / min(loops["unchecked"]) - 1, 3),
        "loops": {k: [round(v, 3) for v in vs] for k, vs in loops.items()},
        "equal": equal,
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0 if equal else 1


if __name__ == "__main__":
    sys.exit(main())
