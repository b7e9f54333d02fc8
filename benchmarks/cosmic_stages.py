"""Time per stage of the drift-tube analysis (analyses/cosmic_dt): the stages are fused in one
RDataFrame loop, so each is timed as the difference between cumulative graphs run one after
the other on the same orbit file (the preprocessing, decode + grouping, is timed alone).

    python benchmarks/cosmic_stages.py [--threads 2] [--repeat 3] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from framework.config.load import load_config
from framework.engine.rootenv import declare_file, root
from framework.execute.pipeline import resolve_cpp
from framework.inputs.preprocess import _paths, _run_stage

CONFIG = REPO / "analyses" / "cosmic_dt" / "config.yaml"
STAGES = {
    "filter": [],
    "local fits": ["local0", "local2", "local3"],
    "global fit": ["global_fit"],
    "angle differences": ["dtheta0", "dtheta2", "dtheta3"],
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    config = load_config(CONFIG)
    for path in resolve_cpp(config):
        declare_file(path)
    inputs, output = _paths(config, "orbits")
    start = time.perf_counter()
    _run_stage(config, "orbits", inputs, output.with_name("orbits_timing.root"))
    timings = {"decode + group (preprocess, one thread)": time.perf_counter() - start}
    os.remove(output.with_name("orbits_timing.root"))
    r = root()
    r.EnableImplicitMT(args.threads)
    defines = dict(config.spec.defines)
    cuts = [c.cut for c in config.spec.selection if c.name != "local_fits"]  # the fits are the next stage
    previous, wanted = 0.0, []
    for stage, columns in STAGES.items():
        wanted += columns
        best = float("inf")
        for _ in range(args.repeat):
            frame = r.RDataFrame("orbits", str(output))
            for name, expression in defines.items():
                frame = frame.Define(name, expression)
            for cut in cuts:
                frame = frame.Filter(cut)
            results = [frame.Count()]
            for column in wanted:
                used = f"use_{column}"
                frame = frame.Define(used, f"double({column}.ok)" if column.startswith(("local", "global")) else column)
                results.append(frame.Sum(used))
            begin = time.perf_counter()
            results[0].GetValue()
            best = min(best, time.perf_counter() - begin)
        timings[stage] = best - previous
        previous = best
    for stage, seconds in timings.items():
        print(f"{stage:<42} {seconds * 1000:8.1f} ms")
    if args.json:
        args.json.write_text(json.dumps(timings, indent=2))


if __name__ == "__main__":
    main()
