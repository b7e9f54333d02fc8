"""`run-analysis merge OUTDIR`: add the batch parts of each sample into one normalised file.

Reads only the part files (`<sample>.part-I-of-N.hist.zip`): checks that every part is
present and that all come from the same configuration with the same axes, adds
histograms and cutflows, normalises simulation by lumi x xsec / sum of generator weights
(the declared sum, else the sum over all parts), and writes `<sample>.hist.zip` in the
format of a single run. Missing parts are listed, with the commands that make them, in
`resubmit.txt`.
"""

from __future__ import annotations

import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hist
import uhi.io.zip

from framework.errors import ExecutionError, InputError
from framework.output.write import SUFFIX, output_name, read_member, write_files

PART = re.compile(rf"^(?P<sample>.+)\.part-(?P<i>\d+)-of-(?P<n>\d+){re.escape(SUFFIX)}$")


@dataclass
class MergeReport:
    merged: list[Path] = field(default_factory=list)
    missing: dict[str, list[int]] = field(default_factory=dict)
    resubmit: Path | None = None

    def summary(self) -> str:
        lines = [f"  merged {p}" for p in self.merged]
        for sample, parts in self.missing.items():
            lines.append(f"  {sample}: missing part(s) {', '.join(map(str, parts))}")
        if self.resubmit:
            lines.append(f"  commands for the missing parts: {self.resubmit}")
        return "\n".join(lines)


def _read(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, hist.Hist]]:
    try:
        with zipfile.ZipFile(path) as z:
            names = [n[: -len(".json")] for n in z.namelist() if n.endswith(".json")]
            histograms = {n: hist.Hist(uhi.io.zip.read(z, n)) for n in names if n not in ("provenance", "cutflow")}
    except (OSError, zipfile.BadZipFile, KeyError, ValueError) as err:
        raise InputError(f"{path} is not a complete output file: {err}", hint="run that part again") from None
    return _provenance(path), read_member(path, "cutflow.json"), histograms


def _provenance(path: Path) -> dict[str, Any]:
    try:
        return read_member(path, "provenance.json")  # type: ignore[no-any-return]
    except (OSError, zipfile.BadZipFile, KeyError, ValueError) as err:
        raise InputError(f"{path} is not a complete output file: {err}", hint="run that part again") from None


def _check_parts(sample: str, paths: list[Path], provenances: list[dict[str, Any]]) -> None:
    """Parts of one sample must read its inputs the same way and never the same entries twice."""
    for key, what in (("max_events", "--max-events"), ("systematics", "--systematics"), ("cpp_hash", "C++ files")):
        values = {json.dumps(p.get(key)) for p in provenances}
        if len(values) > 1:
            listing = ", ".join(f"{path.name}: {p.get(key)}" for path, p in zip(paths, provenances))
            raise InputError(f"sample {sample!r}: its parts were made with different {what} ({listing})",
                             hint="make every part with the same command but --part")
    identities: dict[str, tuple[Any, str]] = {}
    for path, p in zip(paths, provenances):
        for file, identity in (p.get("file_identities") or {}).items():
            seen = identities.setdefault(file, (identity, path.name))
            if seen[0] != identity:
                raise InputError(f"sample {sample!r}: {file} changed between {seen[1]} and {path.name} (size or time)",
                                 hint="run every part again on the inputs as they are now")
    read: dict[str, list[tuple[int, int, str]]] = {}
    for path, p in zip(paths, provenances):
        ranges = p.get("entry_ranges") or [[0, 1 << 62] for _ in p["files"]]
        for file, (begin, end) in zip(p["files"], ranges):
            for other_begin, other_end, other in read.get(file, []):
                if begin < other_end and other_begin < end:
                    raise InputError(f"sample {sample!r}: {path.name} and {other} both read entries of {file}",
                                     hint="merge parts of one split of the sample (the same N in --part I/N)")
            read.setdefault(file, []).append((begin, end, path.name))


def _resubmit_command(provenance: dict[str, Any], part: int, total: int) -> str:
    command = list(provenance["command"])
    if "--part" in command:
        command[command.index("--part") + 1] = f"{part}/{total}"
    return " ".join(command)


def merge_outputs(outdir: Path, target: Path | None = None) -> MergeReport:
    """Merge every sample's parts found in `outdir` into `target` (default: `outdir`)."""
    target = target or outdir
    parts: dict[str, dict[int, Path]] = {}
    totals: dict[str, int] = {}
    for path in sorted(outdir.glob(f"*.part-*-of-*{SUFFIX}")):
        m = PART.match(path.name)
        if m is None:
            continue
        sample, i, n = m["sample"], int(m["i"]), int(m["n"])
        if totals.setdefault(sample, n) != n:
            raise InputError(f"sample {sample!r} has parts of {totals[sample]} and of {n} in {outdir}")
        parts.setdefault(sample, {})[i] = path
    if not parts:
        raise InputError(f"no part files (*.part-I-of-N{SUFFIX}) in {outdir}", hint="run with --part I/N first")

    report = MergeReport()
    files: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    config_hash: str | None = None
    commands: list[str] = []
    for sample, found in parts.items():
        n = totals[sample]
        missing = [i for i in range(1, n + 1) if i not in found]
        first = _provenance(next(iter(found.values())))
        if missing:
            report.missing[sample] = missing
            commands += [_resubmit_command(first, i, n) for i in missing]
            continue
        merged: dict[str, hist.Hist] = {}
        cutflow: list[dict[str, Any]] = []
        sum_gen = 0.0
        provenances = []
        for i in range(1, n + 1):
            provenance, rows, histograms = _read(found[i])
            if config_hash is None:
                config_hash = provenance["config_hash"]
            if provenance["config_hash"] != config_hash:
                raise InputError(
                    f"{found[i].name} comes from another configuration (config hash "
                    f"{provenance['config_hash'][:12]}, others {config_hash[:12]})",
                    hint="merge only parts of one run; rerun that part with the current config",
                )
            provenances.append(provenance)
            sum_gen += provenance["sum_gen_weights"] or 0.0
            for name, h in histograms.items():
                if name in merged and merged[name].axes != h.axes:
                    raise InputError(f"histogram {name!r} of {found[i].name} has other axes than part 1")
                merged[name] = merged[name] + h if name in merged else h
            cutflow = rows if not cutflow else [
                {"cut": a["cut"], "events": a["events"] + b["events"], "weighted": a["weighted"] + b["weighted"],
                 "weighted_variance": a["weighted_variance"] + b["weighted_variance"]}
                for a, b in zip(cutflow, rows, strict=True)
            ]
        _check_parts(sample, [found[i] for i in range(1, n + 1)], provenances)
        norm = 1.0
        if not first["is_data"]:
            declared = first.get("declared_sum_weights")
            total = declared if declared is not None else sum_gen
            if not total:
                raise ExecutionError(f"sample {sample!r}: the sum of generator weights is zero; cannot normalise")
            norm = first["lumi_inv_pb"] * first["xsec_pb"] / total
            for h in merged.values():
                view = h.view(flow=True)
                view.value *= norm
                view.variance *= norm * norm
            for row in cutflow:
                row["weighted"] *= norm
                row["weighted_variance"] *= norm * norm
        provenance = {
            **first,
            "part": None,
            "merged_parts": [p.name for p in (found[i] for i in range(1, n + 1))],
            "files": list(dict.fromkeys(f for p in provenances for f in p["files"])),
            "entry_ranges": None,
            "events_read": sum(p["events_read"] for p in provenances),
            "sum_gen_weights": sum_gen if not first["is_data"] else None,
            "normalisation": norm,
            "normalised": True,
        }
        files[output_name(sample)] = ({"provenance.json": provenance, "cutflow.json": cutflow}, merged)
    if files:
        report.merged = write_files(target, files, ("merge.json", {"merged": list(files), "missing": report.missing}))
    if commands:
        report.resubmit = target / "resubmit.txt"
        target.mkdir(parents=True, exist_ok=True)
        report.resubmit.write_text("\n".join(commands) + "\n")
    return report
