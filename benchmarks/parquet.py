"""Parquet input against ROOT input: the same generated events, the same analysis, events/s of
each (each run in its own process) and the one-off conversion time of the Parquet route.

    python benchmarks/parquet.py --events 500000 [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

CONFIG = """
analysis: parquet_benchmark
lumi: 1.0
samples:
  ttbar: {{files: ["{file}"], xsec: 1.0}}
collections:
  GoodJet: {{from: Jet, where: "Jet_pt > 30 && abs(Jet_eta) < 2.4", sort_by: pt}}
  GoodMuon: {{from: Muon, where: "Muon_pt > 25 && Muon_tightId"}}
weight: genWeight
histograms:
  ht: {{axes: [{{expr: "Sum(GoodJet_pt)", name: ht, bins: 50, range: [0, 1000]}}]}}
  mu_pt: {{axes: [{{expr: GoodMuon_pt, bins: 50, range: [0, 200]}}]}}
"""


def _run(config: Path, out: Path) -> float:
    subprocess.run(
        [sys.executable, "-m", "framework", str(config), "-o", str(out), "--force"],
        check=True,
        cwd=REPO,
        capture_output=True,
    )
    summary = json.loads((out / "run.json").read_text())
    return summary["events"] / summary["event_loop_seconds"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=500_000)
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    from framework.inputs import parquet
    from framework.testing.generate import write_events
    from framework.testing.spec import GeneratorSpec

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        os.environ["RDF_ANALYSIS_CACHE"] = str(folder / "cache")
        root_file, parquet_file = folder / "ttbar.root", folder / "ttbar.parquet"
        write_events(GeneratorSpec(process="ttbar", events=args.events, seed=3), root_file)
        parquet.export(root_file, "Events", parquet_file)
        start = time.perf_counter()
        parquet.converted(parquet_file, "Events")
        conversion = time.perf_counter() - start
        rates = {}
        for kind, file in (("root", root_file), ("parquet", parquet_file)):
            config = folder / f"{kind}.yaml"
            config.write_text(CONFIG.format(file=file))
            rates[kind] = _run(config, folder / kind)
    result = {
        "events": args.events,
        "root_rate": rates["root"],
        "parquet_rate": rates["parquet"],
        "ratio": rates["parquet"] / rates["root"],
        "conversion_s": conversion,
    }
    print(
        f"{args.events} events: ROOT {rates['root']:,.0f} ev/s, Parquet (converted) {rates['parquet']:,.0f} ev/s "
        f"(ratio {result['ratio']:.2f}); one-off conversion {conversion:.1f} s"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
