"""Tag-and-probe fit speed: N simultaneous pass/fail fits of the nominal model (MC template x
Gaussian + CMS erfc x exp background, 14 parameters, MINOS on the efficiency), on toys of
realistic statistics, in worker processes as `run-analysis` runs them.

    python benchmarks/tnp_fits.py --fits 2000 --json OUT.json

Prints fits/s, the fraction converged and the time a 10,000-fit campaign would take. The
toys are drawn with numpy: a Z line shape (Breit-Wigner x Gaussian resolution) for the signal,
a falling spectrum with a turn-on for the background, a template from a separate high-statistics
sample; statistics and efficiencies vary from toy to toy.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from framework.extensions.tnp.fitting import fit_efficiency
from framework.extensions.tnp.likelihood import FitInput

EDGES = np.linspace(50, 130, 81)  # the histogram window, 1 GeV bins
FIT = (70.0, 110.0)


def _signal(rng: np.random.Generator, n: int) -> np.ndarray:
    mass = 91.1876 + 2.4952 / 2 * rng.standard_cauchy(n) + rng.normal(0, 1.2, n)
    return mass[(mass > EDGES[0]) & (mass < EDGES[-1])]


def _background(rng: np.random.Generator, n: int, turn_on: float) -> np.ndarray:
    mass = EDGES[0] + rng.exponential(35.0, 4 * n)
    keep = rng.random(len(mass)) < 1 / (1 + np.exp(-(mass - turn_on) / 4))
    mass = mass[keep & (mass < EDGES[-1])]
    return mass[:n]


def toy(seed: int, template: np.ndarray) -> FitInput:
    rng = np.random.default_rng(seed)
    probes = int(rng.choice([500, 2000, 10000, 50000]))
    eff = rng.uniform(0.80, 0.99)
    passed = rng.binomial(probes, eff)
    counts = []
    for n_signal, background_fraction in ((passed, 0.05), (probes - passed, 0.4)):
        n_background = int(background_fraction * n_signal / (1 - background_fraction))
        values = np.concatenate([_signal(rng, n_signal), _background(rng, n_background, rng.uniform(55, 75))])
        counts.append(np.histogram(values, EDGES)[0].astype(float))
    inside = (EDGES[:-1] >= FIT[0]) & (EDGES[1:] <= FIT[1])
    cut = np.flatnonzero(inside)
    return FitInput(
        EDGES[cut[0] : cut[-1] + 2], counts[0][inside], counts[1][inside], (template, EDGES), (template, EDGES)
    )


def run(data: FitInput) -> tuple[bool, float]:
    result = fit_efficiency(data, "template_gauss", "cms")
    return result.converged, result.value


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--fits", type=int, default=1000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    template = np.histogram(_signal(np.random.default_rng(1), 400000), EDGES)[0].astype(float)
    toys = [toy(seed, template) for seed in range(1000, 1000 + args.fits)]  # made before the clock starts
    with ProcessPoolExecutor(args.workers) as pool:
        list(pool.map(run, toys[: args.workers]))  # start the workers and load the compiled likelihood
        start = time.perf_counter()
        results = list(pool.map(run, toys, chunksize=8))
        seconds = time.perf_counter() - start
    converged = sum(ok for ok, _ in results) / len(results)
    rate = args.fits / seconds
    out = {
        "fits": args.fits,
        "workers": args.workers,
        "seconds": seconds,
        "fits_per_s": rate,
        "converged": converged,
        "campaign_10000_fits_s": 10000 / rate,
    }
    print(
        f"{args.fits} fits in {seconds:.1f} s on {args.workers} processes: {rate:.1f} fits/s, "
        f"{100 * converged:.1f}% converged; a 10,000-fit campaign takes {10000 / rate / 60:.1f} min"
    )
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
