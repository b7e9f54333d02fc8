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
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import hist

from framework.errors import InputError
from framework.output.format import CutflowRow, Provenance, read_provenance, read_records
from framework.output.normalise import normalisation, normalise
from framework.output.write import SUFFIX, output_name, read_histograms, sample_members, write_files

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
            lines.append(  # a killed job writes no part (outputs are renamed into place when complete)
                "  for batch jobs, 'run-analysis status JOBDIR' names the jobs that failed and "
                "'run-analysis submit --resubmit JOBDIR' queues them again"
            )
        return "\n".join(lines)


BROKEN = (OSError, zipfile.BadZipFile, KeyError, ValueError)  # what reading a truncated or foreign file raises


def _broken(path: Path, err: Exception) -> InputError:
    return InputError(f"{path} is not a complete output file: {err}", hint="run that part again")


def _provenance(path: Path) -> Provenance:
    try:
        return read_provenance(path)
    except BROKEN as err:
        raise _broken(path, err) from None


@dataclass(frozen=True)
class Part:
    """One part file of a sample, read."""

    path: Path
    provenance: Provenance
    cutflow: list[CutflowRow]
    histograms: dict[str, hist.Hist]

    @classmethod
    def read(cls, path: Path) -> Part:
        try:
            provenance, cutflow = read_records(path)
            return cls(path, provenance, cutflow, read_histograms(path))
        except BROKEN as err:
            raise _broken(path, err) from None


def _check_parts(sample: str, parts: list[Part], config_hash: str) -> None:
    """Parts of one sample must come from one configuration, read its inputs the same way and
    never the same entries twice."""
    for part in parts:
        if part.provenance.config_hash != config_hash:
            raise InputError(
                f"{part.path.name} comes from another configuration (config hash "
                f"{part.provenance.config_hash[:12]}, others {config_hash[:12]})",
                hint="merge only parts of one run; rerun that part with the current config",
            )
    checked = (("max_events", "--max-events"), ("systematics", "--systematics"), ("cpp_hash", "C++ files"))
    for key, what in (*checked, ("lumi_mask", "lumi masks")):
        values = {json.dumps(part.provenance.model_dump(mode="json")[key]) for part in parts}
        if len(values) > 1:
            listing = ", ".join(f"{part.path.name}: {getattr(part.provenance, key)}" for part in parts)
            raise InputError(
                f"sample {sample!r}: its parts were made with different {what} ({listing})",
                hint="make every part with the same command but --part",
            )
    identities: dict[str, tuple[object, str]] = {}
    for part in parts:
        for file, identity in part.provenance.file_identities.items():
            seen = identities.setdefault(file, (identity, part.path.name))
            if seen[0] != identity:
                raise InputError(
                    f"sample {sample!r}: {file} changed between {seen[1]} and {part.path.name} (size or time)",
                    hint="run every part again on the inputs as they are now",
                )
    _check_entries(sample, parts)


def _check_entries(sample: str, parts: list[Part]) -> None:
    read: dict[str, list[tuple[int, int, str]]] = {}
    for part in parts:
        p = part.provenance
        ranges = p.entry_ranges or [(0, 1 << 62) for _ in p.files]
        for file, (begin, end) in zip(p.files, ranges):
            for other_begin, other_end, other in read.get(file, []):
                if begin < other_end and other_begin < end:
                    raise InputError(
                        f"sample {sample!r}: {part.path.name} and {other} both read entries of {file}",
                        hint="merge parts of one split of the sample (the same N in --part I/N)",
                    )
            read.setdefault(file, []).append((begin, end, part.path.name))


def _add(parts: list[Part]) -> tuple[dict[str, hist.Hist], list[CutflowRow]]:
    """The parts' histograms and cutflows, added."""
    histograms: dict[str, hist.Hist] = {}
    cutflow: list[CutflowRow] = []
    for part in parts:
        for name, h in part.histograms.items():
            if name in histograms and histograms[name].axes != h.axes:
                raise InputError(f"histogram {name!r} of {part.path.name} has other axes than part 1")
            histograms[name] = histograms[name] + h if name in histograms else h
        cutflow = part.cutflow if not cutflow else [a.plus(b) for a, b in zip(cutflow, part.cutflow, strict=True)]
    return histograms, cutflow


def merge_sample(sample: str, parts: list[Part]) -> tuple[dict[str, object], dict[str, hist.Hist]]:
    """One sample's parts added and normalised: the JSON members and histograms of its file."""
    histograms, cutflow = _add(parts)
    provenances = [part.provenance for part in parts]
    first = provenances[0]
    sum_gen = sum(p.sum_gen_weights or 0.0 for p in provenances)
    norm = 1.0
    if not first.is_data:
        assert first.lumi_inv_pb is not None and first.xsec_pb is not None
        declared = first.declared_sum_weights
        norm = normalisation(sample, first.lumi_inv_pb, first.xsec_pb, declared if declared is not None else sum_gen)
    provenance = first.model_copy(
        update={
            "part": None,
            "merged_parts": tuple(part.path.name for part in parts),
            "files": tuple(dict.fromkeys(f for p in provenances for f in p.files)),
            "entry_ranges": None,
            "events_read": sum(p.events_read for p in provenances),
            "sum_gen_weights": sum_gen if not first.is_data else None,
            "normalisation": norm,
            "normalised": True,
        }
    )
    return sample_members(provenance, normalise(histograms.values(), cutflow, norm)), histograms


def _resubmit_command(provenance: Provenance, part: int, total: int) -> str:
    command = list(provenance.command)
    if "--part" in command:
        command[command.index("--part") + 1] = f"{part}/{total}"
    return " ".join(command)


def find_parts(outdir: Path) -> dict[str, tuple[int, dict[int, Path]]]:
    """{sample: (N, {I: path})} of the part files `<sample>.part-I-of-N.hist.zip` in `outdir`."""
    parts: dict[str, tuple[int, dict[int, Path]]] = {}
    for path in sorted(outdir.glob(f"*.part-*-of-*{SUFFIX}")):
        m = PART.match(path.name)
        if m is None:
            continue
        sample, i, n = m["sample"], int(m["i"]), int(m["n"])
        total, found = parts.setdefault(sample, (n, {}))
        if total != n:
            raise InputError(f"sample {sample!r} has parts of {total} and of {n} in {outdir}")
        found[i] = path
    if not parts:
        raise InputError(f"no part files (*.part-I-of-N{SUFFIX}) in {outdir}", hint="run with --part I/N first")
    return parts


def merge_outputs(outdir: Path, target: Path | None = None, expected: Mapping[str, int] | None = None) -> MergeReport:
    """Merge every sample's parts found in `outdir` into `target` (default: `outdir`); `expected`: {sample: N}
    of the job set that writes `outdir`, so that a sample none of whose parts was written is missing too."""
    target = target or outdir
    report = MergeReport()
    files: dict[str, tuple[dict[str, object], dict[str, hist.Hist]]] = {}
    config_hash: str | None = None
    commands: list[str] = []
    files_of: dict[str, tuple[int, dict[int, Path]]] = {sample: (n, {}) for sample, n in (expected or {}).items()}
    files_of.update(find_parts(outdir) if not expected or any(outdir.glob(f"*.part-*-of-*{SUFFIX}")) else {})
    for sample, (n, found) in files_of.items():
        missing = [i for i in range(1, n + 1) if i not in found]
        if missing:
            report.missing[sample] = missing
            if found:  # else no part tells the command: the job folder has it
                first = _provenance(next(iter(found.values())))
                commands += [_resubmit_command(first, i, n) for i in missing]
            continue
        parts = [Part.read(found[i]) for i in range(1, n + 1)]
        config_hash = config_hash or parts[0].provenance.config_hash
        _check_parts(sample, parts, config_hash)
        files[output_name(sample)] = merge_sample(sample, parts)
    if files:
        report.merged = write_files(target, files, ("merge.json", {"merged": list(files), "missing": report.missing}))
    if commands:
        report.resubmit = target / "resubmit.txt"
        target.mkdir(parents=True, exist_ok=True)
        report.resubmit.write_text("\n".join(commands) + "\n")
    return report
