"""Do the shipped analyses still write the same histograms, byte for byte? (For changes that
must not change results: a refactor, a new cache, another build.)

`record FILE` runs each shipped analysis that needs no external data (one thread, so sums are
added in one order) and writes the SHA-256 of every output member but the provenance (which
says when and how a file was made); `compare FILE` runs them again and lists every member that
differs, exiting 1 if any does.

    python tools/same_outputs.py record /tmp/before.json
    ... change the code ...
    python tools/same_outputs.py compare /tmp/before.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ANALYSES = ["demo", "adl", "agc_ttbar", "higgs_4l", "tnp_muon", "cosmic_dt"]
VOLATILE = {"provenance.json", "run.json"}  # when, where and how long: not results


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def digest(folder: Path) -> dict[str, str]:
    """{member path: sha256} of an output folder: each member of each .hist.zip, and every other
    data file written beside them (efficiencies, tables)."""
    found: dict[str, str] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        name = str(path.relative_to(folder))
        if path.name.endswith(".hist.zip"):
            with zipfile.ZipFile(path) as z:
                for member in sorted(z.namelist()):
                    if member not in VOLATILE:
                        found[f"{name}/{member}"] = _sha(z.read(member))
        elif path.suffix in {".json", ".csv", ".txt", ".tex"} and path.name not in VOLATILE:
            found[name] = _sha(path.read_bytes())
    return found


def run_all(work: Path) -> dict[str, dict[str, str]]:
    digests = {}
    for analysis in ANALYSES:
        out = work / analysis
        subprocess.run(
            [
                sys.executable,
                "-m",
                "framework",
                str(REPO / "analyses" / analysis / "config.yaml"),
                "-o",
                str(out),
                "-j",
                "1",
                "--force",
                "--no-progress",
            ],
            check=True,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
        )
        digests[analysis] = digest(out)
        print(f"{analysis}: {len(digests[analysis])} members", flush=True)
    return digests


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["record", "compare"])
    parser.add_argument("file", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="same-outputs-") as work:
        now = run_all(Path(work))
    if args.action == "record":
        args.file.write_text(json.dumps(now, indent=1, sort_keys=True))
        return 0
    before = json.loads(args.file.read_text())
    differ = [
        f"{a}: {m}"
        for a in before
        for m in sorted(set(before[a]) | set(now.get(a, {})))
        if before[a].get(m) != now.get(a, {}).get(m)
    ]
    print("\n".join(differ) if differ else f"identical: {sum(len(d) for d in now.values())} members")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
