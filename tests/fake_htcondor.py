"""Fake HTCondor client tools for tests (no HTCondor daemons install here): `condor_submit`, `condor_q`,
`condor_history` and `condor_rm` as small executables over a pool kept in a JSON file, answering in the formats
of the real ones (HTCondor manual, man pages of each tool):

- condor_submit FILE reads the submit description as condor_submit does for what the framework writes: `key =
  value` commands, `#` comments, and queue statements `queue`, `queue N` and `queue VAR in (ITEM ITEM ...)` (items
  separated by commas and/or spaces), each queued job numbered by ProcId in order with `$(ProcId)`, `$(Process)`,
  `$(ClusterId)`, `$(Cluster)` and the loop variable expanded. It refuses what it does not know (an option, another
  queue form, a macro never defined, which real HTCondor would expand to nothing), so a file the framework writes
  wrongly fails here. It prints "Submitting job(s)..." and "N job(s) submitted to cluster C."
- condor_q / condor_history ID... -json -attributes A,B: the JSON array of the matching jobs' ClassAds
  with the attributes asked for (those a job has), or nothing when no job matches.
- condor_rm ID...: each job to the history as removed (JobStatus 3), "Job C.P marked for removal".

The test plays the schedd: it sets a queued job's JobStatus (`FakePool.set`), moves it to the history (`leave`)
or drops it (`forget`), makes a tool fail as when the schedd is unreachable or hangs (`fail`), and reads the calls
each tool got.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

TOOLS = ("condor_submit", "condor_q", "condor_history", "condor_rm")
POOL_FILE = "pool.json"
FIRST_CLUSTER = 41
# what the real tools print when the schedd cannot be reached (condor_q and condor_history: "-- Failed to fetch
# ads from: <address> : host" and the security layer's error; condor_submit: no schedd address)
UNREACHABLE = {
    "condor_submit": "\nERROR: Can't find address of local schedd\n",
    "default": "\n-- Failed to fetch ads from: <127.0.0.1:9618?addrs=127.0.0.1-9618&noUDP&sock=schedd_81_2f3e> : "
    "submit.example.org\nSECMAN:2007:Failed to end classad message.\n",
}
MACRO = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


class FakePool:
    """The pool behind the fake tools of `folder` (made by `install`)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @classmethod
    def install(cls, folder: Path) -> FakePool:
        """The four tools as executables in `folder` (put it first on PATH), over an empty pool."""
        folder.mkdir(parents=True, exist_ok=True)
        for tool in TOOLS:
            path = folder / tool
            path.write_text(
                f"#!{sys.executable}\n"
                "import sys\n"
                "from pathlib import Path\n"
                f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
                "from fake_htcondor import main\n"
                f"sys.exit(main({tool!r}, Path(__file__).parent / {POOL_FILE!r}, sys.argv[1:]))\n"
            )
            path.chmod(0o755)
        pool = cls(folder)
        pool.save({"next_cluster": FIRST_CLUSTER, "queue": [], "history": [], "calls": [], "failing": {}})
        return pool

    def load(self) -> dict[str, Any]:
        return json.loads((self.folder / POOL_FILE).read_text())

    def save(self, pool: dict[str, Any]) -> None:
        (self.folder / POOL_FILE).write_text(json.dumps(pool, indent=1))

    def ad(self, job_id: str) -> dict[str, Any]:
        """The ClassAd of job `job_id` ("C.P"), in the queue or the history."""
        pool = self.load()
        return next(ad for ad in pool["queue"] + pool["history"] if _job_id(ad) == job_id)

    def set(self, job_id: str, **attributes: Any) -> None:
        """Change attributes of a job in the queue (JobStatus=2: it runs; 5 and a HoldReason: held)."""
        pool = self.load()
        next(ad for ad in pool["queue"] if _job_id(ad) == job_id).update(attributes)
        self.save(pool)

    def leave(self, job_id: str, **attributes: Any) -> None:
        """Move a job from the queue to the history with `attributes` (JobStatus 4 and ExitCode, or 3)."""
        pool = self.load()
        ad = next(ad for ad in pool["queue"] if _job_id(ad) == job_id)
        pool["queue"].remove(ad)
        pool["history"].append({**ad, **attributes})
        self.save(pool)

    def forget(self, job_id: str) -> None:
        """Drop a job from the queue without a trace (as when its history has been rotated away)."""
        pool = self.load()
        pool["queue"] = [ad for ad in pool["queue"] if _job_id(ad) != job_id]
        self.save(pool)

    def fail(self, tool: str, how: str) -> None:
        """Make `tool` fail from now on: "unreachable" (the schedd's error, exit code 1) or "hang" (no answer)."""
        pool = self.load()
        pool["failing"][tool] = how
        self.save(pool)

    def calls(self, tool: str) -> list[list[str]]:
        """The arguments of each call of `tool`, in order."""
        return [call[1:] for call in self.load()["calls"] if call[0] == tool]


def _job_id(ad: dict[str, Any]) -> str:
    return f"{ad['ClusterId']}.{ad['ProcId']}"


def main(tool: str, pool_file: Path, args: list[str]) -> int:
    pool = FakePool(pool_file.parent)
    state = pool.load()
    state["calls"].append([tool, *args])
    pool.save(state)
    failing = state["failing"].get(tool)
    if failing == "hang":
        time.sleep(600)
    if failing == "unreachable":
        sys.stderr.write(UNREACHABLE.get(tool, UNREACHABLE["default"]))
        return 1
    try:
        output = {"condor_submit": _submit, "condor_q": _query, "condor_history": _query, "condor_rm": _remove}[tool](
            tool, state, args
        )
    except ValueError as err:
        sys.stderr.write(f"ERROR: {err}\n")
        return 1
    pool.save(state)
    sys.stdout.write(output)
    return 0


def _submit(tool: str, state: dict[str, Any], args: list[str]) -> str:
    if len(args) != 1 or args[0].startswith("-"):
        raise ValueError(f"this fake condor_submit takes one submit file and no option, not {args}")
    path = Path(args[0])
    cluster = state["next_cluster"]
    commands: dict[str, str] = {}
    jobs: list[dict[str, Any]] = []
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{path}:{number}: '{line}'"
        if line.split()[0].lower() == "queue":
            for loop in _queue_items(line, where):
                names = {**commands, **loop, "procid": str(len(jobs)), "process": str(len(jobs))}
                names |= {"clusterid": str(cluster), "cluster": str(cluster)}
                ad = {"ClusterId": cluster, "ProcId": len(jobs), "JobStatus": 1}
                for command, attribute in (("arguments", "Args"), ("output", "Out"), ("error", "Err")):
                    ad[attribute] = _expand(commands.get(command, ""), names, where)
                if "transfer_output_files" in commands:
                    ad["TransferOutput"] = _expand(commands["transfer_output_files"], names, where)
                jobs.append(ad)
            continue
        key, equals, value = line.partition("=")
        if not equals or not key.strip():
            raise ValueError(f"{where} is neither `command = value` nor a queue statement")
        commands[key.strip().lower()] = value.strip()
    executable = commands.get("executable", "")
    if not jobs or not os.access(executable, os.X_OK):
        raise ValueError(f"{path}: no queue statement, or no executable file (executable = {executable!r})")
    state["queue"] += jobs
    state["next_cluster"] = cluster + 1
    return f"Submitting job(s){'.' * len(jobs)}\n{len(jobs)} job(s) submitted to cluster {cluster}.\n"


def _queue_items(line: str, where: str) -> list[dict[str, str]]:
    """The loop variables of each job a queue statement queues."""
    words = line.split()
    if len(words) == 1:
        return [{}]
    if len(words) == 2 and words[1].isdigit():
        return [{}] * int(words[1])
    loop = re.fullmatch(r"queue\s+([A-Za-z_]\w*)\s+in\s+\(([^()]*)\)", line, flags=re.IGNORECASE)
    items = re.split(r"[,\s]+", loop.group(2).strip()) if loop else []
    if not loop or not all(items):
        raise ValueError(f"{where}: this fake reads `queue`, `queue N` and `queue VAR in (ITEMS)` on one line only")
    return [{loop.group(1).lower(): item} for item in items]


def _expand(value: str, names: dict[str, str], where: str) -> str:
    def name(match: re.Match[str]) -> str:
        if match.group(1).lower() not in names:
            raise ValueError(f"{where}: $({match.group(1)}) is not defined for this job")
        return names[match.group(1).lower()]

    return MACRO.sub(name, value)


def _query(tool: str, state: dict[str, Any], args: list[str]) -> str:
    ids, attributes, json_output = [], None, False
    rest = iter(args)
    for arg in rest:
        if arg == "-json":
            json_output = True
        elif arg == "-attributes":
            attributes = next(rest).split(",")
        elif re.fullmatch(r"\d+(\.\d+)?", arg):
            ids.append(arg)
        else:
            raise ValueError(f"{tool}: this fake does not know {arg!r}")
    if not json_output or attributes is None:
        raise ValueError(f"{tool}: this fake answers -json -attributes queries only")
    ads = [
        ad
        for ad in state["queue" if tool == "condor_q" else "history"]
        if not ids or str(ad["ClusterId"]) in ids or _job_id(ad) in ids
    ]
    if not ads:
        return ""  # as the real ones: nothing at all when no job matches
    shown = [{name: ad[name] for name in attributes if name in ad} for ad in ads]
    return "[\n" + "\n,\n".join(json.dumps(ad, indent=2) for ad in shown) + "\n]\n"


def _remove(tool: str, state: dict[str, Any], args: list[str]) -> str:
    lines = []
    for job_id in args:
        ad = next((ad for ad in state["queue"] if _job_id(ad) == job_id), None)
        if ad is None:
            raise ValueError(f"Couldn't find/remove all jobs matching constraint (ClusterId=={job_id.split('.')[0]})")
        state["queue"].remove(ad)
        state["history"].append({**ad, "JobStatus": 3, "RemoveReason": "via condor_rm (by user root)"})
        lines.append(f"Job {job_id} marked for removal\n")
    return "".join(lines)
