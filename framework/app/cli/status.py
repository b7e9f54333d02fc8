"""`run-analysis status JOBDIR`: each batch job queued, running, held, done or failed (`framework.execute.submit`)."""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

COMMAND = "status JOBDIR"
DESCRIPTION = "the state of each batch job of a job folder (exit code 1 if any failed or is held)"


def main(argv: list[str]) -> int:
    from framework.execute.schedulers import JobState
    from framework.execute.submit import JobSet, job_states

    p = argparse.ArgumentParser(prog="run-analysis status", description=DESCRIPTION)
    p.add_argument("jobdir", type=Path)
    args = p.parse_args(argv)
    jobs = JobSet.load(args.jobdir)
    states = job_states(jobs)
    rows = [("job", "samples", "part", "state", "id", "events", "")]
    for s in states:
        job = jobs.jobs[s.job]
        events = "" if s.progress is None else f"{s.progress[0]:,} / {s.progress[1]:,}"
        if s.progress is not None and s.progress[1] == 0:
            events = "setting up"  # its inputs are inspected before their events are counted
        part = f"{job.part[0]}/{job.part[1]}"
        rows.append((str(s.job), " ".join(job.samples), part, s.state.value, s.task_id, events, s.detail))
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]) - 1)]
    for row in rows:
        print(("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[-1]).rstrip())
    counts = Counter(s.state for s in states)
    reported = [s.progress for s in states if s.progress is not None]
    events = f"; events read {sum(p[0] for p in reported):,} / {sum(p[1] for p in reported):,}" if reported else ""
    print(
        f"{len(states)} job(s): "
        + ", ".join(f"{counts[state]} {state.value}" for state in JobState if counts[state])
        + events
    )
    to_resubmit = [state.value for state in (JobState.FAILED, JobState.HELD) if counts[state]]
    if to_resubmit:
        print(f"queue the {' and '.join(to_resubmit)} ones again with: run-analysis submit --resubmit {args.jobdir}")
        return 1
    return 0
