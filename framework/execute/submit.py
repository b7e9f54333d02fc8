"""`run-analysis submit CONFIG.yaml`: job files for HTCondor or Slurm, one job per sample/era and file chunk.

The framework writes the jobs; the site's scheduler runs them. Each job is one
`run-analysis CONFIG --samples X | --eras E --part I/N -o OUT` command, listed in
`jobs.txt`; `run_job.sh K` runs line K. The submit file asks for the resources of the
config's `batch:` block. Outputs are added together by `run-analysis merge OUT`.
"""

from __future__ import annotations

import math
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from framework.config.load import LoadedConfig
from framework.errors import FrameworkError
from framework.inputs.files import resolve_files
from framework.plan.model import RunSelection
from framework.plan.select import select_samples

BACKENDS = ("htcondor", "slurm")


@dataclass(frozen=True)
class JobSet:
    folder: Path
    commands: list[list[str]]
    submit_file: Path


def _job_commands(
    config: LoadedConfig, selection: RunSelection, per: str, files_per_job: int, output: Path, systematics: str
) -> list[list[str]]:
    names = select_samples(config, selection)
    groups: dict[str | None, list[str]] = {}
    for name in names:
        key = name if per == "sample" else config.spec.samples[name].era
        groups.setdefault(key, []).append(name)
    base = [_run_analysis(), str(config.path), "-o", str(output), "--systematics", systematics]
    commands = []
    for key, members in groups.items():
        most_files = max(len(resolve_files(config, name)) for name in members)
        n = max(1, math.ceil(most_files / files_per_job))
        which = ["--samples", *members] if key is None or per == "sample" else ["--eras", key, "--samples", *members]
        for i in range(1, n + 1):
            commands.append([*base, *which, "--part", f"{i}/{n}", "-j", str(config.spec.batch.threads)])
    return commands


def _run_analysis() -> str:
    """The `run-analysis` of this installation (the jobs use the same environment)."""
    beside = Path(sys.executable).parent / "run-analysis"
    return str(beside) if beside.exists() else shutil.which("run-analysis") or "run-analysis"


def _minutes(text: str) -> int:
    value, unit = int(text[:-1]), text[-1]
    return max(1, math.ceil(value * {"s": 1 / 60, "m": 1, "h": 60, "d": 1440}[unit]))


def _megabytes(text: str) -> int:
    number = float(text[:-2].strip())
    return math.ceil(number * {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024**2}[text[-2].upper()])


def write_jobs(
    config: LoadedConfig,
    selection: RunSelection,
    backend: str,
    folder: Path,
    output: Path,
    per: str = "sample",
    files_per_job: int | None = None,
) -> JobSet:
    batch = config.spec.batch
    commands = _job_commands(
        config, selection, per, files_per_job or batch.files_per_job, output.resolve(), selection.systematics
    )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "logs").mkdir(exist_ok=True)
    (folder / "jobs.txt").write_text("".join(shlex.join(c) + "\n" for c in commands))
    script = folder / "run_job.sh"
    script.write_text(
        "#!/usr/bin/env bash\n"
        "# Runs line K (0-based) of jobs.txt: one sample/era and file chunk of the analysis.\n"
        "set -euo pipefail\n"
        f"cd {shlex.quote(str(Path.cwd()))}\n"
        f'line=$(sed -n "$(( $1 + 1 ))p" {shlex.quote(str((folder / "jobs.txt").resolve()))})\n'
        'eval "$line"\n'
    )
    script.chmod(0o755)
    if backend == "htcondor":
        submit = folder / "submit.sub"
        submit.write_text(
            f"executable = {script.resolve()}\n"
            "arguments = $(ProcId)\n"
            f"output = {folder.resolve()}/logs/job_$(ProcId).out\n"
            f"error = {folder.resolve()}/logs/job_$(ProcId).err\n"
            f"log = {folder.resolve()}/logs/condor.log\n"
            f"request_memory = {_megabytes(batch.memory)}\n"
            f"request_cpus = {batch.threads}\n"
            f"+MaxRuntime = {_minutes(batch.time) * 60}\n"
            "getenv = True\n"
            f"queue {len(commands)}\n"
        )
    else:
        submit = folder / "submit.sbatch"
        submit.write_text(
            "#!/usr/bin/env bash\n"
            f"#SBATCH --job-name={config.spec.analysis}\n"
            f"#SBATCH --array=0-{len(commands) - 1}\n"
            f"#SBATCH --mem={_megabytes(batch.memory)}M\n"
            f"#SBATCH --time={_minutes(batch.time)}\n"
            f"#SBATCH --cpus-per-task={batch.threads}\n"
            f"#SBATCH --output={folder.resolve()}/logs/job_%a.out\n"
            f"#SBATCH --error={folder.resolve()}/logs/job_%a.err\n"
            f'{script.resolve()} "$SLURM_ARRAY_TASK_ID"\n'
        )
    return JobSet(folder, commands, submit)


def submit_jobs(jobs: JobSet, backend: str) -> str:
    """Hand the submit file to the scheduler, when its command is installed here."""
    tool = "condor_submit" if backend == "htcondor" else "sbatch"
    if shutil.which(tool) is None:
        raise FrameworkError(
            f"'{tool}' is not installed on this machine: nothing was submitted",
            hint=f"the job files are ready in {jobs.folder}; "
            f"submit {jobs.submit_file.name} from a {backend} login node",
        )
    proc = subprocess.run([tool, str(jobs.submit_file)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise FrameworkError(f"{tool} failed: {proc.stderr.strip()}")
    return proc.stdout.strip()
