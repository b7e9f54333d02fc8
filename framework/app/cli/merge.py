"""`run-analysis merge`: the batch parts of each sample added into one normalised file."""

from __future__ import annotations

import argparse
from pathlib import Path

COMMAND = "merge"
DESCRIPTION = (
    "add the batch parts (--part I/N outputs) of each sample in OUTDIR into one normalised file; "
    "given a job folder (of `submit`), its jobs' outputs, naming the jobs whose part is missing"
)


def main(argv: list[str]) -> int:
    from framework.errors import InputError
    from framework.execute.submit import JOBS_FILE, JobSet
    from framework.output.merge import merge_outputs

    p = argparse.ArgumentParser(prog="run-analysis merge", description=DESCRIPTION)
    p.add_argument("outdir", type=Path, metavar="OUTDIR|JOBDIR")
    p.add_argument("-o", "--output", type=Path, help="where to write the merged files (default: OUTDIR)")
    args = p.parse_args(argv)
    if not (args.outdir / JOBS_FILE).is_file():
        report = merge_outputs(args.outdir, args.output)
        print(report.summary())
        return 1 if report.missing else 0
    jobs = JobSet.load(args.outdir)
    if not jobs.kind.merged:
        raise InputError(
            f"{args.outdir} is a job folder of {jobs.kind.name} jobs: their outputs are not merged",
            hint=f"skim jobs list their samples in {jobs.output}/samples.yaml themselves; "
            f"see which are done with: run-analysis status {args.outdir}",
        )
    report = merge_outputs(jobs.output, args.output, {s: job.part[1] for job in jobs.jobs for s in job.samples})
    print(report.summary())
    for k, job in enumerate(jobs.jobs):
        if any(job.part[0] in report.missing.get(sample, ()) for sample in job.samples):
            print(f"  job {k} ({' '.join(job.samples)}, part {job.part[0]}/{job.part[1]}) wrote no complete output")
    return 1 if report.missing else 0
