"""`run-analysis fit`: the model under 'model:' fitted with pyhf to a run's output files."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

COMMAND = "fit"
DESCRIPTION = "fit the statistical model ('model:') with pyhf: mu, significance, CLs limits, pulls, impacts"


def summary(result: dict[str, Any]) -> list[str]:
    lines = [
        (
            f"  mu = {result['mu']:.3f} -{result['mu_err_down']:.3f}/+{result['mu_err_up']:.3f} "
            f"(profile likelihood; MINUIT's Hesse matrix: +-{result['mu_err_hesse']:.3f})"
        ),
        (
            f"  discovery significance: observed {result['z_obs']:.2f}, expected {result['z_exp']:.2f} "
            f"(statistics only: observed {result['z_obs_stat_only']:.2f}, expected {result['z_exp_stat_only']:.2f})"
        ),
        (
            f"  95% CL upper limit on mu (CLs): observed {result['cls_limit_obs']:.3f}, "
            f"expected {result['cls_limit_exp']:.3f} "
            "(-1/+1 sigma: {1:.3f}/{3:.3f}, -2/+2 sigma: {0:.3f}/{4:.3f})".format(*result["cls_limit_exp_band"])
        ),
    ]
    if result["asimov_channels"]:
        lines.append(f"  Asimov data (blinded or asked for) in: {', '.join(result['asimov_channels'])}")
    if result.get("one_sided_mirrored"):
        lines.append(f"  one-sided, down mirrored (2 nominal - up): {', '.join(result['one_sided_mirrored'])}")
    for impact in result["impacts"][:5]:
        lines.append(f"  impact on mu of {impact['parameter']}: {impact['up']:+.3f} / {impact['down']:+.3f}")
    return lines


def main(argv: list[str]) -> int:
    from framework.stats.commands import FIT, make_fit

    p = argparse.ArgumentParser(prog=f"run-analysis {COMMAND}", description=DESCRIPTION)
    p.add_argument("config", type=Path, help="the analysis YAML the run used")
    p.add_argument("-i", "--input", type=Path, required=True, help="the run's output folder (its -o)")
    p.add_argument(
        "-o", "--output", type=Path, help="folder for fit.json and the fitted workspace (default: INPUT/fit)"
    )
    args = p.parse_args(argv)
    output = args.output or args.input / "fit"
    result = make_fit(args.config, args.input, output)
    print("\n".join(summary(result)))
    print(f"  wrote {output / FIT}")
    return 0
