"""Skims: a typical iteration of an analysis on its skim against the same run on the original samples.

The AGC ttbar analysis (analyses/agc_ttbar/analysis.yaml: one lepton, four jets; the pt_scale and
pt_res Jet_pt shape systematics and five weight systematics) on generated ttbar and W+jets samples
of --events each, measured in one invocation:

1. the run on the original samples;
2. `run-analysis skim` with the analysis's `skim:` block (its selection, the jet columns, the lepton
   counts; the jet variations stored with the events);
3. the run on the skim (the analysis including the skim's samples YAML instead of the samples').

Each run goes twice, in its own process: first to fill a compile cache of the benchmark's own
(`--compile now`), then timed, so both read compiled steps. It reports the event loop (RDataFrame's
own measure) and the whole run of each, their ratios, the skim's time and its size against the
originals', and whether every histogram agrees bin for bin in every systematic entry (relative 1e-12).

    python benchmarks/skim.py --events 1000000 --json OUT.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

CACHE = Path(__file__).resolve().parent / ".cache"
REPO = Path(__file__).resolve().parent.parent
AGC = REPO / "analyses" / "agc_ttbar" / "analysis.yaml"
SAMPLES = {"ttbar": (729.84, 61), "wjets": (15487.164, 62)}  # xsec (pb), generator seed
LUMI = 3378.0


def inputs(events: int, cache: Path = CACHE) -> dict[str, Path]:
    """Generated samples, made once per size and kept in `cache`."""
    from framework.testing.generate import write_events
    from framework.testing.spec import GeneratorSpec

    cache.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, (_, seed) in SAMPLES.items():
        files[name] = cache / f"agc_{name}_{events}.root"
        if not files[name].exists():
            print(f"generating {events} {name} events -> {files[name]}", file=sys.stderr)
            write_events(GeneratorSpec(process=name, events=events, seed=seed), files[name])
    return files


def write_configs(folder: Path, files: dict[str, Path]) -> tuple[Path, Path]:
    """The analysis on the original samples, and on the skim (its samples YAML in folder/skim)."""
    samples = folder / "samples.yaml"
    lines = [f"lumi: {LUMI}", "samples:"]
    lines += [f"  {n}: {{files: [{files[n]}], xsec: {SAMPLES[n][0]}, process: {n}}}" for n in SAMPLES]
    samples.write_text("\n".join(lines) + "\n")
    configs = []
    for name, included in (("original", samples), ("on_skim", folder / "skim" / "samples.yaml")):
        path = folder / f"{name}.yaml"
        path.write_text(f"schema: 1\nanalysis: skim_benchmark\ninclude: [{AGC}, {included}]\n")
        configs.append(path)
    return configs[0], configs[1]


def command(args: list[str], cache: Path, profile: Path | None = None) -> float:
    """Run `run-analysis ARGS` in its own process with the benchmark's compile cache; its wall time."""
    env = {**os.environ, "RDF_ANALYSIS_CACHE": str(cache), "PYTHONPATH": str(REPO)}
    extra = ["--profile", str(profile)] if profile else []
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "framework", *args, *extra], check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def timed_run(config: Path, out: Path, threads: int, cache: Path) -> dict[str, float]:
    """A run after one that filled the compile cache: its event loop and its whole time."""
    command([str(config), "-o", str(out), "-j", str(threads), "--force", "--compile", "now"], cache)
    profile = out / "profile.json"
    wall = command([str(config), "-o", str(out), "-j", str(threads), "--force"], cache, profile)
    return {"loop_s": json.loads(profile.read_text())["loop"], "wall_s": wall}


def equal(a: Path, b: Path) -> tuple[bool, int]:
    """Whether every histogram of every sample agrees in every bin and entry; how many were compared."""
    import numpy as np

    from framework.output.write import read_histograms

    compared = 0
    for name in SAMPLES:
        ha, hb = read_histograms(a / f"{name}.hist.zip"), read_histograms(b / f"{name}.hist.zip")
        if ha.keys() != hb.keys():
            return False, compared
        for key, h in ha.items():
            va, vb = h.view(flow=True), hb[key].view(flow=True)
            if list(h.axes["systematic"]) != list(hb[key].axes["systematic"]):
                return False, compared
            if not (
                np.allclose(va.value, vb.value, rtol=1e-12, atol=0)
                and np.allclose(va.variance, vb.variance, rtol=1e-12, atol=0)
            ):
                return False, compared
            compared += len(h.axes["systematic"])
    return True, compared


def stored_events(path: Path) -> int:
    import uproot

    return int(uproot.open(path)["Events"].num_entries)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=1_000_000, help="events per sample (default 1M)")
    p.add_argument("-j", "--threads", type=int, default=2)
    p.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = p.parse_args()
    sys.path.insert(0, str(REPO))
    files = inputs(args.events)
    folder = CACHE / f"skim_{args.events}"
    folder.mkdir(parents=True, exist_ok=True)
    cache = CACHE / "rdf-cache"
    original_config, skim_config = write_configs(folder, files)
    original = timed_run(original_config, folder / "original", args.threads, cache)
    skim_s = command(["skim", str(original_config), "-o", str(folder / "skim"), "--force", "--compile", "now"], cache)
    on_skim = timed_run(skim_config, folder / "on_skim", args.threads, cache)
    same, compared = equal(folder / "original", folder / "on_skim")
    skim_bytes = sum(f.stat().st_size for f in (folder / "skim").glob("*.root"))
    input_bytes = sum(f.stat().st_size for f in files.values())
    kept = sum(stored_events(path) for path in (folder / "skim").glob("*.root"))
    figures: dict[str, Any] = {
        "events": args.events * len(SAMPLES),
        "threads": args.threads,
        "original_loop_s": original["loop_s"],
        "original_wall_s": original["wall_s"],
        "skim_s": skim_s,
        "skim_events": kept,
        "skim_bytes": skim_bytes,
        "input_bytes": input_bytes,
        "on_skim_loop_s": on_skim["loop_s"],
        "on_skim_wall_s": on_skim["wall_s"],
        "loop_speedup": original["loop_s"] / on_skim["loop_s"],
        "wall_speedup": original["wall_s"] / on_skim["wall_s"],
        "equal": same,
        "histogram_entries_compared": compared,
    }
    for key, value in figures.items():
        print(f"{key:28s} {value:.4g}" if isinstance(value, float) else f"{key:28s} {value}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
