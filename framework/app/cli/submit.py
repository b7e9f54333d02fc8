"""`run-analysis submit`: HTCondor or Slurm job files for a config (of runs, or with `--skim` of skims), queued
on request; `--resubmit JOBDIR` queues again the jobs that failed or are held (`framework.execute.submit`)."""

from __future__ import annotations

import argparse
from pathlib import Path

COMMAND = "submit"
DESCRIPTION = "write HTCondor or Slurm job files: one job per sample (or era) and chunk of files"


def _parser() -> argparse.ArgumentParser:
    from framework.execute.submit import BACKENDS

    p = argparse.ArgumentParser(prog="run-analysis submit", description=DESCRIPTION)
    p.add_argument("config", type=Path, nargs="?")
    p.add_argument("--backend", choices=BACKENDS)
    p.add_argument("--per", choices=("sample", "era"), default="sample", help="one job set per sample or per era")
    p.add_argument("--files-per-job", type=int, help="input files per job (default: the config's batch.files_per_job)")
    p.add_argument("--samples", nargs="+", default=[], metavar="NAME")
    p.add_argument("--eras", nargs="+", default=[], metavar="ERA")
    p.add_argument("--systematics", default="all", metavar="SEL")
    p.add_argument(
        "--skim",
        action="store_true",
        help="jobs of `run-analysis skim` (one sample and file chunk each) instead of runs: see run-analysis skim",
    )
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        help="where the jobs write (default: results/<analysis>/parts; with --skim: skims/<analysis>)",
    )
    p.add_argument("--jobs-dir", type=Path, help="where the job files go (default: jobs/<analysis>)")
    p.add_argument("--submit", action="store_true", help="also hand them to condor_submit / sbatch")
    p.add_argument(
        "--resubmit", type=Path, metavar="JOBDIR", help="queue again the failed and held jobs of JOBDIR (no CONFIG)"
    )
    return p


def main(argv: list[str]) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.resubmit:
        if args.config:
            parser.error("--resubmit JOBDIR takes no CONFIG: the job folder has its jobs")
        return _resubmit(args.resubmit)
    if not args.config or not args.backend:
        parser.error("CONFIG and --backend are required (or --resubmit JOBDIR)")
    return _write(args)


def _write(args: argparse.Namespace) -> int:
    from framework.config.load import load_config
    from framework.execute.folders import output_folder, skim_folder
    from framework.execute.submit import KINDS, submit_jobs, write_jobs
    from framework.plan.model import RunSelection

    config = load_config(args.config)
    name = config.spec.analysis
    default_output = skim_folder(None, name) if args.skim else output_folder(None, name) / "parts"
    jobs = write_jobs(
        config,
        RunSelection(tuple(args.samples), tuple(args.eras), args.systematics),
        args.backend,
        args.jobs_dir or Path("jobs") / name,
        args.output or default_output,
        args.per,
        args.files_per_job,
        KINDS["skim" if args.skim else "run"],
    )
    print(f"{len(jobs.jobs)} job(s) in {jobs.folder}: submit file {jobs.submit_file}")
    if args.submit:
        array_id = submit_jobs(jobs)
        print(f"submitted as {jobs.scheduler.name} job {array_id}; follow them with: run-analysis status {jobs.folder}")
    else:
        print("nothing submitted (add --submit to hand them to the scheduler)")
    return 0


def _resubmit(folder: Path) -> int:
    from framework.execute.submit import resubmit

    done = resubmit(folder)
    if done is None:
        print(f"no failed or held job in {folder}: nothing resubmitted")
        return 0
    print(f"resubmitted job(s) {', '.join(map(str, done.jobs))} as {done.submission}")
    if done.removed:
        print(f"took the held {', '.join(done.removed)} out of the queue")
    return 0
